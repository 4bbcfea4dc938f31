// A small ISO9660 (ECMA-119) writer for NoCloud seeds: one flat root directory, no external tools,
// so the provider can build the image wherever it runs and upload it to a remote libvirt pool.
//
// Names: the primary hierarchy carries level-1 8.3 names (META_DAT.;1), which is all a strict
// ISO9660 reader sees. The real names (meta-data, user-data) live in a Joliet supplementary
// hierarchy. Joliet rather than Rock Ridge because it is the same directory/path-table layout a
// second time with UCS-2 names, whereas Rock Ridge needs SUSP entries in every record plus an ER
// entry too large for the root "." record (so a continuation area). Joliet also has its own
// case-preserving volume label, which libblkid prefers: blkid reports LABEL=cidata while the
// primary descriptor keeps the conformant d-characters CIDATA. Linux isofs picks Joliet up by
// default (mount -t iso9660 shows meta-data), as do isoinfo -J and cloud-init.

const SECTOR = 2048;
const SYSTEM_AREA_SECTORS = 16;
const MAX_JOLIET_NAME_UNITS = 64; // Joliet's limit: 128 bytes of UCS-2 per identifier
const MAX_VOLUME_ID = 16; // the Joliet label field is 32 bytes of UCS-2; the primary one fits too.

export interface IsoFile {
  name: string;
  data: Uint8Array;
}

export interface IsoOptions {
  volumeId: string;
  files: IsoFile[];
  // Recorded as every creation/modification/recording date. Defaults to the Unix epoch so that
  // the same files always give the same bytes (Terraform compares seeds by content).
  timestamp?: Date;
}

export class IsoBuildError extends Error {
  constructor(readonly subject: string, readonly reason: string) {
    super(`cannot build ISO9660 image: ${subject}: ${reason}`);
  }
}

interface DirEntry {
  identifier: Uint8Array;
  // ECMA-119 9.3 orders records by name then extension, each compared as if padded with the
  // filler character; keeping the two parts apart makes that comparison direct.
  sortName: number[];
  sortExt: number[];
  file: number;
}

interface Placed {
  extent: number;
  size: number;
}

export function buildIso9660(options: IsoOptions): Uint8Array {
  const timestamp = options.timestamp ?? new Date(0);
  if (Number.isNaN(timestamp.getTime()) || timestamp.getUTCFullYear() < 1900 || timestamp.getUTCFullYear() > 2155) {
    throw new IsoBuildError('timestamp', 'must be a valid date between 1900 and 2155');
  }
  const primaryVolumeId = checkVolumeId(options.volumeId);

  const seen = new Set<string>();
  for (const f of options.files) {
    checkJolietName(f.name);
    if (seen.has(f.name)) throw new IsoBuildError(JSON.stringify(f.name), 'duplicate file name');
    seen.add(f.name);
  }

  const level1 = level1Names(options.files.map((f) => f.name));
  const primaryEntries: DirEntry[] = options.files.map((f, i) => {
    const name = level1[i] as { base: string; ext: string };
    return {
      identifier: ascii(`${name.base}.${name.ext};1`),
      sortName: codes(name.base),
      sortExt: codes(name.ext),
      file: i,
    };
  });
  const jolietEntries: DirEntry[] = options.files.map((f, i) => {
    const dot = f.name.lastIndexOf('.');
    return {
      // No ";1" version suffix: mastering tools leave it off Joliet names, so isoinfo -J lists the
      // bare name; Linux and Windows would strip it anyway.
      identifier: ucs2(f.name),
      sortName: codes(dot < 0 ? f.name : f.name.slice(0, dot)),
      sortExt: codes(dot < 0 ? '' : f.name.slice(dot + 1)),
      file: i,
    };
  });
  primaryEntries.sort(compareEntries);
  jolietEntries.sort(compareEntries);

  // Fixed part: descriptors at 16 (primary), 17 (Joliet), 18 (terminator), then one sector for
  // each path table: L and M for the primary hierarchy, L and M for Joliet.
  const pvdSector = SYSTEM_AREA_SECTORS;
  const svdSector = pvdSector + 1;
  const terminatorSector = pvdSector + 2;
  const pathTables = { primaryL: 19, primaryM: 20, jolietL: 21, jolietM: 22 };
  let next = 23;

  const primaryRootSectors = directorySectors(primaryEntries);
  const primaryRoot: Placed = { extent: next, size: primaryRootSectors * SECTOR };
  next += primaryRootSectors;
  const jolietRootSectors = directorySectors(jolietEntries);
  const jolietRoot: Placed = { extent: next, size: jolietRootSectors * SECTOR };
  next += jolietRootSectors;

  const placed: Placed[] = options.files.map((f) => {
    if (f.data.length > 0xffffffff) throw new IsoBuildError(JSON.stringify(f.name), 'larger than 4 GiB');
    // An empty file still needs a location; like mastering tools, point it at the next free
    // sector without claiming it: nothing is ever read from it.
    const p = { extent: next, size: f.data.length };
    next += Math.ceil(f.data.length / SECTOR);
    return p;
  });
  const totalSectors = next;

  const image = new Uint8Array(totalSectors * SECTOR);
  const view = new DataView(image.buffer);
  const recordDate = directoryDate(timestamp);
  const volumeDate = descriptorDate(timestamp);
  const pathTableSize = 10; // one record: 8 fixed bytes, the 1-byte root identifier, one pad byte

  const writeDescriptor = (sector: number, joliet: boolean, root: Placed, l: number, m: number): void => {
    const at = sector * SECTOR;
    image[at] = joliet ? 2 : 1;
    image.set(ascii('CD001'), at + 1);
    image[at + 6] = 1;
    const text = (offset: number, length: number, value: string): void => {
      image.set(joliet ? ucs2Field(value, length) : asciiField(value, length), at + offset);
    };
    text(8, 32, ''); // system identifier
    text(40, 32, joliet ? options.volumeId : primaryVolumeId);
    both32(view, at + 80, totalSectors);
    if (joliet) image.set(ascii('%/E'), at + 88); // escape sequence for UCS-2 level 3
    both16(view, at + 120, 1); // volume set size
    both16(view, at + 124, 1); // volume sequence number
    both16(view, at + 128, SECTOR);
    both32(view, at + 132, pathTableSize);
    view.setUint32(at + 140, l, true);
    view.setUint32(at + 148, m, false);
    image.set(directoryRecord(root.extent, root.size, true, Uint8Array.of(0), recordDate), at + 156);
    text(190, 128, ''); // volume set
    text(318, 128, ''); // publisher
    text(446, 128, ''); // data preparer
    text(574, 128, ''); // application
    text(702, 37, ''); // copyright file
    text(739, 37, ''); // abstract file
    text(776, 37, ''); // bibliographic file
    image.set(volumeDate, at + 813); // creation
    image.set(volumeDate, at + 830); // modification
    image.set(unspecifiedDate(), at + 847); // expiration
    image.set(unspecifiedDate(), at + 864); // effective
    image[at + 881] = 1; // file structure version
  };
  writeDescriptor(pvdSector, false, primaryRoot, pathTables.primaryL, pathTables.primaryM);
  writeDescriptor(svdSector, true, jolietRoot, pathTables.jolietL, pathTables.jolietM);
  {
    const at = terminatorSector * SECTOR;
    image[at] = 255;
    image.set(ascii('CD001'), at + 1);
    image[at + 6] = 1;
  }

  const writePathTable = (sector: number, littleEndian: boolean, root: Placed): void => {
    const at = sector * SECTOR;
    image[at] = 1; // length of the root's identifier
    view.setUint32(at + 2, root.extent, littleEndian);
    view.setUint16(at + 6, 1, littleEndian); // the root is its own parent
  };
  writePathTable(pathTables.primaryL, true, primaryRoot);
  writePathTable(pathTables.primaryM, false, primaryRoot);
  writePathTable(pathTables.jolietL, true, jolietRoot);
  writePathTable(pathTables.jolietM, false, jolietRoot);

  const writeDirectory = (root: Placed, entries: DirEntry[]): void => {
    const records = [
      directoryRecord(root.extent, root.size, true, Uint8Array.of(0), recordDate),
      directoryRecord(root.extent, root.size, true, Uint8Array.of(1), recordDate),
      ...entries.map((e) => {
        const p = placed[e.file] as Placed;
        return directoryRecord(p.extent, p.size, false, e.identifier, recordDate);
      }),
    ];
    let offset = root.extent * SECTOR;
    for (const r of records) {
      // A record may not straddle a sector boundary; readers skip the zero tail of a sector.
      const used = offset % SECTOR;
      if (used + r.length > SECTOR) offset += SECTOR - used;
      image.set(r, offset);
      offset += r.length;
    }
  };
  writeDirectory(primaryRoot, primaryEntries);
  writeDirectory(jolietRoot, jolietEntries);

  options.files.forEach((f, i) => {
    image.set(f.data, (placed[i] as Placed).extent * SECTOR);
  });
  return image;
}

function checkVolumeId(volumeId: string): string {
  if (volumeId.length === 0 || volumeId.length > MAX_VOLUME_ID) {
    throw new IsoBuildError('volume id', `must be 1-${MAX_VOLUME_ID} characters, got ${JSON.stringify(volumeId)}`);
  }
  const upper = volumeId.toUpperCase();
  if (!/^[A-Z0-9_]+$/.test(upper)) {
    throw new IsoBuildError('volume id', `${JSON.stringify(volumeId)} may contain only letters, digits and _`);
  }
  return upper;
}

function checkJolietName(name: string): void {
  const subject = `file name ${JSON.stringify(name)}`;
  if (name.length === 0 || name === '.' || name === '..') throw new IsoBuildError(subject, 'not a usable name');
  if (name.length > MAX_JOLIET_NAME_UNITS) {
    throw new IsoBuildError(subject, `longer than ${MAX_JOLIET_NAME_UNITS} characters`);
  }
  // Joliet forbids controls and * / : ; ? \ ; UCS-2 has no surrogate pairs.
  if (/[\u0000-\u001f*/:;?\\\ud800-\udfff]/.test(name)) {
    throw new IsoBuildError(subject, 'contains a character Joliet does not allow');
  }
}

// Level-1 names: up to 8 d-characters, a dot, up to 3 more. Collisions after mapping get a numeric
// suffix in the name part so every record stays unique.
function level1Names(names: string[]): { base: string; ext: string }[] {
  const map = (s: string): string => s.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
  const used = new Set<string>();
  return names.map((name) => {
    const dot = name.lastIndexOf('.');
    let base = map(dot <= 0 ? name : name.slice(0, dot)).slice(0, 8);
    const ext = dot <= 0 ? '' : map(name.slice(dot + 1)).slice(0, 3);
    if (base === '') base = '_';
    let candidate = base;
    for (let n = 1; used.has(`${candidate}.${ext}`); n++) {
      const suffix = String(n);
      candidate = base.slice(0, 8 - suffix.length) + suffix;
    }
    used.add(`${candidate}.${ext}`);
    return { base: candidate, ext };
  });
}

function compareEntries(a: DirEntry, b: DirEntry): number {
  return comparePadded(a.sortName, b.sortName) || comparePadded(a.sortExt, b.sortExt);
}

function comparePadded(a: number[], b: number[]): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] ?? 0x20) - (b[i] ?? 0x20);
    if (d !== 0) return d;
  }
  return 0;
}

function directorySectors(entries: DirEntry[]): number {
  const lengths = [34, 34, ...entries.map((e) => recordLength(e.identifier.length))];
  let sectors = 1;
  let used = 0;
  for (const len of lengths) {
    if (used + len > SECTOR) {
      sectors++;
      used = 0;
    }
    used += len;
  }
  return sectors;
}

function recordLength(identifierLength: number): number {
  return 33 + identifierLength + (identifierLength % 2 === 0 ? 1 : 0);
}

function directoryRecord(extent: number, size: number, directory: boolean, identifier: Uint8Array, date: Uint8Array): Uint8Array {
  const length = recordLength(identifier.length);
  const r = new Uint8Array(length);
  const v = new DataView(r.buffer);
  r[0] = length;
  both32(v, 2, extent);
  both32(v, 10, size);
  r.set(date, 18);
  r[25] = directory ? 0x02 : 0x00;
  both16(v, 28, 1); // volume sequence number
  r[32] = identifier.length;
  r.set(identifier, 33);
  return r;
}

function directoryDate(d: Date): Uint8Array {
  return Uint8Array.of(
    d.getUTCFullYear() - 1900,
    d.getUTCMonth() + 1,
    d.getUTCDate(),
    d.getUTCHours(),
    d.getUTCMinutes(),
    d.getUTCSeconds(),
    0, // offset from GMT in 15-minute units
  );
}

function descriptorDate(d: Date): Uint8Array {
  const p = (n: number, w: number): string => String(n).padStart(w, '0');
  const digits =
    p(d.getUTCFullYear(), 4) + p(d.getUTCMonth() + 1, 2) + p(d.getUTCDate(), 2) +
    p(d.getUTCHours(), 2) + p(d.getUTCMinutes(), 2) + p(d.getUTCSeconds(), 2) +
    p(Math.floor(d.getUTCMilliseconds() / 10), 2);
  const out = new Uint8Array(17);
  out.set(ascii(digits));
  return out; // last byte: GMT offset 0
}

function unspecifiedDate(): Uint8Array {
  const out = new Uint8Array(17);
  out.fill(0x30, 0, 16);
  return out;
}

function both16(v: DataView, offset: number, value: number): void {
  v.setUint16(offset, value, true);
  v.setUint16(offset + 2, value, false);
}

function both32(v: DataView, offset: number, value: number): void {
  v.setUint32(offset, value, true);
  v.setUint32(offset + 4, value, false);
}

function codes(s: string): number[] {
  return Array.from({ length: s.length }, (_, i) => s.charCodeAt(i));
}

function ascii(s: string): Uint8Array {
  return Uint8Array.from(codes(s));
}

function ucs2(s: string): Uint8Array {
  const out = new Uint8Array(s.length * 2);
  const v = new DataView(out.buffer);
  for (let i = 0; i < s.length; i++) v.setUint16(i * 2, s.charCodeAt(i), false);
  return out;
}

function asciiField(value: string, length: number): Uint8Array {
  const out = new Uint8Array(length).fill(0x20);
  out.set(ascii(value).subarray(0, length));
  return out;
}

// UCS-2 space-padded; an odd-length field ends in one zero byte, since half a character is none.
function ucs2Field(value: string, length: number): Uint8Array {
  const out = new Uint8Array(length);
  const chars = Math.floor(length / 2);
  out.set(ucs2(value.padEnd(chars, ' ').slice(0, chars)));
  return out;
}
