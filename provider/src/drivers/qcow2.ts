// qcow2 header surgery for uploads. Volumes reach the pool through libvirt's streaming
// upload (virsh vol-upload), so nothing can run `qemu-img rebase` on the host: an overlay's
// backing-file reference must already name the lower layer's pool path when its bytes leave
// here. Everything a rebase -u would touch lives in the first cluster (the spec reserves the
// space after the header extensions for the backing file name and forbids other data there),
// so rewriting that one cluster and streaming the rest unchanged is enough.
//
// Format facts: QEMU docs/interop/qcow2.txt. All numbers are big-endian.
import { open } from 'node:fs/promises';

export type Qcow2ErrorCode = 'not-qcow2' | 'truncated' | 'unsupported' | 'corrupt' | 'no-room' | 'invalid-argument';

export class Qcow2Error extends Error {
  override readonly name = 'Qcow2Error';
  /** For 'truncated': how many leading bytes of the file the operation needs. */
  readonly needed: number | undefined;
  constructor(message: string, readonly code: Qcow2ErrorCode, needed?: number) {
    super(message);
    this.needed = needed;
  }
}

export const QCOW2_MAGIC = 0x514649fb; // "QFI\xfb"
export const EXT_END = 0x00000000;
export const EXT_BACKING_FORMAT = 0xe2792aca;
export const EXT_FEATURE_TABLE = 0x6803f857;
export const EXT_BITMAPS = 0x23852875;
export const EXT_ENCRYPTION = 0x0537be77;
export const EXT_DATA_FILE = 0x44415441;

/** QEMU's own limit; longer names make the image unopenable. */
export const MAX_BACKING_FILE_BYTES = 1023;
/**
 * Enough for readQcow2Header on any image QEMU writes with the default 64 KiB clusters: the
 * header, its extensions and the backing name all live in the first cluster. For larger
 * clusters, a Qcow2Error with code 'truncated' says (in `needed`) how many bytes to pass.
 */
export const QCOW2_HEADER_PROBE_BYTES = 65536;

const V2_HEADER_LENGTH = 72;
const V3_MIN_HEADER_LENGTH = 104;
const MIN_CLUSTER_BITS = 9;
const MAX_CLUSTER_BITS = 21; // QEMU refuses anything above 2 MiB clusters

const INCOMPAT_DIRTY = 1n << 0n;
const INCOMPAT_CORRUPT = 1n << 1n;
const INCOMPAT_DATA_FILE = 1n << 2n;
const INCOMPAT_COMPRESSION = 1n << 3n;
const INCOMPAT_EXTENDED_L2 = 1n << 4n;
const INCOMPAT_KNOWN = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTENDED_L2;
const AUTOCLEAR_BITMAPS = 1n << 0n;
const AUTOCLEAR_DATA_FILE_RAW = 1n << 1n;
const AUTOCLEAR_KNOWN = AUTOCLEAR_BITMAPS | AUTOCLEAR_DATA_FILE_RAW;

export interface Qcow2Extension {
  type: number;
  /** Where the extension (its 8-byte type/length prefix) starts in the file. */
  offset: number;
  /** The extension data without padding; a view into the bytes that were parsed. */
  data: Uint8Array;
}

export interface Qcow2FeatureName {
  kind: 'incompatible' | 'compatible' | 'autoclear';
  bit: number;
  name: string;
}

export interface Qcow2Header {
  version: 2 | 3;
  clusterBits: number;
  clusterSize: number;
  virtualSize: number;
  /** 0 none, 1 AES, 2 LUKS. */
  cryptMethod: number;
  /** The name as stored (often relative to the overlay's directory); null without a backing file. */
  backingFile: string | null;
  /** From the backing-file-format extension; null without one or without a backing file. */
  backingFormat: string | null;
  /** 0 without a backing file. */
  backingFileOffset: number;
  backingFileSize: number;
  /** 72 for version 2. */
  headerLength: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  /** Feature masks are 0n on version 2 images. */
  incompatibleFeatures: bigint;
  compatibleFeatures: bigint;
  autoclearFeatures: bigint;
  refcountOrder: number;
  /** 0 zlib, 1 zstd. */
  compressionType: number;
  dirty: boolean;
  /** In file order, the end marker excluded. */
  extensions: Qcow2Extension[];
  featureNames: Qcow2FeatureName[];
  bitmaps: { count: number; directorySize: number; directoryOffset: number } | null;
  encryptionHeader: { offset: number; length: number } | null;
  /** End of the extension area, end marker included. */
  extensionsEnd: number;
  /** End of everything the header occupies (extensions and backing name): bytes needed to parse it. */
  headerAreaEnd: number;
}

const utf8 = new TextEncoder();
const utf8Decode = new TextDecoder('utf-8');

const align8 = (n: number): number => (n + 7) & ~7;
const hex32 = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

function u64(view: DataView, at: number, field: string): number {
  const value = view.getBigUint64(at);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new Qcow2Error(`qcow2 header field ${field} (${value}) is out of range: the header is corrupt`, 'corrupt');
  }
  return Number(value);
}

function need(bytes: Uint8Array, end: number, what: string): void {
  if (bytes.length < end) {
    throw new Qcow2Error(`${what} ends at byte ${end} but only ${bytes.length} bytes of the image were given`, 'truncated', end);
  }
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function isQcow2(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && viewOf(bytes).getUint32(0) === QCOW2_MAGIC;
}

function decodeString(data: Uint8Array): string {
  // Strings in extensions are not NUL-terminated, but nothing stops a writer from padding them.
  const nul = data.indexOf(0);
  return utf8Decode.decode(nul === -1 ? data : data.subarray(0, nul));
}

function parseFeatureNames(data: Uint8Array): Qcow2FeatureName[] {
  const kinds = ['incompatible', 'compatible', 'autoclear'] as const;
  const names: Qcow2FeatureName[] = [];
  for (let at = 0; at + 48 <= data.length; at += 48) {
    const kind = kinds[data[at]!];
    if (kind) names.push({ kind, bit: data[at + 1]!, name: decodeString(data.subarray(at + 2, at + 48)) });
  }
  return names;
}

function describeBits(mask: bigint, kind: Qcow2FeatureName['kind'], names: Qcow2FeatureName[]): string {
  const described: string[] = [];
  for (let bit = 0; bit < 64; bit++) {
    if (!(mask & (1n << BigInt(bit)))) continue;
    const name = names.find((n) => n.kind === kind && n.bit === bit)?.name;
    described.push(name ? `bit ${bit} (${name})` : `bit ${bit}`);
  }
  return described.join(', ');
}

/**
 * Parses the qcow2 header, its extensions and the backing file name from the start of an image.
 * Pass the first cluster, or QCOW2_HEADER_PROBE_BYTES; when that is not enough the Qcow2Error
 * (code 'truncated') carries the byte count needed. Refuses images this provider cannot upload
 * as one self-contained volume (external data file, corrupt, unknown incompatible features).
 */
export function readQcow2Header(bytes: Uint8Array): Qcow2Header {
  if (!isQcow2(bytes)) {
    throw new Qcow2Error(
      bytes.length < 4 ? `not a qcow2 image: only ${bytes.length} bytes` : 'not a qcow2 image: the file does not start with the qcow2 magic "QFI\\xfb"',
      'not-qcow2',
    );
  }
  need(bytes, 8, 'the qcow2 version field');
  const view = viewOf(bytes);
  const rawVersion = view.getUint32(4);
  if (rawVersion !== 2 && rawVersion !== 3) {
    throw new Qcow2Error(
      `qcow2 version ${rawVersion} is not supported (only 2 and 3): convert it with \`qemu-img convert -O qcow2\``,
      'unsupported',
    );
  }
  const version: 2 | 3 = rawVersion;
  need(bytes, version === 2 ? V2_HEADER_LENGTH : V3_MIN_HEADER_LENGTH, `the qcow2 v${version} header`);

  const clusterBits = view.getUint32(20);
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
    throw new Qcow2Error(`qcow2 cluster_bits ${clusterBits} is outside ${MIN_CLUSTER_BITS}..${MAX_CLUSTER_BITS}: the header is corrupt or unsupported`, 'corrupt');
  }
  const clusterSize = 2 ** clusterBits;

  let incompatibleFeatures = 0n;
  let compatibleFeatures = 0n;
  let autoclearFeatures = 0n;
  let refcountOrder = 4;
  let headerLength = V2_HEADER_LENGTH;
  let compressionType = 0;
  if (version === 3) {
    incompatibleFeatures = view.getBigUint64(72);
    compatibleFeatures = view.getBigUint64(80);
    autoclearFeatures = view.getBigUint64(88);
    refcountOrder = view.getUint32(96);
    headerLength = view.getUint32(100);
    if (headerLength < V3_MIN_HEADER_LENGTH || headerLength % 8 !== 0 || headerLength > clusterSize) {
      throw new Qcow2Error(`qcow2 header_length ${headerLength} is invalid (must be a multiple of 8 from 104 to the cluster size): the header is corrupt`, 'corrupt');
    }
    need(bytes, headerLength, 'the qcow2 header');
    if (headerLength > 104) compressionType = bytes[104]!;
  }

  const backingFileOffset = u64(view, 8, 'backing_file_offset');
  const backingFileSize = backingFileOffset === 0 ? 0 : view.getUint32(16);
  if (backingFileOffset !== 0) {
    if (backingFileSize > MAX_BACKING_FILE_BYTES) {
      throw new Qcow2Error(`qcow2 backing file name is ${backingFileSize} bytes, more than the ${MAX_BACKING_FILE_BYTES} QEMU allows: the header is corrupt`, 'corrupt');
    }
    if (backingFileOffset < headerLength || backingFileOffset + backingFileSize > clusterSize) {
      throw new Qcow2Error(`qcow2 backing file name (offset ${backingFileOffset}, ${backingFileSize} bytes) lies outside the header cluster: the header is corrupt`, 'corrupt');
    }
  }

  // QEMU reads extensions up to the backing name (or the end of the cluster) and stops at the
  // end marker; old images may have neither extensions nor an end marker.
  const extensionLimit = backingFileOffset !== 0 ? backingFileOffset : clusterSize;
  const extensions: Qcow2Extension[] = [];
  let at = headerLength;
  let extensionsEnd = headerLength;
  while (at + 8 <= extensionLimit) {
    need(bytes, at + 8, 'the qcow2 header extension area');
    const type = view.getUint32(at);
    const length = view.getUint32(at + 4);
    if (type === EXT_END) {
      extensionsEnd = at + 8;
      break;
    }
    const dataEnd = at + 8 + length;
    if (dataEnd > extensionLimit) {
      throw new Qcow2Error(`qcow2 header extension ${hex32(type)} at offset ${at} (${length} bytes) runs past the header area: the header is corrupt`, 'corrupt');
    }
    need(bytes, dataEnd, `qcow2 header extension ${hex32(type)}`);
    extensions.push({ type, offset: at, data: bytes.subarray(at + 8, dataEnd) });
    at = align8(dataEnd);
    extensionsEnd = Math.min(at, extensionLimit);
  }

  const featureTable = extensions.find((e) => e.type === EXT_FEATURE_TABLE);
  const featureNames = featureTable ? parseFeatureNames(featureTable.data) : [];

  if (incompatibleFeatures & INCOMPAT_DATA_FILE || extensions.some((e) => e.type === EXT_DATA_FILE)) {
    const nameExt = extensions.find((e) => e.type === EXT_DATA_FILE);
    const named = nameExt ? ` (data_file=${decodeString(nameExt.data)})` : '';
    throw new Qcow2Error(
      `qcow2 image uses an external data file${named}: its guest data is not inside the image, so it cannot be uploaded as one volume; ` +
        'make it self-contained with `qemu-img convert -O qcow2` first',
      'unsupported',
    );
  }
  const unknownIncompat = incompatibleFeatures & ~INCOMPAT_KNOWN;
  if (unknownIncompat) {
    throw new Qcow2Error(
      `qcow2 image uses incompatible features this provider does not know: ${describeBits(unknownIncompat, 'incompatible', featureNames)}; ` +
        'rewrite it with a qemu-img that understands them (`qemu-img convert -O qcow2`) or drop those features',
      'unsupported',
    );
  }
  if (incompatibleFeatures & INCOMPAT_CORRUPT) {
    throw new Qcow2Error('qcow2 image is marked corrupt: repair it with `qemu-img check -r all` before uploading', 'corrupt');
  }

  let backingFile: string | null = null;
  if (backingFileOffset !== 0 && backingFileSize > 0) {
    need(bytes, backingFileOffset + backingFileSize, 'the qcow2 backing file name');
    backingFile = utf8Decode.decode(bytes.subarray(backingFileOffset, backingFileOffset + backingFileSize));
  }
  const formatExt = extensions.find((e) => e.type === EXT_BACKING_FORMAT);
  const backingFormat = backingFile !== null && formatExt ? decodeString(formatExt.data) : null;

  const bitmapsExt = extensions.find((e) => e.type === EXT_BITMAPS);
  let bitmaps: Qcow2Header['bitmaps'] = null;
  if (bitmapsExt && bitmapsExt.data.length >= 24) {
    const v = viewOf(bitmapsExt.data);
    bitmaps = { count: v.getUint32(0), directorySize: u64(v, 8, 'bitmap_directory_size'), directoryOffset: u64(v, 16, 'bitmap_directory_offset') };
  }
  const encryptionExt = extensions.find((e) => e.type === EXT_ENCRYPTION);
  let encryptionHeader: Qcow2Header['encryptionHeader'] = null;
  if (encryptionExt && encryptionExt.data.length >= 16) {
    const v = viewOf(encryptionExt.data);
    encryptionHeader = { offset: u64(v, 0, 'encryption header offset'), length: u64(v, 8, 'encryption header length') };
  }

  return {
    version,
    clusterBits,
    clusterSize,
    virtualSize: u64(view, 24, 'size'),
    cryptMethod: view.getUint32(32),
    backingFile,
    backingFormat,
    backingFileOffset,
    backingFileSize,
    headerLength,
    l1Size: view.getUint32(36),
    l1TableOffset: u64(view, 40, 'l1_table_offset'),
    refcountTableOffset: u64(view, 48, 'refcount_table_offset'),
    refcountTableClusters: view.getUint32(56),
    nbSnapshots: view.getUint32(60),
    snapshotsOffset: u64(view, 64, 'snapshots_offset'),
    incompatibleFeatures,
    compatibleFeatures,
    autoclearFeatures,
    refcountOrder,
    compressionType,
    dirty: (incompatibleFeatures & INCOMPAT_DIRTY) !== 0n,
    extensions,
    featureNames,
    bitmaps,
    encryptionHeader,
    extensionsEnd,
    headerAreaEnd: Math.max(extensionsEnd, backingFileOffset + backingFileSize),
  };
}

function checkBackingArguments(backingFile: string | null, backingFormat: 'qcow2' | 'raw' | null): Uint8Array | null {
  if (backingFile === null) {
    if (backingFormat !== null) {
      throw new Qcow2Error(`backing format ${backingFormat} given without a backing file`, 'invalid-argument');
    }
    return null;
  }
  if (backingFormat !== null && backingFormat !== 'qcow2' && backingFormat !== 'raw') {
    throw new Qcow2Error(`backing format must be qcow2, raw or null, not ${JSON.stringify(backingFormat)}`, 'invalid-argument');
  }
  if (backingFile === '') throw new Qcow2Error('backing file name is empty: pass null to remove the backing file', 'invalid-argument');
  if (backingFile.includes('\0')) throw new Qcow2Error('backing file name contains a NUL character', 'invalid-argument');
  const name = utf8.encode(backingFile);
  if (name.length > MAX_BACKING_FILE_BYTES) {
    throw new Qcow2Error(
      `backing file name is ${name.length} bytes; qcow2 (as QEMU implements it) allows at most ${MAX_BACKING_FILE_BYTES}: use a shorter pool path`,
      'no-room',
    );
  }
  return name;
}

/**
 * Returns a copy of `firstCluster` whose header names `backingFile` (null removes it) with the
 * backing-format extension set to `backingFormat` (null removes it; QEMU then probes). Other
 * extensions keep their bytes and order; unknown autoclear bits are cleared, as the spec demands
 * of any writer. Pass at least the first cluster: a Qcow2Error with code 'truncated' says when
 * fewer bytes would do but were not given.
 */
export function rewriteBackingFile(firstCluster: Uint8Array, backingFile: string | null, backingFormat: 'qcow2' | 'raw' | null): Uint8Array {
  const name = checkBackingArguments(backingFile, backingFormat);
  const header = readQcow2Header(firstCluster);

  const extensions: { type: number; data: Uint8Array }[] = [];
  let formatPlaced = false;
  const formatData = name !== null && backingFormat !== null ? utf8.encode(backingFormat) : null;
  for (const ext of header.extensions) {
    if (ext.type !== EXT_BACKING_FORMAT) {
      extensions.push(ext);
    } else if (formatData && !formatPlaced) {
      extensions.push({ type: EXT_BACKING_FORMAT, data: formatData });
      formatPlaced = true;
    }
  }
  // First, where QEMU puts it, so our images look like the ones qemu-img writes.
  if (formatData && !formatPlaced) extensions.unshift({ type: EXT_BACKING_FORMAT, data: formatData });

  let end = header.headerLength;
  for (const ext of extensions) end += 8 + align8(ext.data.length);
  end += 8; // end marker
  const nameOffset = end;
  const newEnd = nameOffset + (name?.length ?? 0);

  if (newEnd > header.clusterSize) {
    const free = header.clusterSize - nameOffset;
    throw new Qcow2Error(
      `backing file name of ${name?.length ?? 0} bytes does not fit in the image's first cluster: ` +
        `with ${header.clusterSize}-byte clusters only ${Math.max(0, free)} bytes remain after the header and its extensions; ` +
        'use a shorter pool path, or rebuild the image with larger clusters (`qemu-img convert -O qcow2 -o cluster_size=65536`)',
      'no-room',
    );
  }

  // Everything from the end of the fixed header to here is ours to rewrite; any data structure
  // placed there would be overwritten, so refuse rather than corrupt the image.
  const touchedEnd = Math.max(newEnd, header.headerAreaEnd);
  const structures: [string, number, boolean][] = [
    ['L1 table', header.l1TableOffset, header.l1Size > 0],
    ['refcount table', header.refcountTableOffset, true],
    ['snapshot table', header.snapshotsOffset, header.nbSnapshots > 0],
    ['bitmap directory', header.bitmaps?.directoryOffset ?? 0, header.bitmaps !== null && header.bitmaps.count > 0],
    ['encryption header', header.encryptionHeader?.offset ?? 0, header.encryptionHeader !== null],
  ];
  for (const [what, offset, present] of structures) {
    if (present && offset < touchedEnd) {
      throw new Qcow2Error(
        `qcow2 ${what} starts at byte ${offset}, inside the header area the new backing file name needs (up to byte ${touchedEnd}); ` +
          'refusing to overwrite it: rebuild the image with `qemu-img convert -O qcow2`',
        'no-room',
      );
    }
  }
  need(firstCluster, touchedEnd, 'the rewritten qcow2 header area');

  // Not .slice(): on a Buffer that is a view, and the caller's bytes must stay untouched.
  const out = new Uint8Array(firstCluster);
  const view = viewOf(out);
  out.fill(0, header.headerLength, touchedEnd);
  let at = header.headerLength;
  for (const ext of extensions) {
    view.setUint32(at, ext.type);
    view.setUint32(at + 4, ext.data.length);
    out.set(ext.data, at + 8);
    at += 8 + align8(ext.data.length);
  }
  // The end marker is the 8 zero bytes fill() left at `at`.
  if (name) {
    out.set(name, nameOffset);
    view.setBigUint64(8, BigInt(nameOffset));
    view.setUint32(16, name.length);
  } else {
    view.setBigUint64(8, 0n);
    view.setUint32(16, 0);
  }
  if (header.version === 3) view.setBigUint64(88, header.autoclearFeatures & AUTOCLEAR_KNOWN);

  const check = readQcow2Header(out);
  if (check.backingFile !== backingFile || check.backingFormat !== (name ? backingFormat : null)) {
    throw new Qcow2Error('internal error: the rewritten qcow2 header does not read back as written', 'corrupt');
  }
  return out;
}

type ByteSource = AsyncIterable<Uint8Array> | NodeJS.ReadableStream;

/**
 * Streams an image with its header cluster rewritten by rewriteBackingFile: buffers only the
 * first cluster (at most 2 MiB), then passes every later chunk through untouched, so the
 * output has the input's length. Wrap in stream.Readable.from() where a stream is needed.
 */
export function streamWithBackingFile(
  input: ByteSource,
  backingFile: string | null,
  backingFormat: 'qcow2' | 'raw' | null,
): AsyncGenerator<Uint8Array, void, undefined> {
  // Bad arguments throw here, before the caller opens an upload stream.
  checkBackingArguments(backingFile, backingFormat);
  return rewriteStream(input, backingFile, backingFormat);
}

async function* rewriteStream(
  input: ByteSource,
  backingFile: string | null,
  backingFormat: 'qcow2' | 'raw' | null,
): AsyncGenerator<Uint8Array, void, undefined> {
  const pending: Uint8Array[] = [];
  let buffered = 0;
  // Until the cluster size is known, wait for the fields that carry it.
  let wanted = 24;
  let clusterKnown = false;
  let passing = false;

  const flush = function* (): Generator<Uint8Array> {
    const head = Buffer.concat(pending, buffered);
    pending.length = 0;
    const cut = Math.min(wanted, head.length);
    yield rewriteBackingFile(head.subarray(0, cut), backingFile, backingFormat);
    if (head.length > cut) yield head.subarray(cut);
    passing = true;
  };

  for await (const chunk of input) {
    if (typeof chunk === 'string') throw new TypeError('streamWithBackingFile needs a binary stream, got text chunks');
    if (passing) {
      yield chunk;
      continue;
    }
    pending.push(chunk);
    buffered += chunk.length;
    if (!clusterKnown && buffered >= wanted) {
      const head = Buffer.concat(pending, buffered);
      if (!isQcow2(head)) throw new Qcow2Error('not a qcow2 image: the stream does not start with the qcow2 magic "QFI\\xfb"', 'not-qcow2');
      const clusterBits = viewOf(head).getUint32(20);
      // Out-of-range values are reported by readQcow2Header; don't buffer an absurd amount first.
      wanted = 2 ** Math.min(Math.max(clusterBits, MIN_CLUSTER_BITS), MAX_CLUSTER_BITS);
      clusterKnown = true;
    }
    if (clusterKnown && buffered >= wanted) yield* flush();
  }
  // A file shorter than a cluster is odd but still fine if the header area fits in it.
  if (!passing) {
    if (!clusterKnown && !isQcow2(Buffer.concat(pending, buffered))) {
      throw new Qcow2Error(`not a qcow2 image: the stream ended after ${buffered} bytes`, 'not-qcow2');
    }
    yield* flush();
  }
}

/**
 * Reads the qcow2 header of a local file; null if the file is not qcow2 at all (a raw base).
 * Errors name the file.
 */
export async function readQcow2HeaderFromFile(path: string): Promise<Qcow2Header | null> {
  const handle = await open(path, 'r');
  try {
    let length = QCOW2_HEADER_PROBE_BYTES;
    for (;;) {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, 0);
      const bytes = buffer.subarray(0, bytesRead);
      if (!isQcow2(bytes)) return null;
      try {
        return readQcow2Header(bytes);
      } catch (error) {
        if (error instanceof Qcow2Error && error.code === 'truncated' && error.needed !== undefined && bytesRead === length && error.needed > length) {
          length = error.needed;
          continue;
        }
        if (error instanceof Qcow2Error) throw new Qcow2Error(`${path}: ${error.message}`, error.code, error.needed);
        throw error;
      }
    }
  } finally {
    await handle.close();
  }
}

/** The backing file name stored in a local image (as the publisher wrote it), or null for a base layer. */
export async function readBackingChainName(path: string): Promise<string | null> {
  return (await readQcow2HeaderFromFile(path))?.backingFile ?? null;
}
