// Small layered images for tests, made with real qemu-img/qemu-io: a base, an appliance
// overlay and a deployment overlay, each writing its own pattern so a chain can be checked.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ImageFile {
  path: string;
  sha256: string;
}

export interface TestLayers {
  dir: string;
  base: ImageFile;
  appliance: ImageFile;
  deployment: ImageFile;
  remove(): void;
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function file(path: string): ImageFile {
  return { path, sha256: sha256File(path) };
}

export function makeTestLayers(sizeMib = 64): TestLayers {
  const dir = mkdtempSync(join(tmpdir(), 'storm-layers-'));
  const run = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { cwd: dir, stdio: 'pipe' });
  run('qemu-img', 'create', '-q', '-f', 'qcow2', 'base.qcow2', `${sizeMib}M`);
  run('qemu-io', '-c', 'write -P 0x11 0 64k', 'base.qcow2');
  run('qemu-img', 'create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', 'appliance.qcow2');
  run('qemu-io', '-c', 'write -P 0x22 1M 64k', 'appliance.qcow2');
  run('qemu-img', 'create', '-q', '-f', 'qcow2', '-b', 'appliance.qcow2', '-F', 'qcow2', 'deployment.qcow2');
  run('qemu-io', '-c', 'write -P 0x33 2M 64k', 'deployment.qcow2');
  return {
    dir,
    base: file(join(dir, 'base.qcow2')),
    appliance: file(join(dir, 'appliance.qcow2')),
    deployment: file(join(dir, 'deployment.qcow2')),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A qcow2 base of `sizeMib` whose every byte is written: its upload takes real time and space. */
export function makeFilledImage(dir: string, fileName: string, sizeMib: number): ImageFile {
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', fileName, `${sizeMib}M`], { cwd: dir });
  execFileSync('qemu-io', ['-c', `write -P 0x5a 0 ${sizeMib}M`, fileName], { cwd: dir, stdio: 'ignore' });
  return file(join(dir, fileName));
}

/** HCL of a `storm_appliance` labelled `label` from local image files, on `server` (an HCL expression). */
export function localApplianceHcl(label: string, server: string, o: { name: string; version: string; baseName: string; base: ImageFile; image: ImageFile }): string {
  return `
resource "storm_appliance" "${label}" {
  server  = ${server}
  name    = "${o.name}"
  version = "${o.version}"
  base {
    name   = "${o.baseName}"
    url    = "${o.base.path}"
    sha256 = "${o.base.sha256}"
  }
  image {
    url    = "${o.image.path}"
    sha256 = "${o.image.sha256}"
  }
}
`;
}
