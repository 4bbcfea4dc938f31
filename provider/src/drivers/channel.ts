// Fetches a channel's feed and its signature, keeping the last good copy on disk so a
// channel that is down still serves (with a warning, until the feed's signed expiry), as the
// paper's managers cached theirs; and remembers, per channel, the newest feed seen from each
// key and the keys retired by rotations, so an older feed is never taken again.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAX_CHANNEL_DOCUMENT_BYTES, MIB } from '../rules.ts';

export class ChannelUnreachableError extends Error {}
export class ChannelHttpError extends Error {}

export function defaultChannelCacheDir(cacheDir: string | null): string {
  if (cacheDir) return join(cacheDir, 'channels');
  if (process.env.STORM_CACHE_DIR) return join(process.env.STORM_CACHE_DIR, 'channels');
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'storm', 'channels');
}

/** The body of an http(s)/file URL or a path; null for a 404 (an absent signature). */
export async function fetchBytes(url: string, timeoutMs = 30_000): Promise<Uint8Array | null> {
  if (url.startsWith('file://') || url.startsWith('/')) {
    try {
      return await readFile(url.startsWith('file://') ? fileURLToPath(url) : url);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new ChannelUnreachableError(`${url}: ${(err as Error).message}`);
    }
  }
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new ChannelUnreachableError(`${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
  if (res.status === 404) return null;
  if (!res.ok) throw new ChannelHttpError(`${url}: HTTP ${res.status} ${res.statusText}`);
  return readCapped(url, res);
}

// Read as it arrives and given up past the cap, so a server that answers with gigabytes costs
// 16 MiB of memory at most, not the whole answer.
async function readCapped(url: string, res: Response): Promise<Uint8Array> {
  const tooBig = () =>
    new ChannelHttpError(`${url}: the answer is larger than ${MAX_CHANNEL_DOCUMENT_BYTES / MIB} MiB, and no channel document (feed, definition, signature) is: is this a channel's URL?`);
  const declared = Number(res.headers.get('content-length'));
  if (declared > MAX_CHANNEL_DOCUMENT_BYTES) {
    await res.body?.cancel();
    throw tooBig();
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (res.body) {
    for await (const chunk of res.body) {
      size += chunk.length;
      if (size > MAX_CHANNEL_DOCUMENT_BYTES) {
        await res.body.cancel().catch(() => {});
        throw tooBig();
      }
      chunks.push(chunk);
    }
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return bytes;
}

export interface Fetched {
  /** Null: the server answered 404. */
  bytes: Uint8Array | null;
  /** Set when the server could not be reached and the cached copy is served. */
  staleSince: string | null;
  unreachableBecause: string | null;
  /**
   * Makes what was fetched the cached copy (once; nothing for an absence or a copy that came
   * from the cache). Already done on return unless the caller asked to keep it itself.
   */
  keep(): Promise<void>;
}

function cachePath(url: string, cacheDir: string | null): string {
  return join(defaultChannelCacheDir(cacheDir), createHash('sha256').update(url).digest('hex').slice(0, 32));
}

async function store(file: string, url: string, bytes: Uint8Array): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  // Unique temporary names: data sources read the same documents in parallel.
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, bytes);
  await rename(tmp, file);
  await writeFile(tmp, JSON.stringify({ url, fetchedAt: new Date().toISOString() }));
  await rename(tmp, `${file}.json`);
}

/**
 * Fetches a channel document (feed, signature, definition), keeping the last answer on disk;
 * when the server cannot be reached, the cached answer is returned, marked stale. Callers
 * verify what they get either way, so a cached copy is trusted no more than a fresh one.
 * `keep: false` leaves the cache as it was until the caller calls `keep()`: a feed is kept only
 * once verified, so that a replayed or tampered feed never becomes the copy served offline.
 */
export async function fetchCached(url: string, cacheDir: string | null, options: { keep?: boolean } = {}): Promise<Fetched> {
  const file = cachePath(url, cacheDir);
  const nothing = async () => {};
  let bytes: Uint8Array | null;
  try {
    bytes = await fetchBytes(url);
  } catch (err) {
    if (!(err instanceof ChannelUnreachableError)) throw err;
    const meta = await readFile(`${file}.json`, 'utf8').then((t) => JSON.parse(t) as { fetchedAt: string }, () => null);
    const cached = meta ? await readFile(file).catch(() => null) : null;
    if (!meta || !cached) throw err;
    return { bytes: cached, staleSince: meta.fetchedAt, unreachableBecause: err.message, keep: nothing };
  }
  // Only a document is kept, never an absence: the cache is the last good copy.
  let kept = bytes === null;
  const keep = async () => {
    if (kept || !bytes) return;
    kept = true;
    await store(file, url, bytes);
  };
  if (options.keep !== false) await keep();
  return { bytes, staleSince: null, unreachableBecause: null, keep };
}

// ---------------------------------------------------------------------------------------------
// What this machine has seen of each channel, for the rollback and retired-key checks: one small
// JSON file per channel under the channel cache, beside the cached documents.

export interface ChannelTrustState {
  channel: string;
  /** Per key id: the newest feed seen signed by it. */
  feeds: Record<string, { version: number; sha256: string; seenAt: number }>;
  /** Per old key id: the rotation away from it that storm followed. */
  retired: Record<string, { successor: string; version: number; followedAt: number }>;
}

/** The state file is there but not storm's; the message says which file and how to start over. */
export class TrustStateError extends Error {}

export function trustStatePath(cacheDir: string | null, channel: string): string {
  return join(defaultChannelCacheDir(cacheDir), 'trust', `${createHash('sha256').update(channel).digest('hex').slice(0, 32)}.json`);
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** What storm remembers of `channel` (its canonical name); empty when nothing yet. */
export async function readTrustState(cacheDir: string | null, channel: string): Promise<ChannelTrustState> {
  const file = trustStatePath(cacheDir, channel);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { channel, feeds: {}, retired: {} };
    throw new TrustStateError(`${file}: ${(err as Error).message}`);
  }
  const bad = (why: string) =>
    new TrustStateError(`${file} (what storm remembers of ${channel}) ${why}; delete it to start over, and storm forgets which feed versions it has seen of this channel`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw bad('is not JSON');
  }
  if (!isRecord(parsed) || parsed.channel !== channel || !isRecord(parsed.feeds) || !isRecord(parsed.retired)) throw bad('is not a storm channel state');
  const state: ChannelTrustState = { channel, feeds: {}, retired: {} };
  for (const [keyId, f] of Object.entries(parsed.feeds)) {
    if (!isRecord(f) || !isCount(f.version) || typeof f.sha256 !== 'string' || !isCount(f.seenAt)) throw bad(`has a bad entry for key ${keyId}`);
    state.feeds[keyId] = { version: f.version, sha256: f.sha256, seenAt: f.seenAt };
  }
  for (const [keyId, r] of Object.entries(parsed.retired)) {
    if (!isRecord(r) || typeof r.successor !== 'string' || !isCount(r.version) || !isCount(r.followedAt)) throw bad(`has a bad entry for retired key ${keyId}`);
    state.retired[keyId] = { successor: r.successor, version: r.version, followedAt: r.followedAt };
  }
  return state;
}

// One provider process reads a channel from several data sources at once: their updates to one
// file take turns, so none is lost. Between processes the window is a read and a rename; a lost
// update there only leaves an older version recorded (a weaker check next time, never a false
// refusal).
const updates = new Map<string, Promise<unknown>>();

/**
 * Changes what storm remembers of `channel`: `change` gets the state as it is on disk now and
 * returns the new one, which replaces the file atomically (write, fsync, rename), so a crash
 * leaves the old state or the new one, never half of either.
 */
export async function updateTrustState(cacheDir: string | null, channel: string, change: (state: ChannelTrustState) => ChannelTrustState): Promise<void> {
  const file = trustStatePath(cacheDir, channel);
  const previous = updates.get(file) ?? Promise.resolve();
  const next = previous.catch(() => {}).then(async () => {
    const state = change(await readTrustState(cacheDir, channel));
    await mkdir(dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    const handle = await open(tmp, 'w', 0o644);
    try {
      await handle.writeFile(JSON.stringify(state, null, 2) + '\n');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  });
  updates.set(file, next);
  try {
    await next;
  } finally {
    if (updates.get(file) === next) updates.delete(file);
  }
}

export function signatureUrl(url: string): string {
  return `${url}.sig`;
}
