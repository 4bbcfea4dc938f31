// Fetches a channel's feed and its signature, keeping the last good copy on disk so a
// channel that is down still serves (with a warning), as the paper's managers cached theirs.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
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

export interface FetchedFeed {
  xml: Uint8Array;
  sig: string | null;
  /** Set when the channel could not be reached and the cached copy is served. */
  staleSince: string | null;
  unreachableBecause: string | null;
}

export function signatureUrl(url: string): string {
  return `${url}.sig`;
}

export async function fetchFeed(url: string, cacheDir: string | null): Promise<FetchedFeed> {
  const dir = join(defaultChannelCacheDir(cacheDir), createHash('sha256').update(url).digest('hex').slice(0, 24));
  try {
    const xml = await fetchBytes(url);
    if (!xml) throw new ChannelHttpError(`${url}: HTTP 404 Not Found`);
    const sig = await fetchBytes(signatureUrl(url));
    return { xml, sig: sig ? Buffer.from(sig).toString('utf8') : null, staleSince: null, unreachableBecause: null };
  } catch (err) {
    if (!(err instanceof ChannelUnreachableError)) throw err;
    try {
      const [xml, meta] = await Promise.all([readFile(join(dir, 'feed.xml')), readFile(join(dir, 'meta.json'), 'utf8')]);
      const sig = await readFile(join(dir, 'feed.xml.sig'), 'utf8').catch(() => null);
      return { xml, sig, staleSince: (JSON.parse(meta) as { fetchedAt: string }).fetchedAt, unreachableBecause: err.message };
    } catch {
      throw err;
    }
  }
}

/** Keeps a feed that verified (or that the user chose not to verify) for when the channel is down. */
export async function cacheFeed(url: string, cacheDir: string | null, feed: FetchedFeed): Promise<void> {
  if (feed.staleSince) return;
  const dir = join(defaultChannelCacheDir(cacheDir), createHash('sha256').update(url).digest('hex').slice(0, 24));
  await mkdir(dir, { recursive: true });
  const tmp = (name: string) => join(dir, `${name}.tmp`);
  await writeFile(tmp('feed.xml'), feed.xml);
  await rename(tmp('feed.xml'), join(dir, 'feed.xml'));
  if (feed.sig !== null) {
    await writeFile(tmp('feed.xml.sig'), feed.sig);
    await rename(tmp('feed.xml.sig'), join(dir, 'feed.xml.sig'));
  }
  await writeFile(join(dir, 'meta.json'), JSON.stringify({ url, fetchedAt: new Date().toISOString() }));
}
