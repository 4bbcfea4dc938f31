// Reading a channel for the data sources: fetch (or the cached copy when the channel is
// down), verify the feed's signature against the provider's trusted keys, parse.
import { createHash } from 'node:crypto';
import { DiagnosticError, attr, type AttributePath } from '../protocol/diagnostics.ts';
import { ChannelHttpError, fetchCached, signatureUrl } from '../drivers/channel.ts';
import { parseFeed, type ChannelFeed } from '../channel/feed.ts';
import { PublicKeyFormatError, parsePublicKey, verifySignature, type PublicKey, type SignaturePurpose } from '../channel/signing.ts';
import type { ResourceContext } from '../contract.ts';
import { diagnose } from './diagnose.ts';

export const sha256Hex = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

export function trustedKeys(ctx: ResourceContext): PublicKey[] {
  return ctx.provider.trustedKeys.map((line, index) => {
    try {
      return parsePublicKey(line);
    } catch (err) {
      // Said here rather than by the table: only here is the key's index known.
      if (err instanceof PublicKeyFormatError) throw new DiagnosticError('Invalid trusted key', `trusted_keys[${index}] in the provider block: ${err.message}`);
      throw err;
    }
  });
}

export interface VerifiedChannel {
  feed: ChannelFeed;
  /** The key that signed the feed, or null when verification was skipped. */
  verifiedBy: string | null;
}

/** `urlPath`: the attribute holding the feed's URL, which failures to read it blame. */
export async function readChannel(ctx: ResourceContext, url: string, insecure: boolean, urlPath: AttributePath = attr('url')): Promise<VerifiedChannel> {
  let fetched: { xml: Uint8Array; sig: string | null };
  try {
    const feed = await fetchCached(url, ctx.provider.cacheDir);
    if (!feed.bytes) throw new ChannelHttpError(`${url}: HTTP 404 Not Found`);
    const sig = await fetchCached(signatureUrl(url), ctx.provider.cacheDir);
    fetched = { xml: feed.bytes, sig: sig.bytes ? Buffer.from(sig.bytes).toString('utf8') : null };
    if (feed.staleSince) {
      ctx.warn('The channel is unreachable: using its cached copy', `${feed.unreachableBecause}. storm uses the copy fetched at ${feed.staleSince}; appliances published since then are not listed.`, urlPath);
    }
  } catch (err) {
    diagnose(err, { channel: { what: 'channel feed', url, path: urlPath } });
  }
  let verifiedBy: string | null = null;
  if (insecure) {
    ctx.warn('Channel signatures are not checked', `insecure_skip_verify = true: storm uses ${url} and its images without checking who published them.`, attr('insecure_skip_verify'));
  } else {
    const keys = trustedKeys(ctx);
    if (!keys.length) {
      throw new DiagnosticError(
        'No trusted publisher keys',
        `storm verifies channels against trusted_keys in the provider block, which is empty. Add the publisher's key (the line \`storm keygen\` printed), or set insecure_skip_verify = true for ${url}.`,
        attr('insecure_skip_verify'),
      );
    }
    try {
      verifiedBy = verifySignature(fetched.sig, keys, { purpose: 'feed', sha256: sha256Hex(fetched.xml), size: fetched.xml.length }).keyId;
    } catch (err) {
      diagnose(err, { channel: { what: 'channel feed', url: signatureUrl(url), path: urlPath } });
    }
  }
  let feed: ChannelFeed;
  try {
    feed = await parseFeed(Buffer.from(fetched.xml).toString('utf8'));
  } catch (err) {
    diagnose(err, { channel: { what: 'channel feed', url, path: urlPath } });
  }
  return { feed, verifiedBy };
}

/** Verifies a detached signature (e.g. an image's) for content of known sha256. */
/** A channel document by URL, from the cache when its server is down. */
export async function channelDocument(ctx: ResourceContext, url: string): Promise<Uint8Array | null> {
  return (await fetchCached(url, ctx.provider.cacheDir)).bytes;
}

export async function verifyDetached(ctx: ResourceContext, sigUrl: string | null, purpose: SignaturePurpose, sha256: string, what: string, subjectUrl: string): Promise<string> {
  let text: string | null = null;
  if (sigUrl) {
    try {
      const { bytes } = await fetchCached(sigUrl, ctx.provider.cacheDir);
      text = bytes ? Buffer.from(bytes).toString('utf8') : null;
    } catch (err) {
      throw new DiagnosticError(`Cannot fetch the ${what}'s signature`, `${(err as Error).message}.`);
    }
  }
  try {
    return verifySignature(text, trustedKeys(ctx), { purpose, sha256 }).keyId;
  } catch (err) {
    diagnose(err, { channel: { what, url: subjectUrl } });
  }
}
