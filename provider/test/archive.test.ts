// The system disk out of an appliance archive (the paper's webserv.tgz holding sys.img), read
// from archives Debian's own tar writes, in each of its formats: only the named plain file is
// written, bounded in size, and a missing one is said with what the archive holds.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import { ArchiveError, archiveKind, extractFile, type ArchiveKind } from '../src/drivers/images/archive.ts';
import { layerFile } from '../src/drivers/layers.ts';
import type { Logger } from '../src/contract.ts';

let dir = '';
let src = '';
const disk = randomBytes(3 * 1024 * 1024 + 123);

async function tar(archive: string, args: string[], cwd = src): Promise<string> {
  const path = join(dir, archive);
  const r = await execa('tar', [...args, '-f', path], { cwd, reject: false, env: { LC_ALL: 'C' } });
  assert.equal(r.exitCode, 0, r.stderr);
  return path;
}

async function kindOf(path: string): Promise<ArchiveKind> {
  const kind = archiveKind(new Uint8Array(await readFile(path)).subarray(0, 512));
  assert.ok(kind, `${path} is an archive`);
  return kind;
}

const MIB = 1024 * 1024;
const opts = { label: 'webserv.tgz', maxBytes: 64 * MIB, maxBytesWhy: 'the room in the test' };

async function extract(archive: string, file = 'sys.img', o: Partial<typeof opts> = {}): Promise<{ out: string; size: number }> {
  const out = join(dir, `out-${randomBytes(3).toString('hex')}`);
  const size = await extractFile(archive, await kindOf(archive), file, out, { ...opts, ...o });
  return { out, size };
}

async function refusal(archive: string, file = 'sys.img', o: Partial<typeof opts> = {}): Promise<ArchiveError> {
  const err = await extract(archive, file, o).then(
    () => assert.fail('extracted'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ArchiveError, String(err));
  return err;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'storm-archive-'));
  src = join(dir, 'src');
  await mkdir(join(src, 'docs'), { recursive: true });
  await writeFile(join(src, 'sys.img'), disk);
  await writeFile(join(src, 'README'), 'the web server appliance\n');
  await writeFile(join(src, 'docs', 'upload.txt'), 'use /upload.php\n');
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('an appliance archive', () => {
  test('the named file comes out byte for byte from a gzip\'d tar; nothing else is written', async () => {
    const archive = await tar('webserv.tgz', ['-cz', 'README', 'docs', 'sys.img']);
    assert.equal(await kindOf(archive), 'tar.gz');
    const { out, size } = await extract(archive);
    assert.equal(size, disk.length);
    assert.ok((await readFile(out)).equals(disk));
    assert.deepEqual((await readdir(dir)).filter((f) => f.endsWith('.part')), [], 'no temporary file left');
  });

  test('"./sys.img" (tar -C dir .) is the same entry', async () => {
    const archive = await tar('dot.tgz', ['-cz', '.']);
    assert.ok((await readFile((await extract(archive)).out)).equals(disk));
  });

  test('an uncompressed tar is known by its ustar header', async () => {
    const archive = await tar('plain.tar', ['-c', 'sys.img']);
    assert.equal(await kindOf(archive), 'tar');
    assert.ok((await readFile((await extract(archive)).out)).equals(disk));
  });

  test('long names before it, in GNU and in pax format, are read and skipped', async () => {
    const long = `${'x'.repeat(150)}.txt`;
    await writeFile(join(src, long), 'padding\n');
    try {
      for (const format of ['gnu', 'pax'] as const) {
        const archive = await tar(`long-${format}.tgz`, [`--format=${format}`, '-cz', long, 'sys.img']);
        assert.ok((await readFile((await extract(archive)).out)).equals(disk), format);
        const missing = await refusal(archive, 'other.img');
        assert.ok(missing.holds.includes(long), `${format}: ${missing.message}`);
      }
    } finally {
      await rm(join(src, long));
    }
  });

  test('a missing file is said with what the archive holds', async () => {
    const archive = await tar('nosys.tgz', ['-cz', 'README', 'docs']);
    const err = await refusal(archive);
    assert.equal(err.code, 'missing');
    assert.equal(err.message, 'webserv.tgz holds no sys.img; it holds: README, docs/, docs/upload.txt');
  });

  test('a file in a folder of the archive is not the top-level file named', async () => {
    const archive = await tar('nested.tgz', ['-cz', '--transform=s,^,webserv/,', 'sys.img']);
    const err = await refusal(archive);
    assert.match(err.message, /holds no sys\.img; it holds: webserv\/sys\.img/);
  });

  test('an entry named "../sys.img" is never the file, and nothing is written outside', async () => {
    const archive = await tar('escape.tgz', ['-cz', '--transform=s,^,../,', 'sys.img']);
    const err = await refusal(archive);
    assert.match(err.message, /holds no sys\.img; it holds: \.\.\/sys\.img/);
  });

  test('a symbolic link named sys.img is refused, not followed', async () => {
    const links = join(dir, 'links');
    await mkdir(links);
    await symlink('/etc/passwd', join(links, 'sys.img'));
    const archive = await tar('link.tgz', ['-cz', 'sys.img'], links);
    const err = await refusal(archive);
    assert.equal(err.code, 'not-a-file');
    assert.match(err.message, /webserv\.tgz's sys\.img is a symbolic link, not a file/);
  });

  test('a file larger than the room is refused before any of it is written', async () => {
    const archive = await tar('big.tgz', ['-cz', 'sys.img']);
    const before = await readdir(dir);
    const err = await refusal(archive, 'sys.img', { maxBytes: MIB, maxBytesWhy: 'the free space in server "blade1"\'s storm pool' });
    assert.equal(err.code, 'too-big');
    assert.equal(err.message, 'webserv.tgz\'s sys.img is 3.0 MiB, more than the free space in server "blade1"\'s storm pool (1.0 MiB)');
    assert.deepEqual(await readdir(dir), before, 'nothing written');
  });

  test('a sparse entry (tar --sparse) is refused rather than read wrongly', async () => {
    const sparse = join(dir, 'sparse');
    await mkdir(sparse);
    await writeFile(join(sparse, 'sys.img'), 'start');
    await truncate(join(sparse, 'sys.img'), 8 * MIB);
    for (const format of ['gnu', 'pax']) {
      const archive = await tar(`sparse-${format}.tgz`, [`--format=${format}`, '--sparse', '-cz', 'sys.img'], sparse);
      const err = await refusal(archive);
      assert.equal(err.code, 'not-a-file', `${format}: ${err.message}`);
      assert.match(err.message, /stored sparse/);
    }
  });

  test('gzip of something that is not a tar says so', async () => {
    const path = join(dir, 'sys.img.gz');
    await writeFile(path, gzipSync(disk.subarray(0, 4096)));
    const err = await refusal(path);
    assert.equal(err.code, 'not-tar');
    assert.match(err.message, /webserv\.tgz is gzip-compressed, but what it holds is not a tar archive/);
  });

  test('a cut-off archive is damaged, and leaves no partial file', async () => {
    const whole = await readFile(await tar('cut.tgz', ['-cz', 'sys.img']));
    const path = join(dir, 'cut-short.tgz');
    await writeFile(path, whole.subarray(0, Math.floor(whole.length / 2)));
    const err = await refusal(path);
    assert.equal(err.code, 'corrupt', err.message);
    assert.match(err.message, /^webserv\.tgz is (damaged|not a valid gzip file)/);
    assert.deepEqual((await readdir(dir)).filter((f) => f.includes('.part')), []);
  });

  test('a disk image is no archive', async () => {
    const qcow2 = join(dir, 'disk.qcow2');
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', qcow2, '1M']);
    assert.equal(archiveKind(new Uint8Array(await readFile(qcow2)).subarray(0, 512)), null);
    assert.equal(archiveKind(new Uint8Array(disk.subarray(0, 512))), null);
  });
});

describe('the layer file of a fetched image', () => {
  const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };
  const lines: string[] = [];
  const log: Logger = { ...quiet, info: (m) => lines.push(m) };
  const room = async () => ({ bytes: 64 * MIB, where: 'the room in the test' });
  const signal = new AbortController().signal;

  test('is the image itself when it is not an archive', async () => {
    const image = join(dir, 'src', 'sys.img');
    assert.equal(await layerFile({ path: image, sha256: 'a'.repeat(64) }, { url: image, sha256: 'a'.repeat(64) }, { file: 'sys.img', room }, log, signal, join(dir, 'cache')), image);
  });

  test('is unpacked once into the cache, beside the download, then found there', async () => {
    const archive = await tar('cached.tgz', ['-cz', 'sys.img']);
    const sha = 'b'.repeat(64);
    const cache = join(dir, 'cache');
    const first = await layerFile({ path: archive, sha256: sha }, { url: `https://example.org/apps/webserv.tgz`, sha256: sha }, { file: 'sys.img', room }, log, signal, cache);
    assert.equal(first, join(cache, 'images', `${sha}.unpacked`, 'sys.img'));
    assert.ok((await readFile(first)).equals(disk));
    const again = await layerFile({ path: archive, sha256: sha }, { url: archive, sha256: sha }, { file: 'sys.img', room }, log, signal, cache);
    assert.equal(again, first);
    assert.ok(lines.some((l) => /webserv\.tgz: unpacked sys\.img/.test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => /already unpacked/.test(l)), lines.join('\n'));
  });

  test('an archive without image.file says which file to name', async () => {
    const archive = join(dir, 'cached.tgz');
    await assert.rejects(
      layerFile({ path: archive, sha256: 'c'.repeat(64) }, { url: archive, sha256: 'c'.repeat(64) }, { file: null, room }, log, signal, join(dir, 'cache')),
      /cached\.tgz is an archive \(tar\.gz\); say which file in it is the system disk \(image\.file/,
    );
  });
});
