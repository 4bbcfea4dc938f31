// What storm calls the things it makes on a server, in one place: the layer volumes in the
// `storm` pool (`base-` ← `app-` ← `dep-` ← `inst-`), instance seeds, kernels, and the JSON
// records kept next to them. Anything storm finds by one of these names is storm's.
export type LayerKind = 'base' | 'app' | 'dep' | 'inst';

export { POOL } from '../drivers/volumes.ts';

/** Shared by content: every appliance on a server naming the same base and checksum uses one. */
export const baseVolumeName = (name: string, sha256: string) => `base-${name}-${sha256.slice(0, 12)}`;
export const applianceVolumeName = (name: string, version: string) => `app-${name}-${version}`;
export const deploymentVolumeName = (name: string) => `dep-${name}`;
export const instanceVolumeName = (name: string) => `inst-${name}`;
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
