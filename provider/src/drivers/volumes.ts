// Volumes in a server's storm pool, through libvirt's storage API (virsh), so that remote
// hosts (qemu+ssh, qemu+tls) work the same as this one: nothing here touches the host's
// filesystem directly.
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LibvirtError } from './errors.ts';
import { withTempDir } from './tempdir.ts';
import { escapeXml } from './xml.ts';
import { virsh, virshQuote as q } from './virsh.ts';

/** The pool on every server that holds storm's layers and records. */
export const POOL = 'storm';

export interface Volume {
  name: string;
  path: string;
  capacity: number;
  allocation: number;
  format: string | null;
  backingPath: string | null;
}

const NOT_FOUND = /Storage volume not found|no storage vol with matching (name|path)|not found/i;

function tag(xml: string, name: string): string | null {
  return new RegExp(`<${name}(?:\\s[^>]*)?>([^<]*)</${name}>`).exec(xml)?.[1] ?? null;
}

export function parseVolumeXml(xml: string): Volume {
  const target = /<target>([\s\S]*?)<\/target>/.exec(xml)?.[1] ?? '';
  const backing = /<backingStore>([\s\S]*?)<\/backingStore>/.exec(xml)?.[1] ?? '';
  return {
    name: tag(xml, 'name') ?? '',
    path: tag(target, 'path') ?? '',
    capacity: Number(tag(xml, 'capacity') ?? 0),
    allocation: Number(tag(xml, 'allocation') ?? 0),
    format: /<format type='([^']+)'/.exec(target)?.[1] ?? null,
    backingPath: tag(backing, 'path'),
  };
}

export async function getVolume(uri: string, name: string): Promise<Volume | null> {
  try {
    return parseVolumeXml(await virsh(uri, `vol-dumpxml --pool ${POOL} ${q(name)}`));
  } catch (err) {
    if (err instanceof LibvirtError && NOT_FOUND.test(err.message)) return null;
    throw err;
  }
}

export async function listVolumes(uri: string): Promise<Volume[]> {
  await virsh(uri, `pool-refresh ${POOL}`);
  const names = (await virsh(uri, `vol-list ${POOL}`))
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
  if (!names.length) return [];
  // One virsh process for all of them. A batch reports only its last command's status, so every
  // volume must be accounted for: any the batch did not describe (it failed, or one vanished
  // between the listing and the look) is asked for on its own, where a failure is seen.
  const batch = await virsh(uri, names.map((n) => `vol-dumpxml --pool ${POOL} ${q(n)}`).join('; ')).catch(() => '');
  const described = new Map(
    batch
      .split(/(?=<volume)/)
      .filter((x) => x.includes('<volume'))
      .map(parseVolumeXml)
      .map((v) => [v.name, v] as const),
  );
  const out: Volume[] = [];
  for (const name of names) {
    const v = described.get(name) ?? (await getVolume(uri, name));
    if (v) out.push(v);
  }
  return out;
}

/**
 * The names in the pool, as libvirt lists them (no refresh, no description: one call). Every
 * volume storm makes goes through libvirt, so libvirt's list has them all.
 */
export async function listVolumeNames(uri: string): Promise<string[]> {
  let listing: string;
  try {
    listing = await virsh(uri, `vol-list ${POOL}`);
  } catch (err) {
    // No pool, no volumes: what a server whose pool was removed holds.
    if (err instanceof LibvirtError && NOT_FOUND.test(err.message)) return [];
    throw err;
  }
  return listing
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

/** Bytes free in the pool, as libvirt reports them. */
export async function poolAvailableBytes(uri: string): Promise<number> {
  const info = await virsh(uri, `pool-info ${POOL} --bytes`);
  const m = /^Available:\s+(\d+)/m.exec(info);
  if (!m) throw new LibvirtError(`pool-info ${POOL} reported no available space: ${info.trim()}`);
  return Number(m[1]);
}

/** Volumes whose backing file is `path`: a layer cannot go while something stands on it. */
export async function dependentsOf(uri: string, path: string): Promise<string[]> {
  return (await listVolumes(uri)).filter((v) => v.backingPath === path).map((v) => v.name);
}

/** A qcow2 overlay whose backing file is another volume: O(1) in the size of the layers below. */
export async function createOverlay(uri: string, name: string, backing: Volume, capacityBytes?: number): Promise<Volume> {
  const xml =
    `<volume><name>${escapeXml(name)}</name><capacity unit='bytes'>${capacityBytes ?? backing.capacity}</capacity>` +
    `<target><format type='qcow2'/></target>` +
    `<backingStore><path>${escapeXml(backing.path)}</path><format type='${backing.format === 'raw' ? 'raw' : 'qcow2'}'/></backingStore></volume>`;
  await withXmlFile(xml, (file) => virsh(uri, `vol-create ${POOL} ${q(file)}`));
  const created = await getVolume(uri, name);
  if (!created) throw new LibvirtError(`volume ${name} vanished right after it was created`);
  return created;
}

/** A new empty raw volume (sparse in a dir pool: it costs nothing until the guest writes). */
export async function createEmptyVolume(uri: string, name: string, capacityBytes: number): Promise<Volume> {
  await virsh(uri, `vol-create-as ${POOL} ${q(name)} ${capacityBytes} --allocation 0 --format raw`);
  const created = await getVolume(uri, name);
  if (!created) throw new LibvirtError(`volume ${name} vanished right after it was created`);
  return created;
}

/** Full copy of a volume (what the overlay avoids; the bench compares both). */
export async function cloneVolume(uri: string, name: string, source: string): Promise<void> {
  await virsh(uri, `vol-clone --pool ${POOL} ${q(source)} ${q(name)}`, 10 * 60_000);
}

/**
 * Uploads a local file as a new volume. `patchHead` may replace the first bytes after the
 * upload (a qcow2 header whose backing file now names a volume in this pool). The volume is
 * deleted again if any step fails: a failed install leaves no half-written layer behind.
 */
export async function uploadVolume(uri: string, name: string, file: string, patchHead?: Uint8Array): Promise<Volume> {
  const size = (await stat(file)).size;
  await virsh(uri, `vol-create-as ${POOL} ${q(name)} ${size} --allocation 0 --format raw`);
  try {
    await virsh(uri, `vol-upload --pool ${POOL} ${q(name)} ${q(file)}`, 60 * 60_000);
    if (patchHead) {
      await withTempDir(async (dir) => {
        await writeFile(join(dir, 'head'), patchHead);
        await virsh(uri, `vol-upload --pool ${POOL} ${q(name)} ${q(join(dir, 'head'))} --offset 0 --length ${patchHead.length}`);
      });
    }
    await virsh(uri, `pool-refresh ${POOL}`);
  } catch (err) {
    await deleteVolume(uri, name).catch(() => {});
    throw err;
  }
  const v = await getVolume(uri, name);
  if (!v) throw new LibvirtError(`volume ${name} vanished right after its upload`);
  return v;
}

export async function deleteVolume(uri: string, name: string): Promise<boolean> {
  try {
    await virsh(uri, `vol-delete --pool ${POOL} ${q(name)}`);
    return true;
  } catch (err) {
    if (err instanceof LibvirtError && NOT_FOUND.test(err.message)) return false;
    throw err;
  }
}

export async function resizeVolume(uri: string, name: string, capacityBytes: number): Promise<void> {
  await virsh(uri, `vol-resize --pool ${POOL} ${q(name)} ${capacityBytes}`);
}

/**
 * Small JSON documents kept next to the layers (host/records.ts says which). Replaced by
 * delete + upload; host/session.ts runs writes of one record one at a time.
 */
export async function replaceRecord(uri: string, name: string, text: string): Promise<void> {
  await withTempDir(async (dir) => {
    const file = join(dir, 'record.json');
    await writeFile(file, text);
    await deleteVolume(uri, name);
    await uploadVolume(uri, name, file);
  });
}

export async function readRecord<T>(uri: string, name: string): Promise<T | null> {
  return withTempDir(async (dir) => {
    const file = join(dir, 'record.json');
    try {
      await virsh(uri, `vol-download --pool ${POOL} ${q(name)} ${q(file)}`);
    } catch (err) {
      if (err instanceof LibvirtError && NOT_FOUND.test(err.message)) return null;
      throw err;
    }
    try {
      return JSON.parse(await readFile(file, 'utf8')) as T;
    } catch {
      // Cut off between creating the volume and writing it (a crash, a power cut): no record.
      return null;
    }
  });
}

export async function withXmlFile<T>(xml: string, use: (file: string) => Promise<T>): Promise<T> {
  return withTempDir(async (dir) => {
    const file = join(dir, 'def.xml');
    await writeFile(file, xml);
    return use(file);
  });
}
