// Faults in what a server depends on: its pool's disk fills up during an upload, and the
// channel goes down between plan and apply. Each run fails naming the server (or the channel)
// and the fix, leaves nothing half-made, and the next apply converges once the cause is gone.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { applianceFromChannelHcl, publishTestChannel, type TestChannel } from '../lib/channel.ts';
import { firstError, inventory, leaked, recordFault } from '../lib/faults.ts';
import { bladeServerHcl, startLab, type Blade, type Lab } from '../lib/lab.ts';
import { localApplianceHcl, makeFilledImage, makeTestLayers, type TestLayers } from '../lib/images.ts';
import { TerraformDir } from '../lib/terraform.ts';

let lab: Lab;
let blade: Blade;
let layers: TestLayers;
let images: string;
/** A small disk for the pool: mounted before the blade powers on, so the blade sees it. */
let smallDisk: string;
const scratch: TerraformDir[] = [];

before(async () => {
  smallDisk = mkdtempSync('/var/tmp/storm-faults-disk-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=96m', 'storm-faults-disk', smallDisk]);
  lab = await startLab({ blades: 1, initialPower: 'on' });
  blade = lab.blades[0]!;
  layers = makeTestLayers();
  images = mkdtempSync(join(tmpdir(), 'storm-faults-img-'));
});

after(async () => {
  for (const tf of scratch) {
    await tf.destroy();
    tf.remove();
  }
  await lab?.stop();
  execFileSync('umount', ['-l', smallDisk]);
  rmSync(smallDisk, { recursive: true, force: true });
  rmSync(images, { recursive: true, force: true });
  layers?.remove();
});

test('the pool\'s disk fills up during an upload: refused naming the server and the fix; converges once there is room', async () => {
  // 64 MiB of real data in the base; a filler leaves less than that free.
  const big = makeFilledImage(images, 'big.qcow2', 64);
  const tf = new TerraformDir();
  scratch.push(tf);
  tf.write(`${bladeServerHcl(blade, `  pool_path = "${smallDisk}/pool"\n  accelerator = "tcg"`)}
${localApplianceHcl('big', 'storm_appliance_server.blade1.id', { name: 'big', version: '1', baseName: 'bigos', base: big, image: layers.appliance })}`);
  await tf.init();
  assert.equal((await tf.apply('-target=storm_appliance_server.blade1')).exitCode, 0);
  const baseline = await inventory(blade.libvirtUri);
  writeFileSync(join(smallDisk, 'filler'), Buffer.alloc(60 * 1024 * 1024, 1));
  const failed = await tf.apply();
  assert.equal(failed.exitCode, 1, failed.output);
  const said = firstError(failed.output);
  const namedServer = said.includes(`"${blade.name}"`);
  const halfMade = leaked(baseline, await inventory(blade.libvirtUri));
  rmSync(join(smallDisk, 'filler'));
  const converged = (await tf.apply()).exitCode === 0 && (await tf.plan()).exitCode === 0;
  assert.equal((await tf.destroy()).exitCode, 0);
  const leaks = [...halfMade.map((l) => `${l} (after the failed run)`), ...leaked(baseline, await inventory(blade.libvirtUri))];
  recordFault({ fault: 'pool disk full during a base upload', said, namedServer, converged, leaks, overCommitted: '' });
  assert.match(failed.output, /space/i);
  assert.ok(namedServer, failed.output);
  assert.ok(converged);
  assert.deepEqual(leaks, []);
});

test('the channel goes down between plan and apply: refused naming the image and the fix; converges once it is back', async () => {
  const channel: TestChannel = await publishTestChannel([{ name: 'mail', version: '1.0', label: 'Mail', base: { name: 'chanos', ...layers.base }, image: layers.appliance }]);
  const cache = mkdtempSync(join(tmpdir(), 'storm-faults-cache-'));
  const tf = new TerraformDir();
  scratch.push(tf);
  const env = { STORM_CACHE_DIR: cache };
  tf.write(`
provider "storm" {
  trusted_keys = ["${channel.publicKeyLine}"]
}
${bladeServerHcl(blade, '  accelerator = "tcg"')}
${applianceFromChannelHcl(channel.feedUrl, 'mail', 'storm_appliance_server.blade1.id')}
`);
  try {
    await tf.init();
    assert.equal((await tf.run(['apply', '-auto-approve', '-no-color', '-target=storm_appliance_server.blade1'], env)).exitCode, 0);
    const baseline = await inventory(blade.libvirtUri);
    const plan = await tf.run(['plan', '-no-color', '-out=tfplan'], env);
    assert.equal(plan.exitCode, 0, plan.output);
    await channel.close();
    const failed = await tf.run(['apply', '-no-color', 'tfplan'], env);
    assert.equal(failed.exitCode, 1, failed.output);
    const said = firstError(failed.output);
    const namedServer = said.includes(`"${blade.name}"`) && said.includes(new URL(channel.feedUrl).host);
    const halfMade = leaked(baseline, await inventory(blade.libvirtUri));
    await channel.reopen();
    const converged = (await tf.run(['apply', '-auto-approve', '-no-color'], env)).exitCode === 0 && (await tf.run(['plan', '-no-color', '-detailed-exitcode'], env)).exitCode === 0;
    assert.equal((await tf.run(['destroy', '-auto-approve', '-no-color'], env)).exitCode, 0);
    const leaks = [...halfMade.map((l) => `${l} (after the failed run)`), ...leaked(baseline, await inventory(blade.libvirtUri))];
    recordFault({ fault: 'channel down between plan and apply', said, namedServer, converged, leaks, overCommitted: '' });
    assert.ok(namedServer, failed.output);
    assert.ok(converged);
    assert.deepEqual(leaks, []);
  } finally {
    await channel.remove();
    rmSync(cache, { recursive: true, force: true });
  }
});
