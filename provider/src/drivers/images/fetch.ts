// Turns an image source (local path or HTTP(S) URL, always with an expected sha256) into a
// verified local file. Downloads land in a content-addressed cache:
//
//   <cacheDir>/<sha256>            verified image, renamed into place only after the hash matched
//   <cacheDir>/<sha256>.json       sidecar {sha256, size, url, verifiedAt}: a hit whose size matches
//                                  it is trusted without re-hashing GiBs on every plan/apply
//   <cacheDir>/<sha256>.part       interrupted download, resumed with `Range: bytes=N-`
//   <cacheDir>/<sha256>.part.json  where the .part came from and its validator (ETag or
//                                  Last-Modified) so a resume can send If-Range
//   <cacheDir>/<sha256>.lock       held while downloading: Terraform applies resources in
//                                  parallel and `storm fetch` may run beside it, and two writers
//                                  appending to one .part would corrupt it
import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import type { ClientRequest, IncomingMessage } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

export interface ImageSource {
  /** `https://…`, `http://…`, `file:///abs/path`, or a filesystem path. */
  url: string;
  /** Expected sha256, hex (an optional `sha256:` prefix is accepted). */
  sha256: string;
}

export interface Progress {
  /** Bytes present so far, including the resumed prefix. */
  bytes: number;
  total: number | null;
  /** Over the last few seconds, counting only bytes transferred by this call. */
  bytesPerSecond: number;
  /** Bytes that were already in the .part when this call started (0 when not resuming). */
  resumedFrom: number;
}

export interface FetchOptions {
  cacheDir?: string;
  onProgress?: (p: Progress) => void;
  /** Aborting keeps the .part for the next call; the promise rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** Give up on a connection that sent nothing for this long (default 60 s). */
  idleTimeoutMs?: number;
}

export interface FetchedImage {
  path: string;
  size: number;
  sha256: string;
  fromCache: boolean;
}

/** Any failure to turn a source into a verified file; `url` is the source as given (credentials removed). */
export class ImageSourceError extends Error {
  override name = 'ImageSourceError';
  constructor(readonly url: string, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** HTTP failure: `status` is null for network-level failures (refused, reset, timeout, cut short). */
export class DownloadError extends ImageSourceError {
  override name = 'DownloadError';
  constructor(url: string, readonly status: number | null, message: string, options?: ErrorOptions) {
    super(url, message, options);
  }
}

export class ChecksumMismatchError extends ImageSourceError {
  override name = 'ChecksumMismatchError';
  constructor(url: string, readonly expected: string, readonly actual: string) {
    super(url, `sha256 mismatch for ${url}: expected ${expected}, got ${actual}`);
  }
}

const MAX_REDIRECTS = 10;
const PROGRESS_INTERVAL_MS = 250;
const RATE_WINDOW_MS = 5_000;
const LOCK_POLL_MS = 200;
const LOCK_HEARTBEAT_MS = 10_000;
// Several missed heartbeats: the holder is gone (crashed on another host sharing the cache,
// or its pid was reused here).
const LOCK_STALE_MS = 60_000;

/** `$STORM_CACHE_DIR`, else `$XDG_CACHE_HOME/storm/images`, else `~/.cache/storm/images`. */
/** storm's cache root holds images/ and channels/; $STORM_CACHE_DIR names the root. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.STORM_CACHE_DIR) return path.join(path.resolve(env.STORM_CACHE_DIR), 'images');
  // The XDG spec says relative values are invalid and must be ignored.
  const xdg = env.XDG_CACHE_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache');
  return path.join(base, 'storm', 'images');
}

export async function fetchImage(source: ImageSource, options: FetchOptions = {}): Promise<FetchedImage> {
  const where = resolveSource(source.url);
  const expected = normalizeSha256(source.sha256, where.display);
  options.signal?.throwIfAborted();
  if (where.kind === 'file') return verifyLocalFile(where.path, expected, where.display, options);

  const cacheDir = path.resolve(options.cacheDir ?? defaultCacheDir());
  await fs.mkdir(cacheDir, { recursive: true });
  const final = path.join(cacheDir, expected);
  const quick = await cachedImage(final, expected, false);
  if (quick) return quick;

  const release = await acquireLock(`${final}.lock`, options.signal);
  try {
    // Whoever held the lock may have just finished this very download.
    const hit = await cachedImage(final, expected, true);
    if (hit) return hit;
    return await download(where.url, where.display, expected, final, options);
  } finally {
    await release();
  }
}

// ---------------------------------------------------------------------------------------------
// Sources

type Where = { kind: 'file'; path: string; display: string } | { kind: 'http'; url: URL; display: string };

function resolveSource(raw: string): Where {
  const url = raw.trim();
  if (/^https?:\/\//i.test(url)) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new ImageSourceError(url, `invalid image URL "${url}"`);
    }
    return { kind: 'http', url: parsed, display: redact(parsed) };
  }
  if (/^file:/i.test(url)) {
    let p: string;
    try {
      p = fileURLToPath(url);
    } catch (e) {
      throw new ImageSourceError(url, `invalid file URL "${url}": ${(e as Error).message}`);
    }
    return { kind: 'file', path: p, display: url };
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url);
  if (scheme) throw new ImageSourceError(url, `unsupported image URL scheme "${scheme[1]}:" in "${url}" (use https://, http://, file:// or a path)`);
  if (url === '') throw new ImageSourceError(url, 'empty image source');
  // HCL does not expand `~`, and `${path.module}/…` is relative to Terraform's working
  // directory, which is also the provider's.
  const expanded = url === '~' || url.startsWith('~/') ? path.join(os.homedir(), url.slice(1)) : url;
  const p = path.resolve(expanded);
  return { kind: 'file', path: p, display: p };
}

function redact(url: URL): string {
  if (!url.username && !url.password) return url.href;
  const copy = new URL(url.href);
  copy.username = '';
  copy.password = '';
  return copy.href;
}

function normalizeSha256(value: string, display: string): string {
  const hex = value.trim().replace(/^sha256:/i, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new ImageSourceError(display, `sha256 for ${display} must be 64 hex digits, got "${value}"`);
  return hex;
}

async function verifyLocalFile(file: string, expected: string, display: string, options: FetchOptions): Promise<FetchedImage> {
  let size: number;
  try {
    const st = await fs.stat(file);
    if (!st.isFile()) throw new ImageSourceError(display, `image source ${file} is not a regular file`);
    size = st.size;
  } catch (e) {
    if (e instanceof ImageSourceError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable' : (e as Error).message;
    throw new ImageSourceError(display, `image file ${file} ${why}`, { cause: e });
  }
  const meter = new ProgressMeter(options.onProgress, 0, size);
  meter.update(0, true);
  const actual = await hashFile(file, size, options.signal, (n) => meter.update(n));
  meter.update(size, true);
  if (actual !== expected) throw new ChecksumMismatchError(display, expected, actual);
  return { path: file, size, sha256: expected, fromCache: false };
}

async function hashFile(file: string, length: number, signal?: AbortSignal, onBytes?: (n: number) => void): Promise<string> {
  const hash = createHash('sha256');
  await hashInto(hash, file, length, signal, onBytes);
  return hash.digest('hex');
}

async function hashInto(hash: Hash, file: string, length: number, signal?: AbortSignal, onBytes?: (n: number) => void): Promise<void> {
  if (length === 0) return;
  let n = 0;
  try {
    for await (const chunk of createReadStream(file, { start: 0, end: length - 1, highWaterMark: 1 << 20, signal })) {
      hash.update(chunk as Buffer);
      n += (chunk as Buffer).length;
      onBytes?.(n);
    }
  } catch (e) {
    if (signal?.aborted) throw signal.reason;
    throw e;
  }
  // A file that shrank under us must not pass as a shorter prefix.
  if (n !== length) throw new Error(`${file} has ${n} bytes, expected ${length}`);
}

// ---------------------------------------------------------------------------------------------
// Cache

interface Sidecar {
  sha256: string;
  size: number;
  url: string;
  verifiedAt: string;
}

async function cachedImage(final: string, expected: string, mayRehash: boolean): Promise<FetchedImage | null> {
  const size = await fileSize(final);
  if (size === null) return null;
  const sidecar = await readJson<Sidecar>(`${final}.json`);
  if (sidecar && sidecar.sha256 === expected && sidecar.size === size) return { path: final, size, sha256: expected, fromCache: true };
  // Only under the lock: re-hashing or deleting while another process renames a fresh copy
  // into place would act on the wrong inode.
  if (!mayRehash) return null;
  const actual = await hashFile(final, size);
  if (actual === expected) {
    await writeSidecar(final, { sha256: expected, size, url: sidecar?.url ?? '', verifiedAt: new Date().toISOString() });
    return { path: final, size, sha256: expected, fromCache: true };
  }
  await fs.rm(final, { force: true });
  await fs.rm(`${final}.json`, { force: true });
  return null;
}

async function writeSidecar(final: string, record: Sidecar): Promise<void> {
  const tmp = `${final}.json.${process.pid}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(record) + '\n');
  await fs.rename(tmp, `${final}.json`);
}

async function fileSize(file: string): Promise<number | null> {
  try {
    return (await fs.stat(file)).size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

async function readJson<T>(file: string): Promise<T | null> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as T;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Lock

async function acquireLock(file: string, signal?: AbortSignal): Promise<() => Promise<void>> {
  const owner = `${process.pid}\n${os.hostname()}\n`;
  for (;;) {
    signal?.throwIfAborted();
    try {
      await fs.writeFile(file, owner, { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    if (await lockIsStale(file)) {
      await fs.rm(file, { force: true });
      continue;
    }
    await sleep(LOCK_POLL_MS, signal);
  }
  const heartbeat = setInterval(() => {
    const now = new Date();
    fs.utimes(file, now, now).catch(() => {});
  }, LOCK_HEARTBEAT_MS);
  heartbeat.unref();
  return async () => {
    clearInterval(heartbeat);
    await fs.rm(file, { force: true });
  };
}

async function lockIsStale(file: string): Promise<boolean> {
  let text: string;
  let mtimeMs: number;
  try {
    [text, mtimeMs] = await Promise.all([fs.readFile(file, 'utf8'), fs.stat(file).then((s) => s.mtimeMs)]);
  } catch (e) {
    // Released between our attempt and this look: not stale, just retry.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
  const [pidText, host] = text.split('\n');
  const pid = Number(pidText);
  if (host === os.hostname() && Number.isInteger(pid) && pid > 0 && !processAlive(pid)) return true;
  return Date.now() - mtimeMs > LOCK_STALE_MS;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

// ---------------------------------------------------------------------------------------------
// Download

interface PartMeta {
  url: string;
  /** Strong ETag or Last-Modified of the response the .part started from. */
  validator: string | null;
}

async function download(url: URL, display: string, expected: string, final: string, options: FetchOptions): Promise<FetchedImage> {
  const { signal } = options;
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  const part = `${final}.part`;
  const partMetaFile = `${final}.part.json`;

  let offset = (await fileSize(part)) ?? 0;
  let meta = offset > 0 ? await readJson<PartMeta>(partMetaFile) : null;
  // Hashed before the request so the connection never sits idle while we read GiBs from disk.
  let prefixHash = offset > 0 ? createHash('sha256') : null;
  if (prefixHash) await hashInto(prefixHash, part, offset, signal);

  const restart = async (): Promise<void> => {
    await fs.rm(part, { force: true });
    await fs.rm(partMetaFile, { force: true });
    offset = 0;
    meta = null;
    prefixHash = null;
  };

  for (let attempt = 0; ; attempt++) {
    if (attempt > 3) throw new DownloadError(display, null, `${display}: the server kept rejecting the resumed range; giving up`);
    const headers: Record<string, string> = { 'user-agent': 'storm', 'accept-encoding': 'identity' };
    if (offset > 0) {
      headers.range = `bytes=${offset}-`;
      if (meta?.validator && meta.url === url.href) headers['if-range'] = meta.validator;
    }
    const { req, res, finalUrl } = await get(url, display, headers, signal, idleTimeoutMs);
    const status = res.statusCode ?? 0;

    if (status === 416) {
      res.resume();
      if (offset === 0) throw new DownloadError(display, status, `${display}: HTTP 416 Range Not Satisfiable without a range request`);
      await restart();
      continue;
    }
    if (status !== 200 && status !== 206) {
      res.resume();
      const from = finalUrl.href !== url.href ? ` (redirected to ${redact(finalUrl)})` : '';
      throw new DownloadError(display, status, `${display}${from}: HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`);
    }

    let start = 0;
    let total: number | null;
    if (status === 206) {
      const range = parseContentRange(res.headers['content-range']);
      if (!range || range.start !== offset) {
        // A range we did not ask for: its bytes cannot be appended to what we have.
        res.resume();
        await restart();
        continue;
      }
      start = range.start;
      total = range.total;
    } else {
      const length = Number(res.headers['content-length']);
      total = res.headers['content-length'] !== undefined && Number.isSafeInteger(length) ? length : null;
    }

    let hash: Hash;
    if (start > 0 && prefixHash) {
      hash = prefixHash;
    } else {
      // 200 to a range request: the server ignored Range (or If-Range saw a changed file), so
      // the body is the whole file from byte 0.
      hash = createHash('sha256');
      start = 0;
      const validator = strongValidator(res);
      await fs.writeFile(partMetaFile, JSON.stringify({ url: url.href, validator } satisfies PartMeta) + '\n');
    }

    const meter = new ProgressMeter(options.onProgress, start, total);
    meter.update(start, true);
    let received = start;
    const out = createWriteStream(part, { flags: start > 0 ? 'a' : 'w' });
    try {
      await pipeline(
        res,
        async function* (source: AsyncIterable<Buffer>) {
          for await (const chunk of source) {
            hash.update(chunk);
            received += chunk.length;
            meter.update(received);
            yield chunk;
          }
        },
        out,
        signal ? { signal } : {},
      );
    } catch (e) {
      // A write still in flight would land after the lock is released, behind the back of
      // the next attempt that appends to the same .part.
      if (!out.closed) await new Promise<void>((resolve) => out.once('close', () => resolve()));
      if (signal?.aborted) throw signal.reason;
      const reason = idleTimeouts.get(req) ?? (e as Error).message;
      throw new DownloadError(display, null, `${display}: download interrupted after ${formatBytes(received)}${total !== null ? ` of ${formatBytes(total)}` : ''} (${reason}); the partial file is kept and the next attempt resumes it`, { cause: e });
    }
    if (total !== null && received !== total) {
      throw new DownloadError(display, null, `${display}: connection closed after ${formatBytes(received)} of ${formatBytes(total)}; the partial file is kept and the next attempt resumes it`);
    }
    meter.update(received, true);

    const actual = hash.digest('hex');
    if (actual !== expected) {
      await fs.rm(part, { force: true });
      await fs.rm(partMetaFile, { force: true });
      throw new ChecksumMismatchError(display, expected, actual);
    }
    // The sidecar lets later hits skip hashing, so the bytes must be on disk before the name is.
    const fh = await fs.open(part, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(part, final);
    await fs.rm(partMetaFile, { force: true });
    await writeSidecar(final, { sha256: expected, size: received, url: display, verifiedAt: new Date().toISOString() });
    return { path: final, size: received, sha256: expected, fromCache: false };
  }
}

async function get(url: URL, display: string, headers: Record<string, string>, signal: AbortSignal | undefined, idleTimeoutMs: number): Promise<{ req: ClientRequest; res: IncomingMessage; finalUrl: URL }> {
  let current = url;
  for (let hops = 0; ; hops++) {
    const { req, res } = await request(current, display, headers, signal, idleTimeoutMs);
    const status = res.statusCode ?? 0;
    const location = res.headers.location;
    if (![301, 302, 303, 307, 308].includes(status) || !location) return { req, res, finalUrl: current };
    res.resume();
    if (hops >= MAX_REDIRECTS) throw new DownloadError(display, status, `${display}: more than ${MAX_REDIRECTS} redirects`);
    const next = new URL(location, current);
    if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new DownloadError(display, status, `${display}: redirected to unsupported URL ${redact(next)}`);
    current = next;
  }
}

// Once the body streams, destroying the request surfaces as a bare "aborted" on the response;
// this keeps the real reason.
const idleTimeouts = new WeakMap<ClientRequest, string>();

function request(url: URL, display: string, headers: Record<string, string>, signal: AbortSignal | undefined, idleTimeoutMs: number): Promise<{ req: ClientRequest; res: IncomingMessage }> {
  return new Promise((resolve, reject) => {
    // Not `import http from 'node:http'`: an ESM import reads every export of node:http, whose
    // lazy getters load undici (~15 ms of each provider start); this loads only http(s).
    const client = url.protocol === 'https:' ? process.getBuiltinModule('node:https') : process.getBuiltinModule('node:http');
    const req = client.get(url, { headers, ...(signal ? { signal } : {}) });
    // Also covers the body: the socket timeout stays armed while the response streams.
    req.setTimeout(idleTimeoutMs, () => {
      const reason = `no data from ${url.host} for ${idleTimeoutMs >= 1000 ? `${Math.round(idleTimeoutMs / 1000)} s` : `${idleTimeoutMs} ms`}`;
      idleTimeouts.set(req, reason);
      req.destroy(new DownloadError(display, null, `${display}: ${reason}`));
    });
    req.once('response', (res) => resolve({ req, res }));
    req.once('error', (e) => {
      if (signal?.aborted) reject(signal.reason);
      else if (e instanceof ImageSourceError) reject(e);
      else reject(new DownloadError(display, null, `${display}: ${(e as NodeJS.ErrnoException).code ?? e.message} connecting to ${url.host}`, { cause: e }));
    });
  });
}

function parseContentRange(value: string | undefined): { start: number; end: number; total: number | null } | null {
  const m = value ? /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(value.trim()) : null;
  if (!m) return null;
  const start = Number(m[1]);
  const end = Number(m[2]);
  const total = m[3] === '*' ? null : Number(m[3]);
  if (end < start || (total !== null && end >= total)) return null;
  return { start, end, total };
}

// If-Range needs a strong ETag; a weak one would make every resume restart from zero.
function strongValidator(res: IncomingMessage): string | null {
  const etag = res.headers.etag;
  if (etag && !etag.startsWith('W/')) return etag;
  return res.headers['last-modified'] ?? null;
}

// ---------------------------------------------------------------------------------------------
// Progress

class ProgressMeter {
  private readonly samples: Array<{ t: number; bytes: number }> = [];
  private lastEmit = -Infinity;

  constructor(
    private readonly onProgress: ((p: Progress) => void) | undefined,
    private readonly resumedFrom: number,
    private readonly total: number | null,
  ) {}

  update(bytes: number, force = false): void {
    if (!this.onProgress) return;
    const t = performance.now();
    if (!force && t - this.lastEmit < PROGRESS_INTERVAL_MS) return;
    this.lastEmit = t;
    this.samples.push({ t, bytes });
    // Keep one sample older than the window so the rate always spans about the window.
    while (this.samples.length > 2 && t - this.samples[1]!.t >= RATE_WINDOW_MS) this.samples.shift();
    const first = this.samples[0]!;
    const seconds = (t - first.t) / 1000;
    const bytesPerSecond = seconds > 0 ? (bytes - first.bytes) / seconds : 0;
    this.onProgress({ bytes, total: this.total, bytesPerSecond, resumedFrom: this.resumedFrom });
  }
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** `512 B`, `312.4 MiB`, `1.0 GiB`. */
export function formatBytes(n: number): string {
  let value = Math.max(0, n);
  let unit = 0;
  // Compare with the rounded value so 1023.96 KiB reads "1.0 MiB", not "1024.0 KiB".
  while (unit < UNITS.length - 1 && (unit === 0 ? value >= 1024 : Number(value.toFixed(1)) >= 1024)) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

/** `14s`, `3m05s`, `2h07m`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** The pieces of a progress line after its label; empty strings for what is not known yet. */
export function progressFields(p: Progress): { amount: string; percent: string; rate: string; eta: string } {
  const known = p.total !== null && p.total > 0;
  const amount = p.total !== null ? `${formatBytes(p.bytes)} / ${formatBytes(p.total)}` : formatBytes(p.bytes);
  const percent = known ? `${Math.min(100, Math.floor((p.bytes / p.total!) * 100))}%` : '';
  const moving = p.bytesPerSecond > 0;
  const rate = moving ? `${formatBytes(p.bytesPerSecond)}/s` : '';
  const eta = moving && known && p.bytes < p.total! ? `eta ${formatDuration((p.total! - p.bytes) / p.bytesPerSecond)}` : '';
  return { amount, percent, rate, eta };
}

/** `base-debian-12  312.4 MiB / 1.0 GiB  31%  48.2 MiB/s  eta 14s` */
export function formatProgressLine(p: Progress, label: string): string {
  const f = progressFields(p);
  return [label, f.amount, f.percent, f.rate, f.eta].filter((s) => s !== '').join('  ');
}
