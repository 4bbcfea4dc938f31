// The test lab itself: BMCs answer over IPMI lanplus and their chassis power really switches a
// per-blade libvirtd whose state survives a power cycle and is invisible to the other blades.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ipmitool, startLab } from '../lib/lab.ts';
import type { Lab } from '../lib/lab.ts';

function sh(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 30_000, encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const virsh = (uri: string, ...args: string[]) => sh('virsh', ['-q', '-c', uri, ...args]);

// Timings land in the TAP output as diagnostics ("# blade1 power off: 608 ms").
async function timed<T>(t: { diagnostic(message: string): void }, label: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const result = await fn();
  t.diagnostic(`${label}: ${Math.round(performance.now() - t0)} ms`);
  return result;
}

let lab: Lab;

before(async () => {
  lab = await timed({ diagnostic: (m) => console.log(m) }, 'startLab (2 BMCs)', () => startLab({ blades: 2, initialPower: 'off' }));
});

after(async () => {
  await lab?.stop();
});

test('both blades start powered off and their libvirt refuses connections', async () => {
  assert.equal(lab.blades.length, 2);
  const base = Number(process.env.STORM_LAB_ADDRESS_BASE ?? 10);
  assert.deepEqual(lab.blades.map((b) => b.libvirtUri), [`qemu+tcp://127.0.0.${base + 1}/system`, `qemu+tcp://127.0.0.${base + 2}/system`]);
  for (const blade of lab.blades) {
    assert.equal(await lab.power(blade), 'off');
    const r = await virsh(blade.libvirtUri, 'uri');
    assert.notEqual(r.code, 0, `${blade.name} libvirt answered while off`);
    assert.match(r.stderr, /Connection refused|unable to connect/i);
  }
});

test('power on through the BMC brings up a real libvirt host', async (t) => {
  const [blade1] = lab.blades;
  await timed(t, 'blade1 power on -> libvirt answers (1st)', () => lab.setPower(blade1!, true));
  assert.equal(await lab.power(blade1!), 'on');
  const out = await ipmitool(blade1!.bmc, 'chassis', 'power', 'status');
  assert.match(out, /Chassis Power is on/);
  const info = await virsh(blade1!.libvirtUri, 'nodeinfo');
  assert.equal(info.code, 0, info.stderr);
  assert.match(info.stdout, /CPU\(s\):\s+\d+/);
  const host = await virsh(blade1!.libvirtUri, 'hostname');
  assert.equal(host.stdout.trim(), 'blade1');
});

test('a storage pool defined on blade 1 survives a power cycle and stays on blade 1', async (t) => {
  const [blade1, blade2] = lab.blades;
  const uri = blade1!.libvirtUri;
  let r = await virsh(uri, 'pool-define-as', 'labpool', 'dir', '--target', '/var/lib/libvirt/images/labpool');
  assert.equal(r.code, 0, r.stderr);
  r = await virsh(uri, 'pool-build', 'labpool');
  assert.equal(r.code, 0, r.stderr);
  // The blade's /var/lib/libvirt is its own directory in the lab, like its disk.
  assert.ok(existsSync(join(lab.dir, 'blade1', 'lib', 'images', 'labpool')));
  assert.ok(!existsSync('/var/lib/libvirt/images/labpool'), 'pool dir leaked into the host');

  await timed(t, 'blade1 power off', () => lab.setPower(blade1!, false));
  assert.equal(await lab.power(blade1!), 'off');
  assert.notEqual((await virsh(uri, 'uri')).code, 0);

  await timed(t, 'blade1 power on -> libvirt answers (2nd)', () => lab.setPower(blade1!, true));
  r = await virsh(uri, 'pool-list', '--all', '--name');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.split('\n').map((s) => s.trim()).filter(Boolean), ['labpool']);

  await timed(t, 'blade2 power on -> libvirt answers (1st)', () => lab.setPower(blade2!, true));
  r = await virsh(blade2!.libvirtUri, 'pool-list', '--all', '--name');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), '', 'blade2 sees blade1 pool');
  await lab.setPower(blade2!, false);
  assert.equal(await lab.power(blade2!), 'off');
});

test('a wrong IPMI password is an ipmitool error', async () => {
  const bmc = { ...lab.blades[0]!.bmc, password: 'wrong' };
  await assert.rejects(ipmitool(bmc, 'chassis', 'power', 'status'), (e: Error) => {
    assert.match(e.message, /Unable to establish IPMI v2 \/ RMCP\+ session/);
    return true;
  });
});

test('a stopped BMC does not answer while its blade runs on; started again it answers', async (t) => {
  const [blade1] = lab.blades;
  assert.equal(await lab.power(blade1!), 'on');
  await timed(t, 'blade1 stopBmc', () => lab.stopBmc(blade1!));
  await assert.rejects(ipmitool(blade1!.bmc, '-N', '1', '-R', '1', 'chassis', 'power', 'status'));
  const host = await virsh(blade1!.libvirtUri, 'hostname');
  assert.equal(host.stdout.trim(), 'blade1', 'libvirt on the blade still answers');
  await timed(t, 'blade1 startBmc -> BMC answers', () => lab.startBmc(blade1!));
  assert.equal(await lab.power(blade1!), 'on', 'the blade kept its power');
  assert.equal((await virsh(blade1!.libvirtUri, 'hostname')).code, 0);
});

test('stop() leaves no BMC or blade process behind and can be called twice', async (t) => {
  // Even with a frozen BMC, which holds SIGTERM until it runs again.
  await lab.stopBmc(lab.blades[0]!);
  const before = await sh('pgrep', ['-f', lab.dir]);
  assert.equal(before.code, 0, 'expected lab processes while running');
  await timed(t, 'lab.stop()', () => lab.stop());
  await lab.stop();
  const left = await sh('pgrep', ['-af', lab.dir]);
  assert.equal(left.code, 1, `left behind:\n${left.stdout}`);
  for (const name of ['ipmi_sim', 'libvirtd']) {
    const r = await sh('pgrep', ['-af', name]);
    const ours = r.stdout.split('\n').filter((l) => l.includes(lab.dir));
    assert.deepEqual(ours, [], `${name} left behind`);
  }
  for (const blade of lab.blades) assert.notEqual((await virsh(blade.libvirtUri, 'uri')).code, 0);
  if (process.env.STORM_KEEP_LAB !== '1') assert.ok(!existsSync(lab.dir), 'lab dir not removed');
});
