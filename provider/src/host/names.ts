// What storm calls the things it makes on a server, in one place: the layer volumes in the
// `storm` pool (`base-` ← `app-` ← `dep-` ← `inst-`), instances' swap and user disks, instance
// seeds, kernels, and the JSON records kept next to them. Anything storm finds by one of these
// names is storm's.
export type LayerKind = 'base' | 'app' | 'dep' | 'inst';

export { POOL } from '../drivers/volumes.ts';

/** Shared by content: every appliance on a server naming the same base and checksum uses one. */
export const baseVolumeName = (name: string, sha256: string) => `base-${name}-${sha256.slice(0, 12)}`;
export const applianceVolumeName = (name: string, version: string) => `app-${name}-${version}`;
export const deploymentVolumeName = (name: string) => `dep-${name}`;
export const instanceVolumeName = (name: string) => `inst-${name}`;

/** The empty disks an appliance gives each instance beside its system disk (the paper's swap and user disks). */
export type DataDiskType = 'swap' | 'user';
/**
 * An instance's swap or user disk: `user-mx1_hda2`. Instance names have no "_", so the prefix
 * `user-mx1_` finds every user disk of mx1 and no other instance's; the type in the name lets
 * a destroy that keeps user disks tell them apart without any record.
 */
export const dataDiskVolumeName = (instance: string, type: DataDiskType, disk: string) => `${dataDiskPrefix(instance, type)}${disk}`;
export const dataDiskPrefix = (instance: string, type: DataDiskType) => `${type}-${instance}_`;
/** The disk a data-disk volume is, from its name; null for any other volume. */
export function parseDataDiskVolumeName(volume: string): { instance: string; type: DataDiskType; disk: string } | null {
  const m = /^(swap|user)-([a-z0-9-]+)_([a-z][a-z0-9_-]*)$/.exec(volume);
  return m ? { type: m[1] as DataDiskType, instance: m[2]!, disk: m[3]! } : null;
}
export const seedVolumeName = (instance: string) => `seed-${instance}.iso`;
/** Kernels and initrds for direct boot, shared by content like bases. */
export const bootVolumeName = (kind: 'kernel' | 'initrd', sha256: string) => `${kind}-${sha256.slice(0, 12)}`;

/** The server's own record: what placement keeps free, how its instances run. */
export const SERVER_RECORD = 'storm-server.json';
/**
 * A layer's record, written when the layer is complete (a shared layer's checksum, an
 * appliance's hardware and boot, a deployment's files): a layer without one is a leftover of
 * an interrupted install.
 */
export const layerRecordName = (volume: string) => `${volume}.json`;

/** Is this pool volume one of storm's records (not a layer)? */
export const isRecordName = (volume: string) => volume.endsWith('.json');
