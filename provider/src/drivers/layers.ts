// Installs one image as a layer volume: fetch and verify it, upload it through libvirt, and
// point an overlay at the volume of the layer below it.
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../contract.ts';
import { fetchImage, formatProgressLine, type ImageSource } from './images/fetch.ts';
import { isQcow2, readQcow2Header, rewriteBackingFile, QCOW2_HEADER_PROBE_BYTES } from './qcow2.ts';
import { uploadVolume, type Volume } from './volumes.ts';

export class LayerFormatError extends Error {}

async function readHead(path: string, bytes: number): Promise<Uint8Array> {
  const file = await open(path, 'r');
  try {
    const buffer = new Uint8Array(bytes);
    const { bytesRead } = await file.read(buffer, 0, bytes, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await file.close();
  }
}

/**
 * Fetches into the local cache (`cacheRoot`/images, else the default), logging progress:
 * Terraform itself shows only elapsed time.
 */
export async function fetchLogged(source: ImageSource, label: string, log: Logger, signal: AbortSignal, cacheRoot: string | null): Promise<{ path: string; size: number }> {
  let last = 0;
  const fetched = await fetchImage(source, {
    signal,
    cacheDir: cacheRoot ? join(cacheRoot, 'images') : undefined,
    onProgress: (p) => {
      if (Date.now() - last < 2000) return;
      last = Date.now();
      log.info(formatProgressLine(p, label));
    },
  });
  log.info(`${label}: ${fetched.fromCache ? 'from cache' : 'downloaded'} (${fetched.size} bytes, sha256 verified)`);
  return fetched;
}

/**
 * `below` null: a base layer (raw, or qcow2 without a backing file). Otherwise the image must
 * be a qcow2 overlay; its backing reference is rewritten to `below`'s volume in the pool.
 */
export async function installLayer(uri: string, volume: string, localPath: string, below: Volume | null): Promise<Volume> {
  const head = await readHead(localPath, QCOW2_HEADER_PROBE_BYTES);
  if (!below) {
    if (isQcow2(head) && readQcow2Header(head).backingFile) {
      throw new LayerFormatError(`the base image has a backing file (${readQcow2Header(head).backingFile}); a base layer must stand alone`);
    }
    return uploadVolume(uri, volume, localPath);
  }
  if (!isQcow2(head)) throw new LayerFormatError('the image is not qcow2; a layer above the base must be a qcow2 overlay (qemu-img convert -O qcow2 -B <layer below>)');
  const header = readQcow2Header(head);
  if (!header.backingFile) throw new LayerFormatError('the image is a qcow2 without a backing file; a layer above the base must be an overlay on the layer below it');
  const cluster = head.subarray(0, header.clusterSize);
  const patched = rewriteBackingFile(cluster, below.path, below.format === 'raw' ? 'raw' : 'qcow2');
  return uploadVolume(uri, volume, localPath, patched);
}
