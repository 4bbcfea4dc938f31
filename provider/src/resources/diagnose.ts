// One table from driver and channel failures to what the user reads: a summary, what to do,
// and the attribute to blame. Resources say what they were doing (which server, which image,
// which channel, which attribute holds each), the table says the rest, so one failure reads
// the same whichever resource met it.
import { DiagnosticError, attr, type AttributePath } from '../protocol/diagnostics.ts';
import { ChannelHttpError, ChannelUnreachableError } from '../drivers/channel.ts';
import { IpmiAuthError, IpmiUnreachableError, LibvirtError, LibvirtUnreachableError } from '../drivers/errors.ts';
import { ChecksumMismatchError, ImageSourceError } from '../drivers/images/fetch.ts';
import { LayerFormatError } from '../drivers/layers.ts';
import { NetworkConflictError } from '../drivers/networks.ts';
import { Qcow2Error } from '../drivers/qcow2.ts';
import { SeedFileError } from '../drivers/seed/nocloud.ts';
import { FeedError } from '../channel/feed.ts';
import { BadSignatureError, PublicKeyFormatError, SignatureMismatchError, UnknownKeyError, UnsignedError, VerificationError } from '../channel/signing.ts';

/** What the resource was doing when the failure happened, and which attributes hold what. */
export interface Context {
  /** The server's name, said in every message about it. */
  server?: string;
  /**
   * Where the server's libvirt is configured: `uri` on the server resource itself (blame
   * libvirt_uri), `reference` on resources that name a server (blame the reference).
   */
  libvirt?: { path: AttributePath; via: 'uri' | 'reference'; hasBmc?: boolean };
  /** The image being installed: its kind (base, appliance, …) and the attribute holding it. */
  image?: { what: string; path: AttributePath };
  /** The channel document being read: what it is and where it came from. */
  channel?: { what: string; url: string; path?: AttributePath };
  /** The attribute holding files, for seed failures. */
  files?: AttributePath;
  /**
   * The BMC credentials came from stored state (a refresh), not from the configuration: a wrong
   * stored password fails every plan until an apply that skips the refresh stores the right one.
   */
  bmcFromState?: boolean;
}

type ErrorClass = abstract new (...args: never[]) => Error;

interface Row {
  /** The failures this row explains (one reading for each). */
  errors: readonly ErrorClass[];
  /** Null when this row does not apply in this context: the next matching row is tried. */
  diagnose(err: Error, c: Context): { summary: string; detail: string; path?: AttributePath } | null | undefined;
}

const on = (c: Context) => (c.server ? ` for server "${c.server}"` : '');
const signedFix = (s: string) => `${s} If you trust this channel without signatures, set insecure_skip_verify = true on the data source.`;

// Order matters: subclasses before their base classes.
const TABLE: readonly Row[] = [
  {
    errors: [ChecksumMismatchError],
    diagnose: (err, c) => c.image && { summary: `The ${c.image.what} image does not match its sha256`, detail: `${err.message}. Nothing was installed. Check the URL and the checksum the publisher gave.`, path: c.image.path },
  },
  {
    errors: [ImageSourceError],
    diagnose: (err, c) => c.image && { summary: `Could not fetch the ${c.image.what} image`, detail: `${err.message}. Nothing was installed.`, path: c.image.path },
  },
  {
    errors: [LayerFormatError, Qcow2Error],
    diagnose: (err, c) => c.image && { summary: `The ${c.image.what} image cannot be a layer`, detail: `${err.message}.`, path: c.image.path },
  },
  {
    errors: [IpmiAuthError],
    diagnose: (err, c) => ({
      summary: 'The BMC refused storm\'s credentials',
      detail:
        `${err.message}. Check ipmi.username and ipmi.password${on(c)}.` +
        (c.bmcFromState ? ' These are the credentials in Terraform\'s state: if the BMC\'s password changed, put the new one in the configuration and run `terraform apply -refresh=false` to store it.' : ''),
      path: attr('ipmi', 'password'),
    }),
  },
  {
    errors: [IpmiUnreachableError],
    diagnose: (err, c) => ({ summary: 'The BMC did not answer', detail: `${err.message}. Check ipmi.address and ipmi.port${on(c)}, and that the BMC's LAN channel is enabled.`, path: attr('ipmi', 'address') }),
  },
  {
    errors: [LibvirtUnreachableError],
    diagnose: (err, c) => {
      if (c.libvirt?.via === 'uri') {
        return {
          summary: 'Cannot reach libvirt on the server',
          detail: `${err.message}. Check libvirt_uri${on(c)}: is libvirtd running on the host and reachable from here?` + (c.libvirt.hasBmc ? '' : ' If the host is powered off, add an ipmi block so storm can power it on.'),
          path: c.libvirt.path,
        };
      }
      const which = c.server ? `server "${c.server}"` : `the server at ${(err as LibvirtUnreachableError).uri}`;
      return { summary: 'Cannot reach the server', detail: `${err.message}. Is ${which} powered on?`, path: c.libvirt?.path };
    },
  },
  {
    errors: [NetworkConflictError],
    diagnose: (err, c) => ({
      summary: 'The network collides with another one',
      detail:
        `${c.server ? `libvirt on server "${c.server}" says: ` : ''}${err.message}. Another network on that host holds these addresses or this bridge (where several servers share one kernel, as libvirtds on one machine do, ` +
        'it may be on another server). Choose another cidr, or stop the network that holds them (`virsh net-list --all`, `ip -br addr`), then apply again.',
      path: attr('cidr'),
    }),
  },
  {
    errors: [LibvirtError],
    diagnose: (err, c) => (c.server ? { summary: `libvirt on server "${c.server}" refused the operation`, detail: `${err.message}.`, path: c.libvirt?.path } : null),
  },
  {
    errors: [SeedFileError],
    diagnose: (err, c) => ({ summary: 'Invalid file', detail: err.message, path: c.files ?? attr('file') }),
  },
  {
    errors: [UnsignedError],
    diagnose: (err, c) => c.channel && { summary: `The ${c.channel.what} is not signed`, detail: signedFix(`${c.channel.url}: ${err.message}. storm only uses signed channels.`), path: attr('insecure_skip_verify') },
  },
  {
    errors: [UnknownKeyError],
    diagnose: (err, c) => c.channel && { summary: `The ${c.channel.what} is signed by a key you do not trust`, detail: `${err.message} Add the publisher's public key to trusted_keys in the provider block if you trust it.` },
  },
  {
    errors: [SignatureMismatchError],
    diagnose: (err, c) => c.channel && { summary: `The ${c.channel.what} was changed after it was signed`, detail: `${c.channel.url}: ${err.message} Do not use it; tell the publisher.` },
  },
  {
    errors: [BadSignatureError],
    diagnose: (err, c) => c.channel && { summary: `The ${c.channel.what}'s signature is invalid`, detail: `${c.channel.url}: ${err.message} Do not use it; tell the publisher.` },
  },
  {
    errors: [VerificationError],
    diagnose: (err, c) => c.channel && { summary: `The ${c.channel.what}'s signature cannot be read`, detail: `${c.channel.url}: ${err.message}` },
  },
  {
    errors: [PublicKeyFormatError],
    diagnose: (err) => ({ summary: 'Invalid trusted key', detail: `A key in trusted_keys in the provider block: ${err.message}` }),
  },
  {
    errors: [ChannelUnreachableError, ChannelHttpError],
    diagnose: (err, c) => ({ summary: 'Cannot read the channel', detail: `${err.message}, and there is no cached copy of it yet. Check the URL and that the channel server is up.`, path: c.channel?.path }),
  },
  {
    errors: [FeedError],
    diagnose: (err, c) => ({ summary: 'The channel feed cannot be read', detail: `${c.channel?.url ?? 'the feed'}: ${err.message}`, path: c.channel?.path }),
  },
];

/** The diagnostic for a failure, or the failure itself when the table has no row for it. */
export function diagnosed(err: unknown, c: Context): unknown {
  if (err instanceof DiagnosticError || !(err instanceof Error)) return err;
  for (const row of TABLE) {
    if (!row.errors.some((e) => err instanceof e)) continue;
    const d = row.diagnose(err, c);
    if (d) return new DiagnosticError(d.summary, d.detail, d.path);
  }
  return err;
}

/** Throws the failure as its diagnostic (see {@link diagnosed}). */
export function diagnose(err: unknown, c: Context): never {
  throw diagnosed(err, c);
}

/** Runs `work`, turning its failures into diagnostics for context `c`. */
export async function explained<T>(c: Context, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    diagnose(err, c);
  }
}
