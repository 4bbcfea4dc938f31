// Instance-layer creation: a qcow2 overlay on the appliance (what storm does) against a full
// copy of it (vol-clone), for appliances of several sizes filled with real data, all through
// libvirt's storage API on qemu:///system.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { HostSession } from '../provider/src/host/session.ts';
import { cloneVolume, createOverlay, deleteVolume, getVolume, uploadVolume } from '../provider/src/drivers/volumes.ts';

const URI = 'qemu:///system';
const SIZES_MIB = (process.env.BENCH_LAYER_SIZES ?? '64,256,1024,4096').split(',').map(Number);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

export async function benchLayers(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'storm-bench-layers-'));
  const session = new HostSession();
  await session.ensurePool(URI, '/var/tmp/storm-bench-layers');
  console.log('');
  console.log('instance layer from an appliance     overlay (median of 9)   full copy (median of 3)   copy/overlay');
  try {
    for (const mib of SIZES_MIB) {
      const file = join(dir, `app-${mib}.qcow2`);
      execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', file, `${mib}M`]);
      // qemu-io caps one request below 2 GiB: fill the image 1 GiB at a time.
      const writes = Array.from({ length: Math.ceil(mib / 1024) }, (_, i) => ['-c', `write -P 0x5a ${i * 1024}M ${Math.min(1024, mib - i * 1024)}M`]).flat();
      execFileSync('qemu-io', [...writes, file], { stdio: 'ignore' });
      const app = await uploadVolume(URI, `bench-app-${mib}`, file);
      execFileSync('sync'); // the upload's dirty pages would otherwise land on the first samples
      const overlays: number[] = [];
      for (let i = 0; i < 9; i++) {
        overlays.push(await time(() => createOverlay(URI, `bench-inst-${mib}-${i}`, app)));
        await deleteVolume(URI, `bench-inst-${mib}-${i}`);
      }
      const copies: number[] = [];
      for (let i = 0; i < 3; i++) {
        copies.push(await time(() => cloneVolume(URI, `bench-copy-${mib}-${i}`, app.name)));
        const copy = await getVolume(URI, `bench-copy-${mib}-${i}`);
        if (!copy || copy.allocation < mib * 1024 * 1024 * 0.9) throw new Error(`the copy of ${mib} MiB is not a full copy`);
        await deleteVolume(URI, `bench-copy-${mib}-${i}`);
      }
      const o = median(overlays);
      const c = median(copies);
      console.log(`  ${`${mib} MiB appliance`.padEnd(34)} ${`${o.toFixed(0)} ms`.padStart(10)}              ${`${c.toFixed(0)} ms`.padStart(10)}            ${(c / o).toFixed(1)}×`);
      await deleteVolume(URI, app.name);
    }
    console.log('  (overlay time should stay flat as the appliance grows; the copy grows with it)');
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await session.removePoolIfEmpty(URI, []);
  }
}
