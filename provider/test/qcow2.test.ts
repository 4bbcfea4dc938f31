import assert from 'node:assert/strict';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import {
  EXT_BACKING_FORMAT,
  EXT_BITMAPS,
  EXT_FEATURE_TABLE,
  Qcow2Error,
  isQcow2,
  readBackingChainName,
  readQcow2Header,
  readQcow2HeaderFromFile,
  rewriteBackingFile,
  streamWithBackingFile,
} from '../src/drivers/qcow2.ts';
import type { Qcow2Header } from '../src/drivers/qcow2.ts';

// Real qemu-img throughout: the point is that QEMU accepts what we write.

let dir = '';
let src = '';
let pool = '';

async function run(cmd: string, args: string[], cwd = src): Promise<string> {
  const r = await execa(cmd, args, { cwd, reject: false, env: { LC_ALL: 'C' } });
  assert.equal(r.exitCode, 0, `${cmd} ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}
const qemuImg = (...args: string[]): Promise<string> => run('qemu-img', args);
const qemuIo = (...args: string[]): Promise<string> => run('qemu-io', args);

interface Info {
  filename: string;
  format: string;
  'virtual-size': number;
  'cluster-size'?: number;
  'backing-filename'?: string;
  'full-backing-filename'?: string;
  'backing-filename-format'?: string;
  'format-specific'?: { data: { compat?: string; bitmaps?: { name: string }[] } };
}
const info = async (path: string): Promise<Info> => JSON.parse(await qemuImg('info', '--output=json', path)) as Info;
const chain = async (path: string): Promise<Info[]> => JSON.parse(await qemuImg('info', '--output=json', '--backing-chain', path)) as Info[];
const head = async (path: string, n = 65536): Promise<Uint8Array> => (await readFile(path)).subarray(0, n);

/** qemu-io prints "Pattern verification failed" but still exits 0, so look at the output. */
async function expectPattern(path: string, pattern: number, offset: string, length: string): Promise<void> {
  const out = await qemuIo('-r', '-f', 'qcow2', '-c', `read -P 0x${pattern.toString(16)} ${offset} ${length}`, path);
  assert.doesNotMatch(out, /fail|error/i, `${path} at ${offset}: ${out}`);
  assert.match(out, /read \d+\/\d+ bytes/);
}

async function rewriteFile(from: string, to: string, backingFile: string | null, backingFormat: 'qcow2' | 'raw' | null, highWaterMark?: number): Promise<void> {
  const input = createReadStream(from, highWaterMark ? { highWaterMark } : {});
  await pipeline(Readable.from(streamWithBackingFile(input, backingFile, backingFormat)), createWriteStream(to));
}

/** The rewrite must change the header cluster only and keep the length. */
async function assertOnlyFirstClusterChanged(from: string, to: string, clusterSize: number): Promise<void> {
  const [a, b] = await Promise.all([readFile(from), readFile(to)]);
  assert.equal(b.length, a.length);
  assert.ok(a.subarray(clusterSize).equals(b.subarray(clusterSize)), 'bytes after the first cluster changed');
}

async function assertChecks(path: string): Promise<void> {
  const out = await qemuImg('check', path);
  assert.match(out, /No errors were found on the image/);
}

const poolBase = (): string => join(pool, 'base-debian-12-ab12cd34');
const poolRawBase = (): string => join(pool, 'base-raw-ab12cd34');

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'storm-qcow2-'));
  src = join(dir, 'src');
  pool = join(dir, 'pool');
  await mkdir(src);
  await mkdir(pool);

  await qemuImg('create', '-q', '-f', 'qcow2', 'base.qcow2', '4M');
  await qemuIo('-f', 'qcow2', '-c', 'write -P 0x5a 0 64k', 'base.qcow2');
  await qemuImg('create', '-q', '-f', 'raw', 'base.raw', '4M');
  await qemuIo('-f', 'raw', '-c', 'write -P 0x5a 0 64k', 'base.raw');

  await qemuImg('create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', 'over-v3.qcow2');
  await qemuImg('create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', '-b', 'base.qcow2', '-F', 'qcow2', 'over-v2.qcow2');
  await qemuImg('create', '-q', '-f', 'qcow2', '-b', 'base.raw', '-F', 'raw', 'over-raw.qcow2');
  await qemuImg('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=2M', '-b', 'base.qcow2', '-F', 'qcow2', 'over-2m.qcow2');
  await qemuImg('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=512', '-b', 'base.qcow2', '-F', 'qcow2', 'over-512.qcow2');
  for (const overlay of ['over-v3.qcow2', 'over-v2.qcow2', 'over-raw.qcow2', 'over-2m.qcow2', 'over-512.qcow2']) {
    await qemuIo('-f', 'qcow2', '-c', 'write -P 0x33 1M 64k', overlay);
  }
  // A publisher's usual way to cut a layer: convert the modified disk against its base.
  await qemuImg('create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', 'work.qcow2');
  await qemuIo('-f', 'qcow2', '-c', 'write -P 0x33 1M 64k', 'work.qcow2');
  await qemuImg('convert', '-O', 'qcow2', '-B', 'base.qcow2', '-F', 'qcow2', 'work.qcow2', 'over-convert.qcow2');

  await copyFile(join(src, 'base.qcow2'), poolBase());
  await copyFile(join(src, 'base.raw'), poolRawBase());
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('readQcow2Header agrees with qemu-img info', () => {
  const cases: [string, 2 | 3][] = [
    ['base.qcow2', 3],
    ['over-v3.qcow2', 3],
    ['over-v2.qcow2', 2],
    ['over-raw.qcow2', 3],
    ['over-convert.qcow2', 3],
    ['over-2m.qcow2', 3],
    ['over-512.qcow2', 3],
  ];
  for (const [name, version] of cases) {
    test(name, async () => {
      const path = join(src, name);
      const bytes = await head(path);
      assert.ok(isQcow2(bytes));
      const h = readQcow2Header(bytes);
      const i = await info(path);
      assert.equal(h.version, version);
      assert.equal(i['format-specific']?.data.compat, version === 2 ? '0.10' : '1.1');
      assert.equal(h.virtualSize, i['virtual-size']);
      assert.equal(h.clusterSize, i['cluster-size']);
      assert.equal(h.backingFile, i['backing-filename'] ?? null);
      assert.equal(h.backingFormat, i['backing-filename-format'] ?? null);
      assert.equal(h.headerLength, version === 2 ? 72 : 112);
      assert.equal(h.dirty, false);
      assert.ok(h.l1TableOffset >= h.clusterSize && h.refcountTableOffset >= h.clusterSize);
      if (h.backingFile !== null) {
        assert.equal(h.backingFileSize, Buffer.byteLength(h.backingFile));
        assert.ok(h.backingFileOffset >= h.extensionsEnd);
        assert.equal(h.headerAreaEnd, h.backingFileOffset + h.backingFileSize);
      }
      assert.deepEqual(await readQcow2HeaderFromFile(path), h);
    });
  }

  test('extensions: format first, feature table on v3 only, names decoded', async () => {
    const v3 = readQcow2Header(await head(join(src, 'over-v3.qcow2')));
    assert.deepEqual(v3.extensions.map((e) => e.type), [EXT_BACKING_FORMAT, EXT_FEATURE_TABLE]);
    assert.ok(v3.featureNames.some((f) => f.kind === 'incompatible' && f.bit === 2 && f.name === 'external data file'));
    const v2 = readQcow2Header(await head(join(src, 'over-v2.qcow2')));
    assert.deepEqual(v2.extensions.map((e) => e.type), [EXT_BACKING_FORMAT]);
    assert.equal(v2.incompatibleFeatures, 0n);
  });

  test('readBackingChainName: publisher names for overlays, null for bases (qcow2 or raw)', async () => {
    assert.equal(await readBackingChainName(join(src, 'over-v3.qcow2')), 'base.qcow2');
    assert.equal(await readBackingChainName(join(src, 'over-raw.qcow2')), 'base.raw');
    assert.equal(await readBackingChainName(join(src, 'base.qcow2')), null);
    assert.equal(await readBackingChainName(join(src, 'base.raw')), null);
  });

  test('too few bytes: says how many are needed', async () => {
    const bytes = await head(join(src, 'over-v3.qcow2'));
    assert.throws(() => readQcow2Header(bytes.subarray(0, 100)), (e: unknown) => e instanceof Qcow2Error && e.code === 'truncated' && e.needed === 104);
    const full = readQcow2Header(bytes);
    assert.throws(
      () => readQcow2Header(bytes.subarray(0, full.headerAreaEnd - 1)),
      (e: unknown) => e instanceof Qcow2Error && e.code === 'truncated' && e.needed === full.headerAreaEnd,
    );
    assert.equal(readQcow2Header(bytes.subarray(0, full.headerAreaEnd)).backingFile, 'base.qcow2');
  });
});

describe('rewrite to a pool path, streamed to a new file', () => {
  const cases: { name: string; base: () => string; format: 'qcow2' | 'raw'; highWaterMark?: number }[] = [
    { name: 'over-v3.qcow2', base: poolBase, format: 'qcow2', highWaterMark: 4096 },
    { name: 'over-v2.qcow2', base: poolBase, format: 'qcow2', highWaterMark: 1000 },
    { name: 'over-raw.qcow2', base: poolRawBase, format: 'raw' },
    { name: 'over-convert.qcow2', base: poolBase, format: 'qcow2' },
    { name: 'over-2m.qcow2', base: poolBase, format: 'qcow2', highWaterMark: 65536 },
    { name: 'over-512.qcow2', base: poolBase, format: 'qcow2', highWaterMark: 100 },
  ];
  for (const { name, base, format, highWaterMark } of cases) {
    test(`${name} -> ${format} base in the pool`, async () => {
      const from = join(src, name);
      const to = join(pool, `rewritten-${name}`);
      await rewriteFile(from, to, base(), format, highWaterMark);
      const before = readQcow2Header(await head(from));
      const afterHeader = readQcow2Header(await head(to));
      await assertOnlyFirstClusterChanged(from, to, before.clusterSize);
      assert.equal(afterHeader.version, before.version);
      assert.equal(afterHeader.backingFile, base());
      assert.equal(afterHeader.backingFormat, format);
      // Everything except the backing format keeps its bytes.
      const others = (h: Qcow2Header): [number, string][] =>
        h.extensions.filter((e) => e.type !== EXT_BACKING_FORMAT).map((e) => [e.type, Buffer.from(e.data).toString('hex')]);
      assert.deepEqual(others(afterHeader), others(before));

      const [top, lower] = await chain(to);
      assert.equal(top?.['backing-filename'], base());
      assert.equal(top?.['full-backing-filename'], base());
      assert.equal(top?.['backing-filename-format'], format);
      assert.equal(lower?.filename, base());
      assert.equal(lower?.format, format);
      await assertChecks(to);
      await expectPattern(to, 0x5a, '0', '64k');
      await expectPattern(to, 0x33, '1M', '64k');
      await qemuImg('compare', '-f', 'qcow2', '-F', 'qcow2', from, to);
    });
  }

  test('a name of 1000 bytes (long nested pool path) fits and resolves', async () => {
    let deep = pool;
    // Path components are limited to 255 bytes, so nest directories up to ~750 bytes.
    while (deep.length < 750) deep = join(deep, 'd'.repeat(Math.min(200, 750 - deep.length + 1)));
    await mkdir(deep, { recursive: true });
    const leaf = 'b'.repeat(1000 - deep.length - 1);
    const longBase = join(deep, leaf);
    assert.equal(Buffer.byteLength(longBase), 1000);
    await copyFile(join(src, 'base.qcow2'), longBase);
    const to = join(pool, 'long.qcow2');
    await rewriteFile(join(src, 'over-v3.qcow2'), to, longBase, 'qcow2', 3000);
    const [top, lower] = await chain(to);
    assert.equal(top?.['backing-filename'], longBase);
    assert.equal(lower?.filename, longBase);
    await assertChecks(to);
    await expectPattern(to, 0x5a, '0', '64k');
    await expectPattern(to, 0x33, '1M', '64k');
  });

  test('removing the backing file: base data gone, own data and feature table kept', async () => {
    const from = join(src, 'over-v3.qcow2');
    const to = join(pool, 'standalone.qcow2');
    await rewriteFile(from, to, null, null);
    const i = await info(to);
    assert.equal(i['backing-filename'], undefined);
    assert.equal(i['backing-filename-format'], undefined);
    const h = readQcow2Header(await head(to));
    assert.equal(h.backingFile, null);
    assert.equal(h.backingFileOffset, 0);
    assert.deepEqual(h.extensions.map((e) => e.type), [EXT_FEATURE_TABLE]);
    await assertOnlyFirstClusterChanged(from, to, h.clusterSize);
    await assertChecks(to);
    await expectPattern(to, 0x00, '0', '64k');
    await expectPattern(to, 0x33, '1M', '64k');
  });

  test('adding a backing file (and format extension) to an image that had none', async () => {
    await qemuImg('create', '-q', '-f', 'qcow2', 'lone.qcow2', '4M');
    await qemuIo('-f', 'qcow2', '-c', 'write -P 0x33 1M 64k', 'lone.qcow2');
    const to = join(pool, 'adopted.qcow2');
    await rewriteFile(join(src, 'lone.qcow2'), to, poolBase(), 'qcow2');
    const h = readQcow2Header(await head(to));
    assert.deepEqual(h.extensions.map((e) => e.type), [EXT_BACKING_FORMAT, EXT_FEATURE_TABLE]);
    assert.equal((await chain(to))[1]?.filename, poolBase());
    await assertChecks(to);
    await expectPattern(to, 0x5a, '0', '64k');
    await expectPattern(to, 0x33, '1M', '64k');
  });

  test('backing format null drops the extension; QEMU then probes the base', async () => {
    const to = join(pool, 'probed.qcow2');
    await rewriteFile(join(src, 'over-v2.qcow2'), to, poolBase(), null);
    const h = readQcow2Header(await head(to));
    assert.equal(h.backingFormat, null);
    assert.deepEqual(h.extensions, []);
    assert.equal((await info(to))['backing-filename'], poolBase());
    await expectPattern(to, 0x5a, '0', '64k');
  });

  test('persistent bitmaps (bitmaps extension + autoclear bit) survive the rewrite', async () => {
    const from = join(src, 'over-bitmap.qcow2');
    await copyFile(join(src, 'over-v3.qcow2'), from);
    await qemuImg('bitmap', '--add', from, 'b0');
    const before = readQcow2Header(await head(from));
    assert.equal(before.bitmaps?.count, 1);
    assert.ok(before.extensions.some((e) => e.type === EXT_BITMAPS));
    const to = join(pool, 'bitmap.qcow2');
    await rewriteFile(from, to, poolBase(), 'qcow2');
    const afterHeader = readQcow2Header(await head(to));
    assert.deepEqual(afterHeader.bitmaps, before.bitmaps);
    assert.equal(afterHeader.autoclearFeatures, 1n);
    assert.deepEqual((await info(to))['format-specific']?.data.bitmaps?.map((b) => b.name), ['b0']);
    await assertChecks(to);
    await expectPattern(to, 0x5a, '0', '64k');
  });

  test('an unknown header extension is carried over byte for byte', async () => {
    // Hand-build a header with an extension QEMU does not know (it must ignore it).
    const from = join(src, 'over-unknown-ext.qcow2');
    const file = await readFile(join(src, 'over-v3.qcow2'));
    const h = readQcow2Header(file);
    const unknown = { type: 0x5354524d, data: new Uint8Array(Buffer.from('storm test data')) };
    const exts = [...h.extensions, unknown];
    const area = Buffer.alloc(h.clusterSize - h.headerLength);
    let at = 0;
    for (const e of exts) {
      area.writeUInt32BE(e.type, at);
      area.writeUInt32BE(e.data.length, at + 4);
      area.set(e.data, at + 8);
      at += 8 + ((e.data.length + 7) & ~7);
    }
    at += 8;
    const name = Buffer.from('base.qcow2');
    area.set(name, at);
    file.set(area, h.headerLength);
    file.writeBigUInt64BE(BigInt(h.headerLength + at), 8);
    await writeFile(from, file);
    assert.equal((await info(from))['backing-filename'], 'base.qcow2');
    assert.ok(readQcow2Header(await head(from)).extensions.some((e) => e.type === unknown.type));

    const to = join(pool, 'unknown-ext.qcow2');
    await rewriteFile(from, to, poolBase(), 'qcow2');
    const kept = readQcow2Header(await head(to)).extensions.find((e) => e.type === unknown.type);
    assert.deepEqual(kept && Buffer.from(kept.data).toString(), 'storm test data');
    await assertChecks(to);
    await expectPattern(to, 0x5a, '0', '64k');
  });

  test('odd chunk sizes (1 byte, across the cluster boundary) give the same bytes as rewriting in memory', async () => {
    const file = await readFile(join(src, 'over-v3.qcow2'));
    const sizes = [1, 3, 17, 4093, 65536 - 4114, 7, 100_000];
    async function* chunks(): AsyncGenerator<Uint8Array> {
      let at = 0;
      for (let i = 0; at < file.length; i++) {
        const n = sizes[i % sizes.length]!;
        yield file.subarray(at, at + n);
        at += n;
      }
    }
    const out: Uint8Array[] = [];
    for await (const piece of streamWithBackingFile(chunks(), poolBase(), 'qcow2')) out.push(piece);
    const streamed = Buffer.concat(out);
    const expected = Buffer.concat([rewriteBackingFile(file.subarray(0, 65536), poolBase(), 'qcow2'), file.subarray(65536)]);
    assert.ok(streamed.equals(expected));
    // The whole-file form keeps its length too.
    assert.equal(rewriteBackingFile(file, poolBase(), 'qcow2').length, file.length);
  });
});

describe('refusals', () => {
  const refuses = (code: Qcow2Error['code'], message: RegExp) => (e: unknown): boolean =>
    e instanceof Qcow2Error && e.code === code && message.test(e.message);

  test('not qcow2: raw base, empty input, text', async () => {
    const raw = await head(join(src, 'base.raw'));
    assert.equal(isQcow2(raw), false);
    assert.throws(() => readQcow2Header(raw), refuses('not-qcow2', /not a qcow2 image/));
    assert.throws(() => rewriteBackingFile(raw, poolBase(), 'qcow2'), refuses('not-qcow2', /not a qcow2 image/));
    assert.throws(() => readQcow2Header(new Uint8Array(0)), refuses('not-qcow2', /not a qcow2 image/));
    await assert.rejects(rewriteFile(join(src, 'base.raw'), join(pool, 'x'), poolBase(), 'qcow2'), refuses('not-qcow2', /not a qcow2 image/));
    async function* tiny(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array([0x51, 0x46]);
    }
    await assert.rejects(Readable.from(streamWithBackingFile(tiny(), null, null)).toArray(), refuses('not-qcow2', /ended after 2 bytes/));
  });

  test('external data file', async () => {
    await qemuImg('create', '-q', '-f', 'qcow2', '-o', 'data_file=ext-data.raw', 'ext.qcow2', '1M');
    const bytes = await head(join(src, 'ext.qcow2'));
    assert.ok(isQcow2(bytes));
    assert.throws(() => readQcow2Header(bytes), refuses('unsupported', /external data file \(data_file=ext-data\.raw\).*qemu-img convert/));
    assert.throws(() => rewriteBackingFile(bytes, poolBase(), 'qcow2'), refuses('unsupported', /external data file/));
    await assert.rejects(readQcow2HeaderFromFile(join(src, 'ext.qcow2')), refuses('unsupported', /ext\.qcow2: qcow2 image uses an external data file/));
    await assert.rejects(rewriteFile(join(src, 'ext.qcow2'), join(pool, 'x'), poolBase(), 'qcow2'), refuses('unsupported', /external data file/));
  });

  test('unknown incompatible feature and corrupt bit', async () => {
    const bytes = Buffer.from(await head(join(src, 'over-v3.qcow2')));
    const unknown = Buffer.from(bytes);
    unknown.writeBigUInt64BE(1n << 40n, 72);
    assert.throws(() => readQcow2Header(unknown), refuses('unsupported', /incompatible features .*bit 40/));
    const corrupt = Buffer.from(bytes);
    corrupt.writeBigUInt64BE(2n, 72);
    assert.throws(() => readQcow2Header(corrupt), refuses('corrupt', /marked corrupt.*qemu-img check -r all/));
    const v1 = Buffer.from(bytes);
    v1.writeUInt32BE(1, 4);
    assert.throws(() => readQcow2Header(v1), refuses('unsupported', /version 1 is not supported/));
  });

  test('name too long for the first cluster (512-byte clusters)', async () => {
    const bytes = await head(join(src, 'over-512.qcow2'), 512);
    const name = `/var/lib/libvirt/storm/${'x'.repeat(400)}`;
    assert.throws(() => rewriteBackingFile(bytes, name, 'qcow2'), refuses('no-room', /does not fit in the image's first cluster: with 512-byte clusters only \d+ bytes remain/));
    await assert.rejects(rewriteFile(join(src, 'over-512.qcow2'), join(pool, 'x'), name, 'qcow2'), refuses('no-room', /does not fit/));
  });

  test('name over the 1023 bytes QEMU allows', async () => {
    const bytes = await head(join(src, 'over-v3.qcow2'));
    assert.throws(() => rewriteBackingFile(bytes, `/${'p'.repeat(1023)}`, 'qcow2'), refuses('no-room', /1024 bytes.*at most 1023/));
    // Checked before any byte is read, so a stream fails fast.
    assert.throws(() => streamWithBackingFile(Readable.from([]), `/${'p'.repeat(1023)}`, 'qcow2'), refuses('no-room', /at most 1023/));
  });

  test('bad arguments', async () => {
    const bytes = await head(join(src, 'over-v3.qcow2'));
    assert.throws(() => rewriteBackingFile(bytes, null, 'qcow2'), refuses('invalid-argument', /without a backing file/));
    assert.throws(() => rewriteBackingFile(bytes, '', 'qcow2'), refuses('invalid-argument', /empty/));
    assert.throws(() => rewriteBackingFile(bytes, 'a\0b', 'qcow2'), refuses('invalid-argument', /NUL/));
  });

  test('a data structure inside the header area is never overwritten', async () => {
    const bytes = Buffer.from(await head(join(src, 'over-v3.qcow2')));
    bytes.writeBigUInt64BE(0x200n, 40); // l1_table_offset
    assert.throws(() => rewriteBackingFile(bytes, poolBase(), 'qcow2'), refuses('no-room', /L1 table starts at byte 512, inside the header area/));
    const snap = Buffer.from(await head(join(src, 'over-v3.qcow2')));
    snap.writeUInt32BE(1, 60); // nb_snapshots
    snap.writeBigUInt64BE(0x208n, 64);
    assert.throws(() => rewriteBackingFile(snap, poolBase(), 'qcow2'), refuses('no-room', /snapshot table starts at byte 520/));
  });

  test('fewer bytes than the rewrite touches', async () => {
    const bytes = await head(join(src, 'over-v3.qcow2'));
    const end = readQcow2Header(bytes).headerAreaEnd;
    assert.throws(() => rewriteBackingFile(bytes.subarray(0, end), poolBase(), 'qcow2'), (e: unknown) => e instanceof Qcow2Error && e.code === 'truncated' && e.needed !== undefined && e.needed > end);
  });

  test('inputs are not modified', async () => {
    const bytes = await head(join(src, 'over-v3.qcow2'));
    const copy = Buffer.from(bytes);
    rewriteBackingFile(bytes, poolBase(), 'qcow2');
    assert.ok(copy.equals(bytes));
  });
});
