// The image a publisher keeps beside a definition (appliances/webserv/webserv.tgz next to
// appliances/webserv/appliance.xml): its checksum, size and format, read once by streaming it.
// The channel site and `storm validate` both ask this, so the sha256 the build derives is the one
// validate shows. Files only: what the bytes mean is ./publish.ts's to judge.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import type { ImageFormat, LocalImage } from './publish.ts';

/** The folders a definition file is in below `root`, outermost first: what a name it leaves out is derived from. */
export function definitionFolders(root: string, file: string): string[] {
  return path.relative(root, path.dirname(file)).split(path.sep).filter(Boolean);
}

const QCOW2_MAGIC = Buffer.from([0x51, 0x46, 0x49, 0xfb]);

/** What the first bytes say the image is: qcow2, a gzip (storm reads it as a .tgz) or anything else, raw. */
export function formatFromMagic(head: Uint8Array): ImageFormat {
  if (head.length >= 4 && Buffer.from(head.subarray(0, 4)).equals(QCOW2_MAGIC)) return 'qcow2';
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'tgz';
  return 'raw';
}

/**
 * The image file `name` in the definition's folder, or null when there is none. A symbolic link
 * is not followed (a channel folder must not publish what lies outside it).
 */
export async function localImageBeside(definitionFile: string, name: string, shown: (file: string) => string = (f) => f): Promise<LocalImage | null> {
  const file = path.join(path.dirname(definitionFile), name);
  const st = await lstat(file).catch(() => null);
  if (!st?.isFile()) return null;
  const hash = createHash('sha256');
  let head = Buffer.alloc(0);
  for await (const chunk of createReadStream(file)) {
    const b = chunk as Buffer;
    if (head.length < 4) head = Buffer.concat([head, b.subarray(0, 4 - head.length)]);
    hash.update(b);
  }
  return { file: shown(file), path: file, sha256: hash.digest('hex'), bytes: st.size, format: formatFromMagic(head) };
}
