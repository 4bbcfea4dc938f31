// One table from driver and channel failures to what the user reads: a summary, what to do,
// and the attribute to blame. Resources say what they were doing (which server, which image,
// which channel, which attribute holds each), the table says the rest, so one failure reads
// the same whichever resource met it.
import { DiagnosticError, attr, pathToString, type AttributePath } from '../protocol/diagnostics.ts';
import { ChannelHttpError, ChannelUnreachableError, TrustStateError } from '../drivers/channel.ts';
import { IpmiAuthError, IpmiUnreachableError, LibvirtError, LibvirtTlsError, LibvirtUnreachableError } from '../drivers/errors.ts';
import { SYSTEM_PKI, type TlsProblem } from '../drivers/libvirt-pki.ts';
import { ArchiveError, type ArchiveErrorCode } from '../drivers/images/archive.ts';
import { ChecksumMismatchError, ImageSourceError } from '../drivers/images/fetch.ts';
import { LayerFormatError } from '../drivers/layers.ts';
import { NetworkConflictError } from '../drivers/networks.ts';
import { Qcow2Error } from '../drivers/qcow2.ts';
import { SeedFileError } from '../drivers/seed/nocloud.ts';
import { FeedError } from '../channel/feed.ts';
import { FeedExpiredError, FeedRollbackError, RetiredKeyError } from '../channel/freshness.ts';
import { RotationError, rotationUrl } from '../channel/rotation.ts';
import {
  BadSignatureError,
  LegacySignatureError,
  PublicKeyFormatError,
  SignatureMismatchError,
  UnknownKeyError,
  UnsignedError,
  VerificationError,
  WrongChannelError,
  formatTime,
} from '../channel/signing.ts';

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
  channel?: {
    what: string;
    url: string;
    path?: AttributePath;
    /** The channel's feed URL, as configured in the attribute at `path`. */
    feed?: string;
    /** The file where storm remembers what it has seen of the channel. */
    trustFile?: string;
    /** The feed came from the cache: since when, and why the channel was not asked. */
    offline?: { since: string; because: string };
  };
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
/** `channel = "https://…/rss.xml"`: the setting a channel failure is about, as the user wrote it. */
function setting(c: NonNullable<Context['channel']>): string {
  return `${c.path ? pathToString(c.path) : 'the channel'} = "${c.feed ?? c.url}"`;
}
const attributeOf = (c: NonNullable<Context['channel']>) => (c.path ? pathToString(c.path) : 'the channel URL');
/** "the URL in channel": the setting by name, in a sentence. */
const urlIn = (c: NonNullable<Context['channel']>) => (c.path ? `the URL in ${pathToString(c.path)}` : 'the channel URL');
const forget = (c: NonNullable<Context['channel']>) => (c.trustFile ? `delete ${c.trustFile}` : 'delete its file under the cache directory\'s channels/trust/');

const signedFix = (s: string) => `${s} If you trust this channel without signatures, set insecure_skip_verify = true on the data source.`;

/** The host part of a libvirt URI, as the server's certificate must name it. */
const hostOf = (uri: string) => /^[^:]+:\/\/(?:[^@/]*@)?(\[[^\]]*\]|[^:/?]*)/.exec(uri)?.[1]?.replace(/^\[|\]$/g, '') ?? uri;

/** A refused qemu+tls:// connection: what is wrong, on which side, and the file or command that fixes it. */
function tlsReading(err: LibvirtTlsError, c: Context): { summary: string; detail: string } {
  const server = c.server ? `server "${c.server}"` : `the server at ${err.uri}`;
  const host = hostOf(err.uri);
  const { caCert, clientCert, clientKey, origin } = err.pki;
  const reissueServer =
    `re-issue the server's certificate from the CA storm trusts: \`storm tls server --ca CA_DIR --host ${host}\` (a --host for each name and address clients use), installed on the host as ` +
    `${SYSTEM_PKI.serverCert} and ${SYSTEM_PKI.serverKey} (then restart libvirtd)`;
  const newClient = `\`storm tls client --ca CA_DIR --out DIR\` (with the CA that signed the server's certificate) and set ?pkipath=DIR in libvirt_uri`;
  const readings: Record<TlsProblem, () => { summary: string; detail: string }> = {
    'server-untrusted': () => ({
      summary: `The TLS certificate of ${server} is not signed by the CA storm trusts`,
      detail: `The certificate ${server} presented is not signed by the CA in ${caCert} (${origin}). Put the CA certificate that signed it in ${caCert}, or ${reissueServer}.`,
    }),
    'server-name': () => ({
      summary: `The TLS certificate of ${server} does not name "${host}"`,
      detail: `libvirt_uri connects to "${host}", and the certificate ${server} presented is for other names. Use a name or address its certificate lists in libvirt_uri, or ${reissueServer}.`,
    }),
    'server-expired': () => ({
      summary: `The TLS certificate of ${server} has expired or is not valid yet`,
      detail: `Check the host's clock and the certificate's dates, then ${reissueServer}.`,
    }),
    'server-rejected': () => ({
      summary: `storm does not accept the TLS certificate of ${server}`,
      detail: `It was checked against ${caCert} (${origin}). If the CA is right, ${reissueServer}.`,
    }),
    'client-missing': () => ({
      summary: `storm has no TLS client certificate for ${server}`,
      detail: `${clientCert} does not exist (${origin}), and the server accepts only clients with a certificate from its CA. Make one with ${newClient}.`,
    }),
    'client-refused': () => ({
      summary: `${server[0]!.toUpperCase()}${server.slice(1)} refused storm's TLS client certificate`,
      detail: `The server hung up after the TLS handshake: it does not accept ${clientCert} (${origin}), most likely because another CA signed it than the one in the host's ${SYSTEM_PKI.caCert}, or it has expired. Make a new one with ${newClient}.`,
    }),
    'client-mismatch': () => ({
      summary: 'storm\'s TLS client certificate is not signed by its CA',
      detail: `${clientCert} is not signed by the CA in ${caCert} (${origin}): a pkipath directory holds one CA and the client certificate that CA signed. Make them together with ${newClient}.`,
    }),
    'client-unreadable': () => ({
      summary: 'storm cannot read its TLS client certificate or key',
      detail: `Check that ${clientCert} and ${clientKey} (${origin}) both exist, belong together and can be read by the user running Terraform; or make new ones with ${newClient}.`,
    }),
    'ca-missing': () => ({
      summary: `storm has no CA certificate to check ${server} with`,
      detail: `${caCert} does not exist (${origin}). Make a client directory with ${newClient}: it holds the CA certificate, the client certificate and its key.`,
    }),
    handshake: () => ({
      summary: `No TLS conversation with ${server}`,
      detail: `Nothing at ${host} speaks libvirt's TLS protocol on that port (16514 unless libvirt_uri gives one). Check that libvirtd listens for TLS on the host (libvirtd-tls.socket, or listen_tls = 1).`,
    }),
  };
  const reading = readings[err.problem]();
  return { summary: reading.summary, detail: `${reading.detail} (libvirt: ${err.reason.replace(/^failed to connect to the hypervisor; /, '')})` };
}

// Order matters: subclasses before their base classes.
const TABLE: readonly Row[] = [
  {
    errors: [ChecksumMismatchError],
    diagnose: (err, c) => c.image && { summary: `The ${c.image.what} image does not match its sha256`, detail: `${err.message}. Nothing was installed. Check the URL and the checksum the publisher gave.`, path: c.image.path },
  },
  {
    errors: [ImageSourceError],
    diagnose: (err, c) =>
      c.image && {
        summary: `Could not fetch the ${c.image.what} image`,
        detail: `${err.message}. Nothing was installed${c.server ? ` on server "${c.server}"` : ''}. Check that the URL answers from this machine (a channel or file server that is down: apply again once it is back).`,
        path: c.image.path,
      },
  },
  {
    errors: [ArchiveError],
    diagnose: (err, c) => {
      if (!c.image) return null;
      const readings: Record<ArchiveErrorCode, { summary: string; fix: string }> = {
        missing: { summary: `The ${c.image.what} archive does not hold its system disk`, fix: 'Check image.file against the archive (from a channel: the definition\'s <disk type="system" file="…"/>), or ask the publisher for an archive that holds it.' },
        'not-a-file': { summary: `The ${c.image.what} archive's system disk is not a plain file`, fix: 'Ask the publisher to pack the disk image itself (tar czf ARCHIVE FILE).' },
        'too-big': { summary: `The ${c.image.what} archive's system disk does not fit`, fix: 'Free space there, or use a server with a bigger pool.' },
        'not-tar': { summary: `The ${c.image.what} image cannot be unpacked`, fix: 'Check the image\'s URL, or ask the publisher.' },
        corrupt: { summary: `The ${c.image.what} archive is damaged`, fix: 'Its checksum matched, so it was published damaged: ask the publisher.' },
      };
      const r = readings[(err as ArchiveError).code];
      return { summary: r.summary, detail: `${err.message}. Nothing was installed${c.server ? ` on server "${c.server}"` : ''}. ${r.fix}`, path: c.image.path };
    },
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
    errors: [LibvirtTlsError],
    diagnose: (err, c) => ({ ...tlsReading(err as LibvirtTlsError, c), path: c.libvirt?.path }),
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
    diagnose: (err, c) =>
      /No space left on device/i.test(err.message) ? {
        summary: `The storage pool${c.server ? ` on server "${c.server}"` : ''} is full`,
        detail: `${err.message}. What was being written was removed again. Free space in the pool's directory on the server (pool_path), or move the pool to a bigger disk, then apply again.`,
        path: c.libvirt?.path,
      } : null,
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
    errors: [LegacySignatureError],
    diagnose: (err, c) =>
      c.channel && {
        summary: `The ${c.channel.what}'s signature is in storm's old format`,
        detail: `${c.channel.url}: ${err.message}. Until the publisher does, storm cannot use ${setting(c.channel)}.`,
        path: c.channel.path,
      },
  },
  {
    errors: [WrongChannelError],
    diagnose: (err, c) => {
      if (!c.channel) return null;
      const e = err as WrongChannelError;
      const fix =
        e.purpose === 'key-rotation'
          ? `The publisher issues the rotation for this channel: \`storm rotate-key --channel ${e.expected} …\`.`
          : `If ${e.signed} is the channel you mean, set ${attributeOf(c.channel)} = "${e.signed}". If the publisher moved the channel to ${e.expected}, they sign the feed for it there: \`storm sign --purpose feed --channel ${e.expected} rss.xml\`.`;
      return {
        summary: `The ${c.channel.what} is signed for another channel`,
        detail:
          `${setting(c.channel)} serves a ${c.channel.what} that key ${e.keyId} signed for channel ${e.signed}. A feed is valid only at the channel URL it was signed for: ` +
          `this is another channel's (a mirror or proxy mixing channels up, or someone swapping in a feed you did not ask for), so storm refuses it. ${fix}`,
        path: c.channel.path,
      };
    },
  },
  {
    errors: [FeedExpiredError],
    diagnose: (err, c) => {
      if (!c.channel) return null;
      const e = err as FeedExpiredError;
      if (c.channel.offline) {
        return {
          summary: 'The channel is unreachable and its cached copy has expired',
          detail:
            `${c.channel.offline.because}. storm serves a channel's cached copy only until the expiry its publisher signed: the copy of ${setting(c.channel)} fetched at ${c.channel.offline.since} ` +
            `expired at ${formatTime(e.expires)} (it is now ${formatTime(e.now)}). Plans that read this channel fail until it answers again.`,
          path: c.channel.path,
        };
      }
      return {
        summary: `The ${c.channel.what} has expired`,
        detail:
          `${setting(c.channel)}: ${err.message}. An expired feed may be an old copy that a mirror, proxy or attacker keeps serving to hide newer appliance versions from you (a freeze), so storm refuses it. ` +
          `The publisher signs the feed again (\`storm sign --purpose feed rss.xml\` sets a new expiry: 7 days, or what --expires-in says) and publishes the new rss.xml.sig; ` +
          `if ${urlIn(c.channel)} points at a mirror, check that the mirror is up to date. If the expiry looks wrong, check this machine's clock.`,
        path: c.channel.path,
      };
    },
  },
  {
    errors: [FeedRollbackError],
    diagnose: (err, c) =>
      c.channel && {
        summary: `The ${c.channel.what} is older than one storm has already seen`,
        detail:
          `${setting(c.channel)}: ${err.message}. storm never goes back to an older feed of a channel: a mirror, proxy or attacker may be replaying an old one to hold you on appliance versions with known problems (a rollback). ` +
          `Check that ${urlIn(c.channel)} reaches the publisher's server and not a stale mirror or cache. If the publisher really went back to an older feed, they sign it again ` +
          `(\`storm sign --purpose feed rss.xml\` gives it a newer version); to make this machine forget what it has seen of the channel, ${forget(c.channel)}.`,
        path: c.channel.path,
      },
  },
  {
    errors: [RetiredKeyError],
    diagnose: (err, c) => {
      if (!c.channel) return null;
      const e = err as RetiredKeyError;
      const doc = c.channel.feed ? rotationUrl(c.channel.feed, e.keyId) : `keys/rotation-${e.keyId}.json next to the feed`;
      return {
        summary: `The ${c.channel.what} is signed by a retired key`,
        detail:
          `${setting(c.channel)}: ${err.message}. A retired key's feed may be an old one replayed, or the retired key may be in someone else's hands, so storm refuses it. ` +
          `Remove ${e.keyId} from trusted_keys and trust ${e.retired.successor} instead (its line is in ${doc}). If the publisher really signs with ${e.keyId} again, ask them why, then ${forget(c.channel)} to forget the rotation.`,
        path: c.channel.path,
      };
    },
  },
  {
    errors: [RotationError],
    diagnose: (err, c) =>
      c.channel && {
        summary: 'The channel\'s key rotation cannot be followed',
        detail:
          `${c.channel.url}: ${err.message}. The feed at ${setting(c.channel)} is signed by a key you do not trust, and this rotation does not lead to it from one you do. ` +
          'Tell the publisher; if you trust their new key (ask them for its line through a channel you trust), add it to trusted_keys in the provider block.',
        path: c.channel.path,
      },
  },
  {
    errors: [VerificationError],
    diagnose: (err, c) => c.channel && { summary: `The ${c.channel.what}'s signature cannot be read`, detail: `${c.channel.url}: ${err.message}` },
  },
  {
    errors: [TrustStateError],
    diagnose: (err, c) => ({ summary: 'storm cannot read what it remembers of the channel', detail: `${err.message}.`, path: c.channel?.path }),
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

/**
 * A refresh of something on a server that does not answer (powered off by the controller, or
 * down): storm keeps what it last knew, with a warning, so that the rest of the configuration
 * still plans. A server that answers with a refused certificate is no outage: that stays an error.
 */
export async function readOrKeep<T>(warn: (summary: string, detail?: string) => void, c: Context, what: string, state: T, work: () => Promise<T | null>): Promise<T | null> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof LibvirtUnreachableError && !(err instanceof LibvirtTlsError)) {
      warn(
        `Server "${c.server ?? err.uri}" does not answer: kept what storm last knew of ${what}`,
        `${err.message}. A server the storm controller powered off reads like this. Changes made on it since cannot show in this plan; an apply that needs it fails until it answers.`,
      );
      return state;
    }
    diagnose(err, c);
  }
}

