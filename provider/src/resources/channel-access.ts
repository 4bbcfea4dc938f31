// Reading a channel for the data sources: fetch (or the cached copy when the channel is
// down), verify the feed's signature against the provider's trusted keys, parse.
import { createHash } from 'node:crypto';
import { DiagnosticError, attr } from '../protocol/diagnostics.ts';
import { ChannelHttpError, ChannelUnreachableError, fetchCached, signatureUrl } from '../drivers/channel.ts';
import { FeedError, parseFeed, type ChannelFeed } from '../channel/feed.ts';
import {
  BadSignatureError,
  PublicKeyFormatError,
  SignatureMismatchError,
  UnknownKeyError,
  UnsignedError,
  VerificationError,
  parsePublicKey,
  verifySignature,
  type PublicKey,
  type SignaturePurpose,
} from '../channel/signing.ts';
import type { ResourceContext } from './resource.ts';

export const sha256Hex = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

export function trustedKeys(ctx: ResourceContext): PublicKey[] {
  return ctx.provider.trustedKeys.map((line, index) => {
    try {
      return parsePublicKey(line);
    } catch (err) {
      if (err instanceof PublicKeyFormatError) throw new DiagnosticError('Invalid trusted key', `trusted_keys[${index}] in the provider block: ${err.message}`);
      throw err;
    }
  });
}

/** Turns a verification failure into a diagnostic that says what was wrong and what to do. */
export function explainVerification(err: unknown, what: string, url: string): never {
  const fix = (s: string) => `${s} If you trust this channel without signatures, set insecure_skip_verify = true on the data source.`;
  if (err instanceof UnsignedError) throw new DiagnosticError(`The ${what} is not signed`, fix(`${url}: ${err.message}. storm only uses signed channels.`), attr('insecure_skip_verify'));
  if (err instanceof UnknownKeyError) throw new DiagnosticError(`The ${what} is signed by a key you do not trust`, `${err.message} Add the publisher's public key to trusted_keys in the provider block if you trust it.`);
  if (err instanceof SignatureMismatchError) throw new DiagnosticError(`The ${what} was changed after it was signed`, `${url}: ${err.message} Do not use it; tell the publisher.`);
  if (err instanceof BadSignatureError) throw new DiagnosticError(`The ${what}'s signature is invalid`, `${url}: ${err.message} Do not use it; tell the publisher.`);
  if (err instanceof VerificationError) throw new DiagnosticError(`The ${what}'s signature cannot be read`, `${url}: ${err.message}`);
  throw err;
}

export interface VerifiedChannel {
  feed: ChannelFeed;
  /** The key that signed the feed, or null when verification was skipped. */
  verifiedBy: string | null;
}

export async function readChannel(ctx: ResourceContext, url: string, insecure: boolean): Promise<VerifiedChannel> {
  let fetched: { xml: Uint8Array; sig: string | null };
  try {
    const feed = await fetchCached(url, ctx.provider.cacheDir);
    if (!feed.bytes) throw new ChannelHttpError(`${url}: HTTP 404 Not Found`);
    const sig = await fetchCached(signatureUrl(url), ctx.provider.cacheDir);
    fetched = { xml: feed.bytes, sig: sig.bytes ? Buffer.from(sig.bytes).toString('utf8') : null };
    if (feed.staleSince) {
      ctx.warn('The channel is unreachable: using its cached copy', `${feed.unreachableBecause}. storm uses the copy fetched at ${feed.staleSince}; appliances published since then are not listed.`, attr('url'));
    }
  } catch (err) {
    if (err instanceof ChannelUnreachableError || err instanceof ChannelHttpError) {
      throw new DiagnosticError('Cannot read the channel', `${err.message}, and there is no cached copy of it yet. Check the URL and that the channel server is up.`, attr('url'));
    }
    throw err;
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
      explainVerification(err, 'channel feed', signatureUrl(url));
    }
  }
  let feed: ChannelFeed;
  try {
    feed = await parseFeed(Buffer.from(fetched.xml).toString('utf8'));
  } catch (err) {
    if (err instanceof FeedError) throw new DiagnosticError('The channel feed cannot be read', `${url}: ${err.message}`, attr('url'));
    throw err;
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
    explainVerification(err, what, subjectUrl);
  }
}
