// Reading a channel for the data sources: fetch (or the cached copy when the channel is
// down), verify the feed's signature against the provider's trusted keys (following a key
// rotation the channel published), refuse a feed that is stale, older than one seen before or
// for another channel, remember what was seen, parse.
import { createHash } from 'node:crypto';
import { DiagnosticError, attr, pathToString, type AttributePath } from '../protocol/diagnostics.ts';
import { ChannelHttpError, fetchCached, readTrustState, signatureUrl, trustStatePath, updateTrustState, type ChannelTrustState, type Fetched } from '../drivers/channel.ts';
import { parseFeed, type ChannelFeed } from '../channel/feed.ts';
import { checkFeedFreshness, describeVersion, RetiredKeyError, whenSigned } from '../channel/freshness.ts';
import { MAX_ROTATION_STEPS, RotationError, rotationUrl, verifyRotation, type KeyRotation } from '../channel/rotation.ts';
import {
  PublicKeyFormatError,
  SigningError,
  channelName,
  formatPublicKey,
  formatTime,
  parsePublicKey,
  parseSignature,
  verifyFeedSignature,
  verifySignature,
  type FeedStatement,
  type PublicKey,
  type SignaturePurpose,
} from '../channel/signing.ts';
import type { ResourceContext } from '../contract.ts';
import { diagnose, type Context } from './diagnose.ts';

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
  /** The verified statement (channel, version, expiry), or null when verification was skipped. */
  statement: FeedStatement | null;
  /** Keys whose image signatures count for this channel: the trusted keys, and those a followed rotation led to. */
  keys: PublicKey[];
}

/** `urlPath`: the attribute holding the feed's URL, which failures to read it blame. */
export async function readChannel(ctx: ResourceContext, url: string, insecure: boolean, urlPath: AttributePath = attr('url')): Promise<VerifiedChannel> {
  let channel: string;
  try {
    channel = channelName(url);
  } catch (err) {
    if (err instanceof SigningError) throw new DiagnosticError('Invalid channel URL', `${pathToString(urlPath)} = "${url}": ${err.message}.`, urlPath);
    throw err;
  }
  let feed: Fetched;
  let sig: Fetched;
  try {
    feed = await fetchCached(url, ctx.provider.cacheDir, { keep: false });
    if (!feed.bytes) throw new ChannelHttpError(`${url}: HTTP 404 Not Found`);
    sig = await fetchCached(signatureUrl(url), ctx.provider.cacheDir, { keep: false });
  } catch (err) {
    diagnose(err, { channel: { what: 'channel feed', url, feed: url, path: urlPath } });
  }
  const xml = feed.bytes!;
  let verified: { statement: FeedStatement; keyId: string; keys: PublicKey[] } | null = null;
  if (insecure) {
    ctx.warn('Channel signatures are not checked', `insecure_skip_verify = true: storm uses ${url} and its images without checking who published them.`, attr('insecure_skip_verify'));
    if (feed.staleSince) {
      ctx.warn(
        'The channel is unreachable: using its cached copy',
        `${feed.unreachableBecause}. storm uses the copy fetched at ${feed.staleSince}, with no end: an unsigned feed says nothing of how long it is valid. Appliances published since then are not listed.`,
        urlPath,
      );
    }
  } else {
    const keys = trustedKeys(ctx);
    if (!keys.length) {
      throw new DiagnosticError(
        'No trusted publisher keys',
        `storm verifies channels against trusted_keys in the provider block, which is empty. Add the publisher's key (the line \`storm keygen\` printed), or set insecure_skip_verify = true for ${url}.`,
        attr('insecure_skip_verify'),
      );
    }
    const sigText = sig!.bytes ? Buffer.from(sig!.bytes).toString('utf8') : null;
    verified = await verifyFeed(ctx, { url, channel, xml, sigText, keys, urlPath, offline: feed.staleSince ? { since: feed.staleSince, because: feed.unreachableBecause ?? 'the channel does not answer' } : null });
    if (feed.staleSince) {
      const s = verified.statement;
      ctx.warn(
        `The channel is unreachable: using its cached copy until ${formatTime(s.expires)}`,
        `${feed.unreachableBecause}. storm uses the copy fetched at ${feed.staleSince} (${describeVersion(s.version)}, by key ${verified.keyId}), ` +
          `which its publisher signed as valid until ${formatTime(s.expires)}. After that, plans that read ${pathToString(urlPath)} fail until the channel answers again. Appliances published since the copy was fetched are not listed.`,
        urlPath,
      );
    }
  }
  let parsed: ChannelFeed;
  try {
    // The bytes, not text: a feed that is not UTF-8 is refused where it stops being UTF-8, not
    // read with U+FFFD in its place; and the URL, so a feed from the network cannot name local files.
    parsed = await parseFeed(xml, url);
  } catch (err) {
    diagnose(err, { channel: { what: 'channel feed', url, feed: url, path: urlPath } });
  }
  // Kept as the offline copy only now: verified (or not meant to be) and readable.
  await feed.keep();
  await sig!.keep();
  // Unverified channels verify no images either: no keys.
  return { feed: parsed, verifiedBy: verified?.keyId ?? null, statement: verified?.statement ?? null, keys: verified?.keys ?? [] };
}

interface FeedToVerify {
  url: string;
  /** Its canonical name. */
  channel: string;
  xml: Uint8Array;
  sigText: string | null;
  keys: PublicKey[];
  urlPath: AttributePath;
  /** Set when the feed and its signature came from the cache because the channel is down. */
  offline: { since: string; because: string } | null;
}

/**
 * The feed's signature, its channel, its freshness against what this machine has seen, and,
 * when it is signed by a key nobody trusts, the channel's key rotations from a trusted key to
 * it. What was seen is remembered only after everything passed.
 */
async function verifyFeed(ctx: ResourceContext, f: FeedToVerify): Promise<{ statement: FeedStatement; keyId: string; keys: PublicKey[] }> {
  const cacheDir = ctx.provider.cacheDir;
  const where: Context = {
    channel: { what: 'channel feed', url: signatureUrl(f.url), feed: f.url, path: f.urlPath, trustFile: trustStatePath(cacheDir, f.channel), offline: f.offline ?? undefined },
  };
  const now = Date.now();
  let state: ChannelTrustState;
  let signer: PublicKey | undefined;
  let rotations: KeyRotation[] = [];
  let statement: FeedStatement;
  try {
    const keyId = parseSignature(f.sigText).keyId;
    state = await readTrustState(cacheDir, f.channel);
    const retired = state.retired[keyId];
    if (retired) throw new RetiredKeyError(keyId, retired);
    signer = f.keys.find((k) => k.keyId === keyId);
    if (!signer) {
      rotations = (await followRotations(ctx, f, keyId, state)) ?? [];
      signer = rotations.at(-1)?.to;
    }
    // Without a signer this throws UnknownKeyError, naming the trusted keys.
    statement = verifyFeedSignature(f.sigText, signer ? [signer] : f.keys, { sha256: sha256Hex(f.xml), size: f.xml.length, channel: f.channel }).statement;
    checkFeedFreshness(statement, keyId, state.feeds[keyId], now);
    await updateTrustState(cacheDir, f.channel, (s) => {
      const seen = s.feeds[keyId];
      if (!seen || seen.version < statement.version) s.feeds[keyId] = { version: statement.version, sha256: statement.sha256, seenAt: now };
      for (const r of rotations) {
        const had = s.retired[r.from.keyId];
        if (!had || had.version < r.version) s.retired[r.from.keyId] = { successor: r.to.keyId, version: r.version, followedAt: now };
      }
      return s;
    });
  } catch (err) {
    diagnose(err, where);
  }
  for (const r of rotations) {
    ctx.warn(
      'The channel\'s publisher key was rotated: storm followed the rotation',
      `${pathToString(f.urlPath)} = "${f.url}" is now signed by key ${r.to.keyId}, which key ${r.from.keyId} named as its successor ` +
        `(${rotationUrl(f.channel, r.from.keyId)}, signed by ${r.from.keyId} ${whenSigned(r.version)}${r.reason ? `; reason: ${r.reason}` : ''}). ` +
        `storm trusts ${r.to.keyId} for this channel because ${r.from.keyId} signed the rotation, and from now on refuses this channel's feeds signed by ${r.from.keyId}. ` +
        `Replace ${r.from.keyId}'s line in trusted_keys with this one: "${formatPublicKey(r.to)}".`,
    );
  }
  return { statement: statement!, keyId: signer!.keyId, keys: [...f.keys, ...rotations.map((r) => r.to)] };
}

/**
 * The rotations leading from a trusted key to `target`, walking the documents each key
 * published (keys/rotation-<id>.json next to the feed); null when none leads there. A document
 * that is there but does not verify stops the walk with its reason: a broken or forged rotation
 * is worth saying, not skipping.
 */
async function followRotations(ctx: ResourceContext, f: FeedToVerify, target: string, state: ChannelTrustState): Promise<KeyRotation[] | null> {
  for (const start of f.keys) {
    const chain: KeyRotation[] = [];
    const seen = new Set([start.keyId]);
    let current = start;
    for (let step = 0; step < MAX_ROTATION_STEPS; step++) {
      const url = rotationUrl(f.channel, current.keyId);
      const where: Context = { channel: { what: 'key rotation document', url, feed: f.url, path: f.urlPath, trustFile: trustStatePath(ctx.provider.cacheDir, f.channel) } };
      let rotation: KeyRotation;
      try {
        const doc = await fetchCached(url, ctx.provider.cacheDir);
        if (!doc.bytes) break;
        const docSig = await fetchCached(signatureUrl(url), ctx.provider.cacheDir);
        rotation = verifyRotation(doc.bytes, docSig.bytes ? Buffer.from(docSig.bytes).toString('utf8') : null, current, f.channel);
        const followed = state.retired[current.keyId];
        if (followed && rotation.version < followed.version) {
          throw new RotationError(`it is older (${describeVersion(rotation.version)}) than the rotation from ${current.keyId} to ${followed.successor} that storm followed on ${formatTime(followed.followedAt)}`);
        }
        if (seen.has(rotation.to.keyId)) throw new RotationError(`it leads back to key ${rotation.to.keyId}: the rotations form a loop`);
      } catch (err) {
        diagnose(err, where);
      }
      chain.push(rotation);
      seen.add(rotation.to.keyId);
      current = rotation.to;
      if (current.keyId === target) return chain;
    }
  }
  return null;
}

/** A channel document by URL, from the cache when its server is down. */
export async function channelDocument(ctx: ResourceContext, url: string): Promise<Uint8Array | null> {
  return (await fetchCached(url, ctx.provider.cacheDir)).bytes;
}

/**
 * Verifies a detached signature (e.g. an image's) for content of known sha256. `keys`: the
 * channel's keys (readChannel's, which include a key reached by rotation); the trusted keys
 * when not given.
 */
export async function verifyDetached(ctx: ResourceContext, sigUrl: string | null, purpose: SignaturePurpose, sha256: string, what: string, subjectUrl: string, keys: PublicKey[] = trustedKeys(ctx)): Promise<string> {
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
    return verifySignature(text, keys, { purpose, sha256 }).keyId;
  } catch (err) {
    diagnose(err, { channel: { what, url: subjectUrl } });
  }
}
