// Layers shared by content (bases, kernels): named by checksum, installed once per server,
// and complete only once their record is written. storm_appliance and `storm fetch --server`
// install them the same way, so one finds what the other left.
import type { Logger } from '../protocol/log.ts';
import { installLayer } from '../drivers/layers.ts';
import { deleteVolume, getVolume, readRecord, writeRecord, type Volume } from '../drivers/volumes.ts';

export const baseVolumeName = (name: string, sha256: string) => `base-${name}-${sha256.slice(0, 12)}`;

/** Written after a shared layer's upload completes; a layer without it is a leftover. */
export const completionRecord = (volume: string) => `${volume}.json`;

/**
 * Returns the volume, installing it from `localPath()` unless a complete one is there. A
 * volume without its record is what an interrupted upload left (libvirtd or the host went
 * down): it is replaced.
 */
export async function installSharedLayer(uri: string, volume: string, sha256: string, localPath: () => Promise<string>, log: Logger): Promise<{ vol: Volume; created: boolean }> {
  const existing = await getVolume(uri, volume);
  if (existing && (await readRecord(uri, completionRecord(volume)))) return { vol: existing, created: false };
  if (existing) {
    log.warn('replacing an incomplete layer left by an interrupted install', { volume });
    await deleteVolume(uri, volume);
  }
  const vol = await installLayer(uri, volume, await localPath(), null);
  await writeRecord(uri, completionRecord(volume), { sha256 });
  return { vol, created: true };
}
