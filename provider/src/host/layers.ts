// Layers shared by content (bases, kernels, initrds): named by checksum, installed once per
// server, and complete only once their record is written. storm_appliance and
// `storm fetch --server` install them the same way, so one finds what the other left.
import type { Logger } from '../contract.ts';
import { installLayer } from '../drivers/layers.ts';
import { deleteVolume, getVolume, type Volume } from '../drivers/volumes.ts';
import { layerRecordName } from './names.ts';
import { readLayerRecord, writeLayerRecord, type SharedLayerRecord } from './records.ts';
import type { HostSession } from './session.ts';

export interface SharedLayer {
  vol: Volume;
  /** This call installed it (a failed create may remove it again); false: it was there, or another caller's. */
  created: boolean;
}

/**
 * Returns the volume, installing it from `localPath()` unless a complete one is there. A
 * volume without its record is what an interrupted upload left (libvirtd or the host went
 * down): it is replaced. Concurrent callers in one session wait for one install.
 */
export async function installSharedLayer(session: HostSession, uri: string, volume: string, sha256: string, localPath: () => Promise<string>, log: Logger): Promise<SharedLayer> {
  const { value, joined } = await session.once(`layer\u0000${uri}\u0000${volume}`, async (): Promise<SharedLayer> => {
    const existing = await getVolume(uri, volume);
    if (existing && (await readLayerRecord<SharedLayerRecord>(uri, volume))) return { vol: existing, created: false };
    if (existing) {
      log.warn('replacing an incomplete layer left by an interrupted install', { volume });
      await deleteVolume(uri, volume);
    }
    const vol = await installLayer(uri, volume, await localPath(), null);
    await writeLayerRecord(session, uri, volume, { sha256 });
    return { vol, created: true };
  });
  return joined ? { vol: value.vol, created: false } : value;
}

/** Removes a shared layer and its record. */
export async function removeSharedLayer(session: HostSession, uri: string, volume: string): Promise<void> {
  await deleteVolume(uri, volume);
  await session.deleteRecord(uri, layerRecordName(volume));
}
