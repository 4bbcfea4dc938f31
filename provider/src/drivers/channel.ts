// Fetches a channel's feed and its signature, keeping the last good copy on disk so a
// channel that is down still serves (with a warning), as the paper's managers cached theirs.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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
  return new Uint8Array(await res.arrayBuffer());
}

export interface Fetched {
  /** Null: the server answered 404. */
  bytes: Uint8Array | null;
  /** Set when the server could not be reached and the cached copy is served. */
  staleSince: string | null;
  unreachableBecause: string | null;
}

function cachePath(url: string, cacheDir: string | null): string {
  return join(defaultChannelCacheDir(cacheDir), createHash('sha256').update(url).digest('hex').slice(0, 32));
}

/**
 * Fetches a channel document (feed, signature, definition), keeping the last answer on disk;
 * when the server cannot be reached, the cached answer is returned, marked stale. Callers
 * verify what they get either way, so a cached copy is trusted no more than a fresh one.
 */
export async function fetchCached(url: string, cacheDir: string | null): Promise<Fetched> {
  const file = cachePath(url, cacheDir);
  try {
    const bytes = await fetchBytes(url);
    // Only a document is kept, never an absence: the cache is the last good copy.
    if (bytes) {
      await mkdir(dirname(file), { recursive: true });
      // Unique temporary names: data sources read the same documents in parallel.
      const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
      await writeFile(tmp, bytes);
      await rename(tmp, file);
      await writeFile(tmp, JSON.stringify({ url, fetchedAt: new Date().toISOString() }));
      await rename(tmp, `${file}.json`);
    }
    return { bytes, staleSince: null, unreachableBecause: null };
  } catch (err) {
    if (!(err instanceof ChannelUnreachableError)) throw err;
    const meta = await readFile(`${file}.json`, 'utf8').then((t) => JSON.parse(t) as { fetchedAt: string }, () => null);
    const bytes = meta ? await readFile(file).catch(() => null) : null;
    if (!meta || !bytes) throw err;
    return { bytes, staleSince: meta.fetchedAt, unreachableBecause: err.message };
  }
}

export function signatureUrl(url: string): string {
  return `${url}.sig`;
}
