// One file out of an appliance archive: the paper's appliances are published as a gzip'd tar
// (Figure 2's webserv.tgz) holding the system disk's image (`file="sys.img"`). Only that file
// is ever written, and only where the caller says: the names of the other entries are read
// (to say what the archive holds when the file is missing) and their bytes skipped, so no
// entry can land outside the cache, whatever `..`, absolute path or link it names.
//
// Format facts (POSIX ustar, with the GNU and pax extensions tar writes by default):
//   every entry is a 512-byte header then its data, padded to 512; two zero blocks end it.
//   header: name 0..100, size 124..136 (octal text, or base-256 when byte 124 has bit 7),
//   checksum 148..156 (octal sum of the header with this field read as spaces), type 156
//   ('0' or NUL a file, '1' hard link, '2' symlink, '5' directory, 'L' GNU long name of the
//   next entry, 'x' pax attributes of the next entry, 'g' global pax attributes), magic
//   257..263 ("ustar"), prefix 345..500 (ustar: the path's leading part).
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';

export type ArchiveKind = 'tar.gz' | 'tar';

export type ArchiveErrorCode = 'missing' | 'not-a-file' | 'too-big' | 'not-tar' | 'corrupt';

export class ArchiveError extends Error {
  override readonly name = 'ArchiveError';
  constructor(
    message: string,
    readonly code: ArchiveErrorCode,
    /** For 'missing': the entries the archive does hold (the first few). */
    readonly holds: readonly string[] = [],
  ) {
    super(message);
  }
}

const BLOCK = 512;
/** How many of an archive's entries a message names before saying "and N more". */
const LISTED_ENTRIES = 12;
/** A long name or a pax record set is a few hundred bytes; more is not a name. */
const MAX_EXTENSION_BYTES = 1 << 20;

/** An archive by its first bytes, not its name: gzip's magic (1f 8b), or a ustar header. */
export function archiveKind(head: Uint8Array): ArchiveKind | null {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'tar.gz';
  if (head.length >= BLOCK && isUstar(head.subarray(0, BLOCK)) && checksumOk(head.subarray(0, BLOCK))) return 'tar';
  return null;
}

function isUstar(h: Uint8Array): boolean {
  return Buffer.from(h.subarray(257, 262)).toString('latin1') === 'ustar';
}

function checksumOk(h: Uint8Array): boolean {
  const stored = octal(h.subarray(148, 156));
  if (stored === null) return false;
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return sum === stored;
}

function octal(field: Uint8Array): number | null {
  const text = Buffer.from(field).toString('latin1').replace(/[\0 ]+$/, '').replace(/^ +/, '');
  if (!/^[0-7]+$/.test(text)) return text === '' ? 0 : null;
  return parseInt(text, 8);
}

function sizeOf(field: Uint8Array): number | null {
  // GNU tar writes sizes past 8 GiB in base-256: a disk image may well be that big.
  if ((field[0]! & 0x80) === 0) return octal(field);
  let n = field[0]! & 0x7f;
  for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!;
  return Number.isSafeInteger(n) ? n : null;
}

function text(field: Uint8Array): string {
  const end = field.indexOf(0);
  return Buffer.from(end === -1 ? field : field.subarray(0, end)).toString('utf8');
}

/** The path as tar stores it: `./sys.img` and `sys.img` are the same entry. */
function normalized(path: string): string {
  let p = path;
  while (p.startsWith('./')) p = p.slice(2);
  return p;
}

/** A pax record set: `LEN key=value\n`, repeated. */
function paxRecords(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space === -1) break;
    const length = Number(data.subarray(at, space).toString('latin1'));
    if (!Number.isSafeInteger(length) || length <= 0 || at + length > data.length) break;
    const record = data.subarray(space + 1, at + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    at += length;
  }
  return out;
}

/** Exact reads over a stream of chunks, without gathering more than one header at a time. */
class ByteStream {
  private pending: Buffer = Buffer.alloc(0);
  private ended = false;
  constructor(private readonly source: AsyncIterator<Buffer>) {}

  /** Exactly `n` bytes, or null at the end of the stream (fewer than `n` left: truncated). */
  async read(n: number, what: string): Promise<Buffer | null> {
    while (this.pending.length < n && !this.ended) {
      const next = await this.source.next();
      if (next.done) this.ended = true;
      else this.pending = this.pending.length ? Buffer.concat([this.pending, next.value]) : next.value;
    }
    if (this.pending.length === 0 && this.ended) return null;
    if (this.pending.length < n) throw new ArchiveError(`the archive ends in the middle of ${what}`, 'corrupt');
    const out = this.pending.subarray(0, n);
    this.pending = this.pending.subarray(n);
    return out;
  }

  /** The next `n` bytes as they arrive, in pieces. */
  async *pieces(n: number, what: string): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.pending.length === 0) {
        const next = this.ended ? { done: true as const } : await this.source.next();
        if (next.done) {
          this.ended = true;
          throw new ArchiveError(`the archive ends in the middle of ${what}`, 'corrupt');
        }
        this.pending = next.value;
      }
      const piece = this.pending.subarray(0, Math.min(left, this.pending.length));
      this.pending = this.pending.subarray(piece.length);
      left -= piece.length;
      yield piece;
    }
  }

  async skip(n: number, what: string): Promise<void> {
    for await (const piece of this.pieces(n, what)) void piece;
  }
}

const padded = (size: number) => Math.ceil(size / BLOCK) * BLOCK;

const KIND_NAMES: Record<string, string> = { '1': 'a hard link', '2': 'a symbolic link', '3': 'a character device', '4': 'a block device', '5': 'a directory', '6': 'a FIFO' };

export interface ExtractOptions {
  /** The archive as people know it, in messages (e.g. `webserv.tgz`). */
  label: string;
  /** A larger file is refused before any of it is written; `maxBytesWhy` says whose limit it is. */
  maxBytes: number;
  maxBytesWhy: string;
  signal?: AbortSignal;
}

/**
 * Writes `file` (a plain name, at the archive's top level, `./` allowed) from `archive` to
 * `out`. `out` appears only once complete: it is written under a temporary name beside it
 * and renamed, so an interrupted extraction leaves nothing that looks done. Returns its size.
 */
export async function extractFile(archive: string, kind: ArchiveKind, file: string, out: string, o: ExtractOptions): Promise<number> {
  const raw = createReadStream(archive, { highWaterMark: 1 << 20, signal: o.signal });
  const gunzip = kind === 'tar.gz' ? createGunzip() : null;
  const stream = gunzip ? raw.pipe(gunzip) : raw;
  // pipe() does not forward errors: a read error must reach the loop below, not go unheard.
  if (gunzip) raw.once('error', (e) => gunzip.destroy(e));
  try {
    return await scan(new ByteStream(stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>), kind, file, out, o);
  } catch (e) {
    if (o.signal?.aborted) throw o.signal.reason;
    if (e instanceof ArchiveError) throw new ArchiveError(e.code === 'corrupt' ? `${o.label} is damaged: ${e.message}` : e.message, e.code, e.holds);
    const code = (e as NodeJS.ErrnoException).code ?? '';
    if (code.startsWith('Z_')) throw new ArchiveError(`${o.label} is not a valid gzip file (${(e as Error).message})`, 'corrupt');
    throw e;
  } finally {
    raw.destroy();
    gunzip?.destroy();
  }
}

async function scan(bytes: ByteStream, kind: ArchiveKind, file: string, out: string, o: ExtractOptions): Promise<number> {
  const seen: string[] = [];
  let entries = 0;
  let longName: string | null = null;
  let pax = new Map<string, string>();
  for (let index = 0; ; index++) {
    const header = await bytes.read(BLOCK, 'a header');
    if (!header || header.every((b) => b === 0)) break;
    if (!checksumOk(header)) {
      if (index === 0 && kind === 'tar.gz') {
        throw new ArchiveError(`${o.label} is gzip-compressed, but what it holds is not a tar archive; publish the system disk as a gzip'd tar (tar czf ${o.label} ${file}) or as a plain image`, 'not-tar');
      }
      throw new ArchiveError(`entry ${index + 1} has a bad header checksum`, 'corrupt');
    }
    const size = sizeOf(header.subarray(124, 136));
    if (size === null) throw new ArchiveError(`entry ${index + 1} has an unreadable size`, 'corrupt');
    const type = String.fromCharCode(header[156]!);
    if (type === 'L' || type === 'K' || type === 'x' || type === 'g') {
      if (size > MAX_EXTENSION_BYTES) throw new ArchiveError(`entry ${index + 1} carries ${size} bytes of names`, 'corrupt');
      const data = (await bytes.read(padded(size), 'a long name'))?.subarray(0, size) ?? Buffer.alloc(0);
      if (type === 'L') longName = text(data);
      else if (type === 'x') pax = paxRecords(data);
      continue;
    }
    const prefix = isUstar(header) ? text(header.subarray(345, 500)) : '';
    const sparse = type === 'S' || [...pax.keys()].some((k) => k.startsWith('GNU.sparse.'));
    const path = pax.get('GNU.sparse.name') ?? pax.get('path') ?? longName ?? (prefix ? `${prefix}/${text(header.subarray(0, 100))}` : text(header.subarray(0, 100)));
    const paxSize = pax.has('size') ? Number(pax.get('size')) : null;
    const length = paxSize !== null && Number.isSafeInteger(paxSize) && paxSize >= 0 ? paxSize : size;
    longName = null;
    pax = new Map();
    entries++;
    const name = normalized(path);
    if (seen.length < LISTED_ENTRIES) seen.push(type === '5' && !name.endsWith('/') ? `${name}/` : name);
    // Links and directories have no data of their own, whatever size their header says.
    const dataBytes = '123456'.includes(type) ? 0 : length;
    if (name !== file && name !== `${file}/`) {
      await bytes.skip(padded(dataBytes), `entry ${name}`);
      continue;
    }
    if (sparse) {
      throw new ArchiveError(`${o.label}'s ${file} is stored sparse (tar --sparse), which storm does not read; pack it without --sparse (the gzip compresses its holes anyway)`, 'not-a-file');
    }
    if (type !== '0' && type !== '\0' && type !== '7') {
      throw new ArchiveError(`${o.label}'s ${file} is ${KIND_NAMES[type] ?? `an entry of type "${type}"`}, not a file; storm reads only a plain file from an archive`, 'not-a-file');
    }
    if (length > o.maxBytes) {
      throw new ArchiveError(`${o.label}'s ${file} is ${formatMib(length)}, more than ${o.maxBytesWhy} (${formatMib(o.maxBytes)})`, 'too-big');
    }
    await writeWhole(bytes.pieces(length, file), out);
    return length;
  }
  const more = entries > seen.length ? ` and ${entries - seen.length} more` : '';
  const holds = seen.length ? `it holds: ${seen.join(', ')}${more}` : 'it is empty';
  throw new ArchiveError(`${o.label} holds no ${file}; ${holds}`, 'missing', seen);
}

async function writeWhole(pieces: AsyncIterable<Buffer>, out: string): Promise<void> {
  const part = `${out}.${process.pid}.${randomBytes(4).toString('hex')}.part`;
  const fh = await open(part, 'wx');
  try {
    for await (const piece of pieces) await fh.write(piece);
    await fh.sync();
    await fh.close();
    await rename(part, out);
  } catch (e) {
    await fh.close().catch(() => {});
    await rm(part, { force: true });
    throw e;
  }
}

function formatMib(bytes: number): string {
  const mib = bytes / (1024 * 1024);
  return mib >= 1024 ? `${(mib / 1024).toFixed(1)} GiB` : `${mib < 10 ? mib.toFixed(1) : Math.round(mib)} MiB`;
}
