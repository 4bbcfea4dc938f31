// Installs one image as a layer volume: fetch and verify it, unpack the system disk when the
// image is an archive, upload it through libvirt, and point an overlay at the volume of the
// layer below it.
import { mkdir, open, stat, statfs } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Logger } from '../contract.ts';
import { archiveKind, extractFile } from './images/archive.ts';
import { defaultCacheDir, fetchImage, formatProgressLine, type ImageSource } from './images/fetch.ts';
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
export async function fetchLogged(source: ImageSource, label: string, log: Logger, signal: AbortSignal, cacheRoot: string | null): Promise<{ path: string; size: number; sha256: string }> {
  let last = 0;
  const fetched = await fetchImage(source, {
    signal,
    cacheDir: imagesDir(cacheRoot),
    onProgress: (p) => {
      if (Date.now() - last < 2000) return;
      last = Date.now();
      log.info(formatProgressLine(p, label));
    },
  });
  log.info(`${label}: ${fetched.fromCache ? 'from cache' : 'downloaded'} (${fetched.size} bytes, sha256 verified)`);
  return fetched;
}

/** `webserv.tgz`: how people name an archive, from its URL or path. */
function archiveLabel(url: string): string {
  try {
    return basename(decodeURIComponent(new URL(url, 'file:///').pathname)) || url;
  } catch {
    return basename(url) || url;
  }
}

const imagesDir = (cacheRoot: string | null) => (cacheRoot ? join(cacheRoot, 'images') : defaultCacheDir());

/** The file in a fetched image that becomes the layer, and what bounds its size. */
export interface SystemDisk {
  /** The name of the system disk's file inside an archive (the definition's `file=`); unused for a plain image. */
  file: string | null;
  /** Free bytes where the layer goes (the server's pool): a larger file is refused before it is written. Asked only for an archive. */
  room: () => Promise<{ bytes: number; where: string }>;
}

/**
 * The file to upload as the layer: the fetched image itself, or, when it is an archive
 * (known by its first bytes, never its name), the system disk's file unpacked from it. The
 * archive was verified against its sha256 before this reads a byte of it. Unpacked files are
 * cached beside the download (`<sha256>.unpacked/<file>`), so installing one appliance on
 * many servers unpacks it once.
 */
export async function layerFile(fetched: { path: string; sha256: string }, source: ImageSource, disk: SystemDisk, log: Logger, signal: AbortSignal, cacheRoot: string | null): Promise<string> {
  const kind = archiveKind(await readHead(fetched.path, 512));
  if (!kind) return fetched.path;
  const label = archiveLabel(source.url);
  if (!disk.file) {
    throw new LayerFormatError(`${label} is an archive (${kind}); say which file in it is the system disk (image.file, from the definition's <disk type="system" file="…"/>: data.storm_appliance's system_disk_file)`);
  }
  const dir = join(imagesDir(cacheRoot), `${fetched.sha256}.unpacked`);
  const out = join(dir, disk.file);
  const cached = await stat(out).catch(() => null);
  if (cached?.isFile()) {
    log.info(`${label}: ${disk.file} already unpacked (${cached.size} bytes)`);
    return out;
  }
  await mkdir(dir, { recursive: true });
  // The local disk bounds it too: an archive is small, what it holds need not be.
  const local = await statfs(dir);
  const localFree = Number(local.bavail) * Number(local.bsize);
  const room = await disk.room();
  const limit = localFree < room.bytes ? { bytes: localFree, why: `the free space in ${dir}` } : { bytes: room.bytes, why: room.where };
  const started = Date.now();
  const size = await extractFile(fetched.path, kind, disk.file, out, { label, maxBytes: limit.bytes, maxBytesWhy: limit.why, signal });
  log.info(`${label}: unpacked ${disk.file} (${size} bytes) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return out;
}

/**
 * `below` null: a layer with nothing below it, a base or a single-layer appliance (raw, or
 * qcow2 without a backing file). Otherwise the image must be a qcow2 overlay; its backing
 * reference is rewritten to `below`'s volume in the pool.
 */
export async function installLayer(uri: string, volume: string, localPath: string, below: Volume | null): Promise<Volume> {
  const head = await readHead(localPath, QCOW2_HEADER_PROBE_BYTES);
  if (!below) {
    if (isQcow2(head) && readQcow2Header(head).backingFile) {
      // A base, or a single-layer appliance's whole image: nothing in the pool is below it.
      throw new LayerFormatError(`the image has a backing file (${readQcow2Header(head).backingFile}); with no layer below it (a base, or an appliance without one) it must stand alone (qemu-img convert -O qcow2 flattens it)`);
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
