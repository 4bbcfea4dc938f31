// Faults on two lab blades while terraform creates instances: two applies at once, terraform
// killed outright, libvirtd crashing. After each: the next apply converges, nothing leaks, no
// server holds more than it may give, and what the user read named the server.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { bladeServerHcl, startLab, type Blade, type Lab } from '../lib/lab.ts';
import { firstError, inventory, leaked, recordFault, type Inventory } from '../lib/faults.ts';
import { localApplianceHcl, makeTestLayers, type TestLayers } from '../lib/images.ts';
import { TerraformDir, resources, virsh } from '../lib/terraform.ts';

let lab: Lab;
let layers: TestLayers;
const infra = new TerraformDir();
const scratch: TerraformDir[] = [];
const deployments: Record<string, string> = {};
/** Instances of this size: each blade is given room for exactly PER_BLADE of them. */
const INSTANCE_MIB = 2048;
const PER_BLADE = 4;
let baseline: Inventory[] = [];

async function nodeMemoryMib(blade: Blade): Promise<number> {
  const r = await virsh(blade.libvirtUri, 'nodeinfo');
  return Math.floor(Number(/Memory size:\s+(\d+) KiB/.exec(r.stdout)![1]) / 1024);
}

function instancesHcl(prefix: string, count: number, deps: string[], memoryMib = INSTANCE_MIB): string {
  return Array.from({ length: count }, (_, i) => `
resource "storm_instance" "${prefix}${i}" {
  name        = "${prefix}${i}"
  deployments = ${JSON.stringify(deps)}
  memory_mib  = ${memoryMib}
  state       = "shutoff"
}
`).join('');
}

function workspace(hcl: string): TerraformDir {
  const tf = new TerraformDir();
  tf.write(hcl);
  scratch.push(tf);
  return tf;
}

async function domainsNamed(prefix: string): Promise<string[]> {
  const all = await Promise.all(lab.blades.map(async (b) => (await virsh(b.libvirtUri, 'list', '--all', '--name')).stdout.split('\n').map((l) => l.trim()).filter((n) => n.startsWith(prefix))));
  return all.flat().sort();
}

/** Per blade: committed memory of storm's domains against what the blade may give. */
async function overCommitted(): Promise<string> {
  const out: string[] = [];
  for (const b of lab.blades) {
    const usable = PER_BLADE * INSTANCE_MIB + 100;
    const list = (await virsh(b.libvirtUri, 'list', '--all', '--name')).stdout.split('\n').map((l) => l.trim()).filter(Boolean);
    let committed = 0;
    for (const d of list) committed += Number(/Max memory:\s+(\d+) KiB/.exec((await virsh(b.libvirtUri, 'dominfo', d)).stdout)?.[1] ?? 0) / 1024;
    if (committed > usable) out.push(`${b.name}: ${committed} MiB of ${usable}`);
  }
  return out.join('; ');
}

async function inventories(): Promise<Inventory[]> {
  return Promise.all(lab.blades.map((b) => inventory(b.libvirtUri)));
}

async function leaksSinceBaseline(): Promise<string[]> {
  const now = await inventories();
  return now.flatMap((inv, i) => leaked(baseline[i]!, inv).map((l) => `${lab.blades[i]!.name}: ${l}`));
}

async function converges(tf: TerraformDir): Promise<boolean> {
  const r = await tf.apply();
  if (r.exitCode !== 0) return false;
  return (await tf.plan()).exitCode === 0;
}

before(async () => {
  lab = await startLab({ blades: 2, initialPower: 'on' });
  layers = makeTestLayers();
  const servers: string[] = [];
  for (const b of lab.blades) {
    // Room for PER_BLADE instances and 100 MiB: whatever the machine has, capacity is the same.
    const reserved = (await nodeMemoryMib(b)) - PER_BLADE * INSTANCE_MIB - 100;
    servers.push(bladeServerHcl(b, `  reserved_memory_mib = ${reserved}\n  accelerator = "tcg"`));
    servers.push(`${localApplianceHcl(`app_${b.name}`, `storm_appliance_server.${b.name}.id`, { name: 'faulty', version: '1', baseName: 'faultos', base: layers.base, image: layers.appliance })}
resource "storm_deployment" "dep_${b.name}" {
  appliance = storm_appliance.app_${b.name}.id
  name      = "faulty"
}
`);
  }
  infra.write(servers.join('\n'));
  await infra.init();
  const r = await infra.apply();
  assert.equal(r.exitCode, 0, r.output);
  for (const res of resources(await infra.state())) if (res.type === 'storm_deployment') deployments[res.name.replace('dep_', '')] = String(res.values.id);
  baseline = await inventories();
});

after(async () => {
  for (const tf of scratch) {
    await tf.destroy();
    tf.remove();
  }
  await infra.destroy();
  infra.remove();
  layers?.remove();
  await lab?.stop();
});

test('two applies at once: the servers fill to what they hold and no further; the rest is refused, naming them', async () => {
  const deps = [deployments.blade1!, deployments.blade2!];
  const one = workspace(instancesHcl('ca', 6, deps));
  const two = workspace(instancesHcl('cb', 6, deps));
  await Promise.all([one.init(), two.init()]);
  const [r1, r2] = await Promise.all([one.apply('-parallelism=6'), two.apply('-parallelism=6')]);
  const placed = await domainsNamed('c');
  const over = await overCommitted();
  const said = firstError(r1.exitCode !== 0 ? r1.output : r2.output);
  // Both full: 8 places for 12 instances.
  assert.equal(placed.length, 2 * PER_BLADE, `placed: ${placed.join(' ')}\n${r1.output}\n${r2.output}`);
  assert.equal(over, '');
  assert.match(said, /No server fits this instance/);
  const namedServer = said.includes('blade1') && said.includes('blade2');
  // The second workspace steps aside: the first then gets all six.
  assert.equal((await two.destroy()).exitCode, 0);
  const converged = await converges(one);
  assert.equal((await one.destroy()).exitCode, 0);
  const leaks = await leaksSinceBaseline();
  recordFault({ fault: 'two applies at once, 12 instances for 8 places', said, namedServer, converged, leaks, overCommitted: over });
  assert.ok(namedServer && converged);
  assert.deepEqual(leaks, []);
});

test('terraform killed (SIGKILL) mid-apply: the next apply adopts what it left, with no twin', async () => {
  const tf = workspace(instancesHcl('k', 6, [deployments.blade1!, deployments.blade2!], 256));
  await tf.init();
  const run = tf.start(['apply', '-auto-approve', '-no-color', '-parallelism=2']);
  const deadline = Date.now() + 120_000;
  while ((await domainsNamed('k')).length < 2) {
    assert.ok(Date.now() < deadline, 'no instance appeared within 120 s');
    await sleep(100);
  }
  run.kill('SIGKILL');
  await run;
  const atKill = await domainsNamed('k');
  // The orphaned provider notices and stops within about a second.
  await sleep(3000);
  const converged = await converges(tf);
  const names = await domainsNamed('k');
  assert.deepEqual(names, ['k0', 'k1', 'k2', 'k3', 'k4', 'k5'], `after the re-apply (${atKill.length} existed at the kill)`);
  assert.equal((await tf.destroy()).exitCode, 0);
  const leaks = await leaksSinceBaseline();
  recordFault({ fault: `terraform SIGKILLed mid-apply (${atKill.length} of 6 domains made)`, said: '', namedServer: null, converged, leaks, overCommitted: await overCommitted() });
  assert.ok(converged);
  assert.deepEqual(leaks, []);
});

test('libvirtd killed mid-apply: the run fails naming the server, or rides it out; the next converges', async () => {
  const blade = lab.blades[0]!;
  const tf = workspace(instancesHcl('d', 4, [deployments.blade1!], 256));
  await tf.init();
  const run = tf.start(['apply', '-auto-approve', '-no-color', '-parallelism=4']);
  const deadline = Date.now() + 120_000;
  while ((await domainsNamed('d')).length < 1) {
    assert.ok(Date.now() < deadline, 'no instance appeared within 120 s');
    await sleep(50);
  }
  await lab.killLibvirtd(blade);
  const interrupted = await run;
  const said = interrupted.exitCode === 0 ? '' : firstError(interrupted.all ?? '');
  const namedServer = interrupted.exitCode === 0 || said.includes(`"${blade.name}"`);
  const converged = await converges(tf);
  assert.deepEqual(await domainsNamed('d'), ['d0', 'd1', 'd2', 'd3']);
  assert.equal((await tf.destroy()).exitCode, 0);
  const leaks = await leaksSinceBaseline();
  recordFault({ fault: 'libvirtd SIGKILLed mid-apply (restarted like systemd does)', said, namedServer, converged, leaks, overCommitted: await overCommitted() });
  assert.ok(namedServer, interrupted.all);
  assert.ok(converged);
  assert.deepEqual(leaks, []);
});
