// A BMC that stops answering while storm powers its server on: the blade comes up anyway, so
// the run either rides it out or fails naming the server and the fix; once the BMC answers
// again, the next apply converges and nothing is left behind.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { firstError, inventory, leaked, recordFault, type Inventory } from '../lib/faults.ts';
import { bladeServerHcl, startLab, type Blade, type Lab } from '../lib/lab.ts';
import { TerraformDir } from '../lib/terraform.ts';

let lab: Lab;
let blade: Blade;
const tf = new TerraformDir();

before(async () => {
  lab = await startLab({ blades: 1, initialPower: 'off' });
  blade = lab.blades[0]!;
  tf.write(bladeServerHcl(blade, '  power = "on"\n  accelerator = "tcg"'));
  await tf.init();
});

after(async () => {
  await lab.startBmc(blade).catch(() => {});
  await tf.destroy();
  tf.remove();
  await lab.stop();
});

test('the BMC stops answering during power-on: the run rides it out or names the server; converges once it answers', async () => {
  // Before: a blade that was never on holds nothing storm made.
  await lab.setPower(blade, true);
  const baseline: Inventory = await inventory(blade.libvirtUri);
  await lab.setPower(blade, false);

  const run = tf.start(['apply', '-auto-approve', '-no-color']);
  // The moment the chassis powers on (the BMC started the blade), the BMC freezes.
  const powered = join(lab.dir, blade.name, 'power.pid');
  const deadline = Date.now() + 120_000;
  while (!existsSync(powered)) {
    assert.ok(Date.now() < deadline, 'storm never powered the blade on');
    await sleep(20);
  }
  await lab.stopBmc(blade);
  const interrupted = await run;
  const output = interrupted.all ?? '';
  const said = interrupted.exitCode === 0 ? '' : firstError(output);
  const namedServer = interrupted.exitCode === 0 || said.includes(`"${blade.name}"`);
  await lab.startBmc(blade);
  const converged = (await tf.apply()).exitCode === 0 && (await tf.plan()).exitCode === 0;
  // With the server in state, a plan while the BMC is silent still works, with a warning.
  await lab.stopBmc(blade);
  const planWhileDown = await tf.plan();
  await lab.startBmc(blade);
  assert.equal((await tf.destroy()).exitCode, 0);
  if ((await lab.power(blade)) === 'off') await lab.setPower(blade, true);
  const leaks = leaked(baseline, await inventory(blade.libvirtUri));
  recordFault({ fault: 'BMC stops answering during power-on', said, namedServer, converged, leaks, overCommitted: '' });
  assert.equal(planWhileDown.exitCode, 0, `a plan with the BMC down must not fail, nor plan a change:\n${planWhileDown.output}`);
  assert.match(planWhileDown.output, /Warning/);
  assert.ok(namedServer, output);
  assert.ok(converged);
});
