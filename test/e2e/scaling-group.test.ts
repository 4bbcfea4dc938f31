// storm_scaling_group through Terraform against a real `storm controller run` on a lab blade:
// the group is registered with the admin token and grows to its minimum; a plan after the
// controller made members shows no change (Terraform owns the policy, the controller the count);
// a policy change is an in-place update; it imports by name; bad values are refused at plan
// with the attribute named; a wrong token or CA is a clear error; destroy drains every member.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { bladeServerHcl, startLab, type Blade, type Lab } from '../lib/lab.ts';
import { localApplianceHcl, makeTestLayers, type TestLayers } from '../lib/images.ts';
import { REPO_DIR, TerraformDir, resources, virsh } from '../lib/terraform.ts';

const STORM = join(REPO_DIR, 'build', 'bin', 'storm');
const work = mkdtempSync(join(tmpdir(), 'storm-group-'));
const ctl = join(work, 'ctl');
const tf = new TerraformDir();
let lab: Lab;
let blade: Blade;
let layers: TestLayers;
let controller: ChildProcess;
let url = '';
const log: string[] = [];

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

async function members(): Promise<string[]> {
  const r = await virsh(blade.libvirtUri, 'list', '--all', '--name');
  return r.stdout.split('\n').map((l) => l.trim()).filter((n) => n.startsWith('web-')).sort();
}

async function until(what: string, ms: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; controller log:\n${log.slice(-20).join('')}`);
    await sleep(300);
  }
}

function hcl(group: string, provider = `controller {
    url    = "${url}"
    token  = trimspace(file("${join(ctl, 'admin-token')}"))
    ca_pem = file("${join(ctl, 'ca.pem')}")
  }`): string {
  return `
provider "storm" {
  ${provider}
}
${bladeServerHcl(blade, '  accelerator = "tcg"')}
${localApplianceHcl('web', 'storm_appliance_server.blade1.id', { name: 'web', version: '1', baseName: 'webos', base: layers.base, image: layers.appliance })}
resource "storm_deployment" "web" {
  appliance = storm_appliance.web.id
  name      = "web"
}
resource "storm_network" "lan" {
  server = storm_appliance_server.blade1.id
  name   = "lan"
  cidr   = "192.168.242.0/24"
}
${group}`;
}

const groupHcl = (extra = '') => `
resource "storm_scaling_group" "web" {
  name        = "web"
  deployments = [storm_deployment.web.id]
  network     = storm_network.lan.name
  memory_mib  = 64
  min         = 2
  max         = 4
  file {
    path    = "/etc/motd"
    content = "I am $\${member}, number $\${index}\\n"
  }
${extra}}
`;

before(async () => {
  lab = await startLab({ blades: 1, initialPower: 'on' });
  blade = lab.blades[0]!;
  layers = makeTestLayers();
  execFileSync(STORM, ['controller', 'init', '--dir', ctl, '--host', '127.0.0.1']);
  const listen = `127.0.0.1:${await freePort()}`;
  url = `https://${listen}`;
  controller = spawn(STORM, ['controller', 'run', '--dir', ctl, '--listen', listen, '--interval', '1'], { stdio: ['ignore', 'ignore', 'pipe'] });
  controller.stderr!.on('data', (d: Buffer) => log.push(d.toString()));
  process.once('exit', () => controller.kill('SIGKILL'));
  await until('the controller to listen', 15_000, async () => log.join('').includes('controller started'));
  tf.write(hcl(''));
  await tf.init();
  const r = await tf.apply();
  assert.equal(r.exitCode, 0, r.output);
});

after(async () => {
  await tf.destroy();
  controller?.kill('SIGTERM');
  tf.remove();
  layers?.remove();
  await lab?.stop();
  rmSync(work, { recursive: true, force: true });
});

test('bad values are refused at plan, naming the attribute', async () => {
  tf.write(hcl(groupHcl('  guest_cpu_low = 0.95\n  scale_in_target = 0.8\n').replace('min         = 2', 'min         = 5')));
  const r = await tf.plan();
  assert.notEqual(r.exitCode, 0);
  assert.match(r.stderr, /min is above max/);
  assert.match(r.stderr, /guest_cpu_low is not below guest_cpu_high/);
  assert.match(r.stderr, /scale_in_target is not below scale_out_target/);
  assert.equal(log.join('').includes('group web registered'), false, 'nothing reached the controller');
});

test('apply registers the group; the controller grows it to min; a plan afterwards shows no change', async () => {
  tf.write(hcl(groupHcl()));
  const r = await tf.apply();
  assert.equal(r.exitCode, 0, r.output);
  await until('two members running', 60_000, async () => (await members()).length === 2);
  assert.deepEqual(await members(), ['web-0', 'web-1']);
  const plan = await tf.plan('-detailed-exitcode');
  assert.equal(plan.exitCode, 0, plan.output);
  await tf.apply('-refresh-only');
  const state = resources(await tf.state()).find((x) => x.type === 'storm_scaling_group')!;
  assert.equal(state.values.desired, 2);
  assert.deepEqual(state.values.members, ['web-0', 'web-1']);
});

test('a policy change is an update in place, and the controller follows it', async () => {
  tf.write(hcl(groupHcl().replace('min         = 2', 'min         = 3')));
  const plan = await tf.plan();
  assert.match(plan.stdout, /~ min\s+= 2 -> 3/);
  assert.match(plan.stdout, /0 to add, 1 to change, 0 to destroy/);
  const r = await tf.apply();
  assert.equal(r.exitCode, 0, r.output);
  await until('three members', 60_000, async () => (await members()).length === 3);
  // A domain exists a moment before the controller has written its member down.
  await until('the controller to hold three', 30_000, async () => {
    await tf.apply('-refresh-only');
    return resources(await tf.state()).find((x) => x.type === 'storm_scaling_group')?.values.desired === 3;
  });
});

test('import by name brings the group into another state', async () => {
  const other = new TerraformDir();
  try {
    other.write(hcl(groupHcl().replace('min         = 2', 'min         = 3')));
    await other.init();
    const r = await other.run(['import', 'storm_scaling_group.web', 'web']);
    assert.equal(r.exitCode, 0, r.output);
    const g = resources(await other.state()).find((x) => x.type === 'storm_scaling_group')!;
    assert.equal(g.values.min, 3, JSON.stringify(g.values));
    assert.equal(g.values.desired, 3, JSON.stringify(g.values));
    assert.equal((await other.run(['import', 'storm_scaling_group.web', 'nosuch'])).exitCode, 1);
  } finally {
    other.remove();
  }
});

test('a wrong token or another CA is a clear error', async () => {
  tf.write(hcl(groupHcl(), `controller {
    url    = "${url}"
    token  = "not-the-admin-token"
    ca_pem = file("${join(ctl, 'ca.pem')}")
  }`));
  const bad = await tf.plan();
  assert.notEqual(bad.exitCode, 0);
  assert.match(bad.stderr, /refused the token/);
  execFileSync(STORM, ['controller', 'init', '--dir', join(work, 'other'), '--host', '127.0.0.1']);
  tf.write(hcl(groupHcl(), `controller {
    url    = "${url}"
    token  = trimspace(file("${join(ctl, 'admin-token')}"))
    ca_pem = file("${join(work, 'other', 'ca.pem')}")
  }`));
  const wrongCa = await tf.plan();
  assert.notEqual(wrongCa.exitCode, 0);
  assert.match(wrongCa.stderr, /certificate/);
  assert.match(wrongCa.stderr, /ca_pem/);
});

test('destroying the group drains it: every member removed, the group gone', async () => {
  tf.write(hcl(''));
  const r = await tf.apply();
  assert.equal(r.exitCode, 0, r.output);
  assert.deepEqual(await members(), []);
  assert.match(log.join(''), /drain web: destroyed in Terraform → removed web-0, web-1, web-2/);
  const vols = (await virsh(blade.libvirtUri, 'vol-list', 'storm')).stdout;
  assert.doesNotMatch(vols, /\b(inst|seed)-web-\d/, 'no member volume left');
});
