import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  ChecksumMismatchError,
  DownloadError,
  ImageSourceError,
  defaultCacheDir,
  fetchImage,
  formatBytes,
  formatDuration,
  formatProgressLine,
} from '../src/drivers/images/fetch.ts';
import type { Progress } from '../src/drivers/images/fetch.ts';
import { fetchCommand, renderBar } from '../src/cli/fetch.ts';

const MiB = 1024 * 1024;
const SIZE = 8 * MiB;
const DATA = randomBytes(SIZE);
const SHA = createHash('sha256').update(DATA).digest('hex');
const ETAG = '"v1"';
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface Seen {
  path: string;
  range: string | undefined;
  ifRange: string | undefined;
}

// One server for the whole file; each path is a behaviour a real mirror might have.
const seen: Seen[] = [];
let dropNext = false;
let server: http.Server;
let base: string;
let tmp: string;

function serveRanged(req: http.IncomingMessage, res: http.ServerResponse, data: Buffer): void {
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const ifRange = req.headers['if-range'];
  if (!range || (ifRange !== undefined && ifRange !== ETAG)) {
    res.writeHead(200, { 'content-length': data.length, etag: ETAG, 'accept-ranges': 'bytes' });
    res.end(data);
    return;
  }
  const start = Number(range[1]);
  if (start >= data.length) {
    res.writeHead(416, { 'content-range': `bytes */${data.length}` });
    res.end();
    return;
  }
  res.writeHead(206, { 'content-length': data.length - start, 'content-range': `bytes ${start}-${data.length - 1}/${data.length}`, etag: ETAG });
  res.end(data.subarray(start));
}

function serveSlowly(res: http.ServerResponse, data: Buffer, chunk: number, everyMs: number): void {
  res.writeHead(200, { 'content-length': data.length, etag: ETAG });
  let at = 0;
  const timer = setInterval(() => {
    if (res.destroyed) return clearInterval(timer);
    res.write(data.subarray(at, at + chunk));
    at += chunk;
    if (at >= data.length) {
      clearInterval(timer);
      res.end();
    }
  }, everyMs);
  res.on('close', () => clearInterval(timer));
}

function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  seen.push({ path: url.pathname, range: req.headers.range, ifRange: req.headers['if-range'] as string | undefined });
  switch (url.pathname) {
    case '/img.qcow2':
      return serveRanged(req, res, DATA);
    case '/norange.qcow2':
      res.writeHead(200, { 'content-length': SIZE });
      res.end(DATA);
      return;
    case '/drop.qcow2':
      if (!dropNext) return serveRanged(req, res, DATA);
      dropNext = false;
      res.writeHead(200, { 'content-length': SIZE, etag: ETAG });
      res.write(DATA.subarray(0, SIZE / 2), () => res.socket?.destroy());
      return;
    case '/slow.qcow2':
      return serveSlowly(res, DATA, 256 * 1024, 15);
    case '/stall.qcow2':
      res.writeHead(200, { 'content-length': SIZE });
      res.write(DATA.subarray(0, MiB));
      return;
    case '/redirect':
      res.writeHead(302, { location: '/img.qcow2' });
      res.end();
      return;
    case '/loop':
      res.writeHead(301, { location: '/loop' });
      res.end();
      return;
    default:
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
  }
}

before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'storm-fetch-test-'));
  server = http.createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await fs.rm(tmp, { recursive: true, force: true });
});

let dirs = 0;
async function freshCache(): Promise<string> {
  const dir = path.join(tmp, `cache-${++dirs}`);
  await fs.mkdir(dir);
  return dir;
}

const exists = (p: string): Promise<boolean> => fs.access(p).then(() => true, () => false);
const requestsFor = (p: string): Seen[] => seen.filter((s) => s.path === p);
const randomSha = (): string => randomBytes(32).toString('hex');

describe('fetchImage over HTTP', () => {
  test('downloads into <cacheDir>/<sha256>, then hits the cache without a request', async () => {
    const cacheDir = await freshCache();
    const before = requestsFor('/img.qcow2').length;
    const first = await fetchImage({ url: `${base}/img.qcow2`, sha256: SHA }, { cacheDir });
    assert.deepEqual(first, { path: path.join(cacheDir, SHA), size: SIZE, sha256: SHA, fromCache: false });
    assert.ok((await fs.readFile(first.path)).equals(DATA));
    assert.deepEqual((await fs.readdir(cacheDir)).sort(), [SHA, `${SHA}.json`]);
    const sidecar = JSON.parse(await fs.readFile(path.join(cacheDir, `${SHA}.json`), 'utf8'));
    assert.equal(sidecar.size, SIZE);
    assert.equal(sidecar.sha256, SHA);

    const second = await fetchImage({ url: `${base}/img.qcow2`, sha256: SHA.toUpperCase() }, { cacheDir });
    assert.deepEqual(second, { ...first, fromCache: true });
    assert.equal(requestsFor('/img.qcow2').length, before + 1);
  });

  test('a cached file whose size disagrees with its sidecar is re-hashed, dropped and downloaded again', async () => {
    const cacheDir = await freshCache();
    await fetchImage({ url: `${base}/img.qcow2`, sha256: SHA }, { cacheDir });
    await fs.truncate(path.join(cacheDir, SHA), SIZE - 1);
    const before = requestsFor('/img.qcow2').length;
    const again = await fetchImage({ url: `${base}/img.qcow2`, sha256: SHA }, { cacheDir });
    assert.equal(again.fromCache, false);
    assert.equal(requestsFor('/img.qcow2').length, before + 1);
    assert.ok((await fs.readFile(again.path)).equals(DATA));
  });

  test('a cached file without a sidecar is verified once and kept', async () => {
    const cacheDir = await freshCache();
    await fetchImage({ url: `${base}/img.qcow2`, sha256: SHA }, { cacheDir });
    await fs.rm(path.join(cacheDir, `${SHA}.json`));
    const before = requestsFor('/img.qcow2').length;
    const hit = await fetchImage({ url: `${base}/img.qcow2`, sha256: SHA }, { cacheDir });
    assert.equal(hit.fromCache, true);
    assert.equal(requestsFor('/img.qcow2').length, before);
    assert.ok(await exists(path.join(cacheDir, `${SHA}.json`)));
  });

  test('wrong sha256 → ChecksumMismatchError, and neither a final file nor a .part remains', async () => {
    const cacheDir = await freshCache();
    const wrong = randomSha();
    await assert.rejects(fetchImage({ url: `${base}/img.qcow2`, sha256: wrong }, { cacheDir }), (e: unknown) => {
      assert.ok(e instanceof ChecksumMismatchError);
      assert.equal(e.expected, wrong);
      assert.equal(e.actual, SHA);
      assert.match(e.message, new RegExp(`expected ${wrong}, got ${SHA}`));
      assert.match(e.message, /\/img\.qcow2/);
      return true;
    });
    assert.deepEqual(await fs.readdir(cacheDir), []);
  });

  test('a dropped connection keeps the .part; the next call resumes with Range and If-Range', async () => {
    const cacheDir = await freshCache();
    const url = `${base}/drop.qcow2`;
    dropNext = true;
    await assert.rejects(fetchImage({ url, sha256: SHA }, { cacheDir }), (e: unknown) => {
      assert.ok(e instanceof DownloadError);
      assert.equal(e.status, null);
      assert.match(e.message, /resumes/);
      return true;
    });
    const part = path.join(cacheDir, `${SHA}.part`);
    const partSize = (await fs.stat(part)).size;
    assert.ok(partSize > 0 && partSize <= SIZE / 2, `part has ${partSize} bytes`);
    assert.ok(!(await exists(path.join(cacheDir, SHA))));
    assert.ok(!(await exists(path.join(cacheDir, `${SHA}.lock`))));

    const progress: Progress[] = [];
    const result = await fetchImage({ url, sha256: SHA }, { cacheDir, onProgress: (p) => progress.push(p) });
    const last = requestsFor('/drop.qcow2').at(-1)!;
    assert.equal(last.range, `bytes=${partSize}-`);
    assert.equal(last.ifRange, ETAG);
    assert.equal(result.fromCache, false);
    assert.ok((await fs.readFile(result.path)).equals(DATA));
    assert.equal(progress[0]!.resumedFrom, partSize);
    assert.equal(progress[0]!.bytes, partSize);
    assert.equal(progress.at(-1)!.bytes, SIZE);
    assert.deepEqual((await fs.readdir(cacheDir)).sort(), [SHA, `${SHA}.json`]);
  });

  test('a server that ignores Range (200) restarts the download from byte 0', async () => {
    const cacheDir = await freshCache();
    await fs.writeFile(path.join(cacheDir, `${SHA}.part`), DATA.subarray(0, 3 * MiB));
    const progress: Progress[] = [];
    const result = await fetchImage({ url: `${base}/norange.qcow2`, sha256: SHA }, { cacheDir, onProgress: (p) => progress.push(p) });
    assert.equal(requestsFor('/norange.qcow2').at(-1)!.range, `bytes=${3 * MiB}-`);
    assert.ok((await fs.readFile(result.path)).equals(DATA));
    assert.equal(result.size, SIZE);
    assert.equal(progress[0]!.resumedFrom, 0);
    assert.equal(progress[0]!.bytes, 0);
  });

  test('If-Range with a stale validator gets the whole file instead of a mismatched tail', async () => {
    const cacheDir = await freshCache();
    const url = `${base}/img.qcow2`;
    await fs.writeFile(path.join(cacheDir, `${SHA}.part`), randomBytes(MiB));
    await fs.writeFile(path.join(cacheDir, `${SHA}.part.json`), JSON.stringify({ url, validator: '"v0"' }));
    const result = await fetchImage({ url, sha256: SHA }, { cacheDir });
    const last = requestsFor('/img.qcow2').at(-1)!;
    assert.deepEqual([last.range, last.ifRange], [`bytes=${MiB}-`, '"v0"']);
    assert.ok((await fs.readFile(result.path)).equals(DATA));
  });

  test('416 for a .part longer than the file restarts from 0', async () => {
    const cacheDir = await freshCache();
    await fs.writeFile(path.join(cacheDir, `${SHA}.part`), randomBytes(SIZE + 10));
    const result = await fetchImage({ url: `${base}/img.qcow2`, sha256: SHA }, { cacheDir });
    const [a, b] = requestsFor('/img.qcow2').slice(-2);
    assert.equal(a!.range, `bytes=${SIZE + 10}-`);
    assert.equal(b!.range, undefined);
    assert.ok((await fs.readFile(result.path)).equals(DATA));
  });

  test('404 → DownloadError with status and URL', async () => {
    const cacheDir = await freshCache();
    await assert.rejects(fetchImage({ url: `${base}/nope.qcow2`, sha256: SHA }, { cacheDir }), (e: unknown) => {
      assert.ok(e instanceof DownloadError);
      assert.equal(e.status, 404);
      assert.equal(e.url, `${base}/nope.qcow2`);
      assert.match(e.message, /HTTP 404/);
      return true;
    });
    assert.deepEqual(await fs.readdir(cacheDir), []);
  });

  test('redirects are followed, and a redirect loop is bounded', async () => {
    const cacheDir = await freshCache();
    const result = await fetchImage({ url: `${base}/redirect`, sha256: SHA }, { cacheDir });
    assert.ok((await fs.readFile(result.path)).equals(DATA));
    assert.deepEqual(seen.slice(-2).map((s) => s.path), ['/redirect', '/img.qcow2']);

    await assert.rejects(fetchImage({ url: `${base}/loop`, sha256: randomSha() }, { cacheDir }), (e: unknown) => e instanceof DownloadError && /redirects/.test(e.message));
  });

  test('connection refused → DownloadError without status', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await assert.rejects(
      fetchImage({ url: `http://127.0.0.1:${port}/x.qcow2`, sha256: SHA }, { cacheDir: await freshCache() }),
      (e: unknown) => e instanceof DownloadError && e.status === null && /ECONNREFUSED/.test(e.message),
    );
  });

  test('a server that stops sending hits the idle timeout; the .part is kept', async () => {
    const cacheDir = await freshCache();
    await assert.rejects(
      fetchImage({ url: `${base}/stall.qcow2`, sha256: SHA }, { cacheDir, idleTimeoutMs: 300 }),
      (e: unknown) => e instanceof DownloadError && e.status === null && /interrupted after 1\.0 MiB of 8\.0 MiB \(no data from 127\.0\.0\.1:\d+ for 300 ms\)/.test(e.message),
    );
    assert.equal((await fs.stat(path.join(cacheDir, `${SHA}.part`))).size, MiB);
  });

  test('abort via signal rejects with the reason, keeps the .part, and a later call resumes it', async () => {
    const cacheDir = await freshCache();
    const controller = new AbortController();
    const progress: Progress[] = [];
    const pending = fetchImage(
      { url: `${base}/slow.qcow2`, sha256: SHA },
      {
        cacheDir,
        signal: controller.signal,
        onProgress: (p) => {
          progress.push(p);
          if (p.bytes > 0) controller.abort();
        },
      },
    );
    await assert.rejects(pending, (e: unknown) => (e as Error).name === 'AbortError');
    const partSize = (await fs.stat(path.join(cacheDir, `${SHA}.part`))).size;
    assert.ok(partSize > 0 && partSize < SIZE, `part has ${partSize} bytes`);
    assert.ok(!(await exists(path.join(cacheDir, `${SHA}.lock`))));

    // Content-addressed: a .part from one mirror resumes from another.
    const result = await fetchImage({ url: `${base}/img.qcow2`, sha256: SHA }, { cacheDir });
    assert.equal(requestsFor('/img.qcow2').at(-1)!.range, `bytes=${partSize}-`);
    assert.ok((await fs.readFile(result.path)).equals(DATA));
  });

  test('an already-aborted signal does nothing', async () => {
    const cacheDir = await freshCache();
    const before = seen.length;
    await assert.rejects(fetchImage({ url: `${base}/img.qcow2`, sha256: SHA }, { cacheDir, signal: AbortSignal.abort() }), { name: 'AbortError' });
    assert.equal(seen.length, before);
  });

  test('progress is monotonic, throttled to about 4 per second, and ends at the total', async () => {
    const cacheDir = await freshCache();
    const progress: Array<Progress & { at: number }> = [];
    const started = performance.now();
    await fetchImage({ url: `${base}/slow.qcow2`, sha256: SHA }, { cacheDir, onProgress: (p) => progress.push({ ...p, at: performance.now() }) });
    const elapsed = performance.now() - started;
    assert.ok(progress.length >= 3, `${progress.length} callbacks`);
    assert.ok(progress.length <= elapsed / 250 + 2, `${progress.length} callbacks in ${elapsed} ms`);
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i]!.bytes >= progress[i - 1]!.bytes);
    // All but the final (forced) report are at least the interval apart.
    for (let i = 1; i < progress.length - 1; i++) assert.ok(progress[i]!.at - progress[i - 1]!.at >= 240);
    assert.deepEqual(progress.map((p) => p.total), progress.map(() => SIZE));
    assert.equal(progress.at(-1)!.bytes, SIZE);
    assert.ok(progress.at(-1)!.bytesPerSecond > 0);
  });

  test('concurrent calls for one image download it once', async () => {
    const cacheDir = await freshCache();
    const before = requestsFor('/slow.qcow2').length;
    const results = await Promise.all([
      fetchImage({ url: `${base}/slow.qcow2`, sha256: SHA }, { cacheDir }),
      fetchImage({ url: `${base}/slow.qcow2`, sha256: SHA }, { cacheDir }),
    ]);
    assert.equal(requestsFor('/slow.qcow2').length, before + 1);
    assert.deepEqual(results.map((r) => r.fromCache).sort(), [false, true]);
    assert.ok((await fs.readFile(results[0]!.path)).equals(DATA));
  });

  test('a lock left by a dead process is taken over', async () => {
    const cacheDir = await freshCache();
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    await fs.writeFile(path.join(cacheDir, `${SHA}.lock`), `${dead}\n${os.hostname()}\n`);
    const result = await fetchImage({ url: `${base}/img.qcow2`, sha256: SHA }, { cacheDir, signal: AbortSignal.timeout(10_000) });
    assert.equal(result.fromCache, false);
    assert.ok(!(await exists(path.join(cacheDir, `${SHA}.lock`))));
  });

  test('rejects a malformed sha256 and unsupported schemes', async () => {
    await assert.rejects(fetchImage({ url: `${base}/img.qcow2`, sha256: 'abc' }, { cacheDir: await freshCache() }), (e: unknown) => e instanceof ImageSourceError && /64 hex digits/.test(e.message));
    await assert.rejects(fetchImage({ url: 'ftp://example.com/a.qcow2', sha256: SHA }), (e: unknown) => e instanceof ImageSourceError && /scheme "ftp:"/.test(e.message));
  });
});

describe('fetchImage on local files', () => {
  let file: string;
  before(async () => {
    file = path.join(tmp, 'local image.qcow2');
    await fs.writeFile(file, DATA);
  });

  test('an absolute path is hashed and used in place', async () => {
    const cacheDir = path.join(tmp, 'never-created');
    const progress: Progress[] = [];
    const result = await fetchImage({ url: file, sha256: `sha256:${SHA}` }, { cacheDir, onProgress: (p) => progress.push(p) });
    assert.deepEqual(result, { path: file, size: SIZE, sha256: SHA, fromCache: false });
    assert.ok(!(await exists(cacheDir)));
    assert.equal(progress.at(-1)!.bytes, SIZE);
  });

  test('a file:// URL is hashed and used in place', async () => {
    const result = await fetchImage({ url: pathToFileURL(file).href, sha256: SHA }, { cacheDir: path.join(tmp, 'never-created') });
    assert.equal(result.path, file);
  });

  test('a mismatch throws and leaves the file alone; a missing file says so', async () => {
    await assert.rejects(fetchImage({ url: file, sha256: randomSha() }), ChecksumMismatchError);
    assert.ok(await exists(file));
    await assert.rejects(fetchImage({ url: path.join(tmp, 'missing.qcow2'), sha256: SHA }), (e: unknown) => e instanceof ImageSourceError && /does not exist/.test(e.message));
  });
});

describe('cache location and formatting', () => {
  test('defaultCacheDir follows STORM_CACHE_DIR, then XDG_CACHE_HOME, then ~/.cache', () => {
    assert.equal(defaultCacheDir({ STORM_CACHE_DIR: '/srv/storm', XDG_CACHE_HOME: '/x' }), '/srv/storm/images');
    assert.equal(defaultCacheDir({ XDG_CACHE_HOME: '/x' }), '/x/storm/images');
    assert.equal(defaultCacheDir({ XDG_CACHE_HOME: 'relative' }), path.join(os.homedir(), '.cache/storm/images'));
    assert.equal(defaultCacheDir({}), path.join(os.homedir(), '.cache/storm/images'));
  });

  test('formatProgressLine', () => {
    const p: Progress = { bytes: 312.4 * MiB, total: 1024 * MiB, bytesPerSecond: 48.2 * MiB, resumedFrom: 0 };
    assert.equal(formatProgressLine(p, 'base-debian-12'), 'base-debian-12  312.4 MiB / 1.0 GiB  30%  48.2 MiB/s  eta 15s');
    assert.equal(formatProgressLine({ bytes: 5 * MiB, total: null, bytesPerSecond: MiB, resumedFrom: 0 }, 'x'), 'x  5.0 MiB  1.0 MiB/s');
    assert.equal(formatProgressLine({ bytes: 0, total: 2 * 1024 * MiB, bytesPerSecond: 0, resumedFrom: 0 }, 'x'), 'x  0 B / 2.0 GiB  0%');
    assert.equal(formatProgressLine({ bytes: 100, total: 100, bytesPerSecond: 10, resumedFrom: 50 }, 'x'), 'x  100 B / 100 B  100%  10 B/s');
  });

  test('formatBytes and formatDuration', () => {
    assert.equal(formatBytes(1023), '1023 B');
    assert.equal(formatBytes(1024), '1.0 KiB');
    assert.equal(formatBytes(1024 * 1024 - 1), '1.0 MiB');
    assert.equal(formatBytes(1.5 * 1024 ** 4), '1.5 TiB');
    assert.equal(formatDuration(14.2), '15s');
    assert.equal(formatDuration(125), '2m05s');
    assert.equal(formatDuration(7260), '2h01m');
  });

  test('renderBar fits the terminal width', () => {
    const p: Progress = { bytes: 300 * MiB, total: 1024 * MiB, bytesPerSecond: 40 * MiB, resumedFrom: 0 };
    for (const columns of [20, 40, 60, 80, 120, 300]) {
      const line = renderBar(p, 'base-debian-12.qcow2', columns);
      assert.ok(line.length <= Math.max(20, columns) - 1, `${columns}: ${JSON.stringify(line)}`);
      assert.match(line, /29%/);
    }
    assert.match(renderBar(p, 'base-debian-12.qcow2', 120), /^base-debian-12\.qcow2  \[=+> +\]  300\.0 MiB/);
  });
});

describe('storm fetch', () => {
  const capture = (isTTY: boolean) => {
    const out: string[] = [];
    const err: string[] = [];
    return {
      out,
      err,
      io: { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s), isTTY, columns: 100 }, signal: new AbortController().signal },
    };
  };

  test('on a terminal: a redrawn bar on stderr, the path on stdout', async () => {
    const cacheDir = await freshCache();
    const { out, err, io } = capture(true);
    const code = await fetchCommand([`${base}/slow.qcow2`, '--sha256', SHA, '--cache-dir', cacheDir], io);
    assert.equal(code, 0, err.join(''));
    assert.equal(out.join(''), `${path.join(cacheDir, SHA)}\n`);
    const stderr = err.join('');
    assert.match(stderr, /^\rslow\.qcow2  \[/);
    assert.match(stderr, /8\.0 MiB \/ 8\.0 MiB  100%/);
    assert.ok(stderr.endsWith('\n'));
    for (const line of stderr.split('\r')) assert.ok(line.replace('\x1b[K', '').trimEnd().length <= 99);
  });

  test('not on a terminal: plain lines, and a cache hit says so', async () => {
    const cacheDir = await freshCache();
    const first = capture(false);
    assert.equal(await fetchCommand([`${base}/img.qcow2`, `--sha256=${SHA}`, `--cache-dir=${cacheDir}`], first.io), 0);
    assert.ok(!first.err.join('').includes('\r'));
    assert.match(first.err.join(''), /^img\.qcow2  0 B \/ 8\.0 MiB  0%\n/);
    const second = capture(false);
    assert.equal(await fetchCommand([`${base}/img.qcow2`, '--sha256', SHA, '--cache-dir', cacheDir], second.io), 0);
    assert.match(second.err.join(''), /already in the cache/);
    assert.equal(second.out.join(''), first.out.join(''));
  });

  test('mismatch and HTTP errors exit 1 with the reason; usage errors exit 2', async () => {
    const cacheDir = await freshCache();
    const bad = capture(false);
    assert.equal(await fetchCommand([`${base}/img.qcow2`, '--sha256', randomSha(), '--cache-dir', cacheDir], bad.io), 1);
    assert.match(bad.err.join(''), /storm fetch: sha256 mismatch for .*img\.qcow2: expected [0-9a-f]{64}, got [0-9a-f]{64}/);
    assert.equal(bad.out.join(''), '');
    const missing = capture(false);
    assert.equal(await fetchCommand([`${base}/nope.qcow2`, '--sha256', SHA, '--cache-dir', cacheDir], missing.io), 1);
    assert.match(missing.err.join(''), /HTTP 404/);
    const usage = capture(false);
    assert.equal(await fetchCommand([`${base}/img.qcow2`], usage.io), 2);
    assert.match(usage.err.join(''), /--sha256 is required/);
    const help = capture(false);
    assert.equal(await fetchCommand(['--help'], help.io), 0);
    assert.match(help.out.join(''), /^Usage: storm fetch <url\|path> --sha256 <hex>/);
  });

  test('as a child process it prints the cached path', async () => {
    const cacheDir = await freshCache();
    const module = pathToFileURL(path.join(REPO, 'provider/src/cli/fetch.ts')).href;
    const script = `const { fetchCommand } = await import(${JSON.stringify(module)}); process.exitCode = await fetchCommand(process.argv.slice(1));`;
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', script, `${base}/img.qcow2`, '--sha256', SHA, '--cache-dir', cacheDir],
        { cwd: REPO, timeout: 30_000 },
        (_error, stdout, stderr) => resolve({ code: child.exitCode, stdout, stderr }),
      );
    });
    assert.equal(code, 0, stderr);
    assert.equal(stdout, `${path.join(cacheDir, SHA)}\n`);
    assert.match(stderr, /img\.qcow2  8\.0 MiB \/ 8\.0 MiB  100%/);
  });
});
