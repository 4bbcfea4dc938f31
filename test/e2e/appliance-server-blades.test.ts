// Two appliance servers on simulated hardware (test/lib/lab.ts): each blade is a real libvirtd
// that its ipmi_sim BMC starts on power-on and kills on power-off. storm powers them through
// real ipmitool, waits for libvirt, and sees out-of-band power changes as drift.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { bladeServerHcl, startLab, type Blade, type Lab } from '../lib/lab.ts';
import { TerraformDir, resources, virsh } from '../lib/terraform.ts';

const serverHcl = bladeServerHcl;

let lab: Lab;
let blade1: Blade;
let blade2: Blade;

before(async () => {
  lab = await startLab({ blades: 2, initialPower: 'off' });
  [blade1, blade2] = lab.blades as [Blade, Blade];
});

after(async () => {
  await lab.stop();
});

describe('storm_appliance_server with BMCs', () => {
  const tf = new TerraformDir();
  before(async () => {
    tf.write(serverHcl(blade1) + serverHcl(blade2));
    await tf.init();
  });
  after(async () => {
    await tf.destroy();
    tf.remove();
  });

  test('apply powers both blades on through IPMI and creates the storm pool on each', async () => {
    assert.equal(await lab.power(blade1), 'off');
    const r = await tf.apply();
    assert.equal(r.exitCode, 0, r.output);
    for (const blade of [blade1, blade2]) {
      assert.equal(await lab.power(blade), 'on');
      assert.match((await virsh(blade.libvirtUri, 'pool-info', 'storm')).stdout, /State:\s+running/);
    }
    const byName = new Map(resources(await tf.state()).map((s) => [s.name, s.values]));
    assert.equal(byName.get('blade1')!.hostname, 'blade1', 'capacity read from the blade\'s own libvirt');
    assert.equal(byName.get('blade2')!.power, 'on');
    assert.ok(Number(byName.get('blade2')!.cpus) >= 1);
  });

  test('the plan reads well and then shows no changes', async () => {
    const r = await tf.plan();
    assert.equal(r.exitCode, 0, r.output);
    assert.doesNotMatch(r.stdout, /password/, 'the BMC password never shows');
  });

  test('a changed BMC password is tried before it is stored: a wrong one changes nothing', async () => {
    tf.write(serverHcl(blade1, '', 'not-the-password') + serverHcl(blade2));
    const r = await tf.apply();
    assert.equal(r.exitCode, 1, r.output);
    assert.match(r.stderr, /The BMC refused storm's credentials/);
    assert.match(r.stderr, /ipmi\.password/);
    tf.write(serverHcl(blade1) + serverHcl(blade2));
    const plan = await tf.plan();
    assert.equal(plan.exitCode, 0, `the state kept the working password, so the plan is clean:\n${plan.output}`);
  });

  test('a blade powered off out of band shows as drift, and apply powers it on again', async () => {
    await lab.setPower(blade2, false);
    const plan = await tf.plan();
    assert.equal(plan.exitCode, 2, plan.output);
    assert.match(plan.stdout, /storm_appliance_server\.blade2 will be updated in-place/);
    assert.match(plan.stdout, /~ power\s+= "off" -> "on"/);
    assert.match(plan.stdout, /1 to change/);
    const r = await tf.apply();
    assert.equal(r.exitCode, 0, r.output);
    assert.equal(await lab.power(blade2), 'on');
  });

  test('power = "off" powers the blade off and the next plan is clean', async () => {
    tf.write(serverHcl(blade1) + serverHcl(blade2, '  power       = "off"'));
    const plan = await tf.plan();
    assert.match(plan.stdout, /~ power\s+= "on" -> "off"/);
    const r = await tf.apply();
    assert.equal(r.exitCode, 0, r.output);
    assert.equal(await lab.power(blade2), 'off');
    assert.notEqual((await virsh(blade2.libvirtUri, 'uri')).exitCode, 0, 'libvirt on the blade is gone with its power');
    assert.equal((await tf.plan()).exitCode, 0);
  });

  test('powering off is refused while the blade runs a domain', async () => {
    const xml = `<domain type='qemu'><name>busy</name><memory unit='MiB'>32</memory><os><type arch='x86_64'>hvm</type></os></domain>`;
    const file = `${tf.dir}/busy.xml`;
    writeFileSync(file, xml);
    assert.equal((await virsh(blade1.libvirtUri, 'create', file)).exitCode, 0);
    try {
      tf.write(serverHcl(blade1, '  power       = "off"') + serverHcl(blade2, '  power       = "off"'));
      const r = await tf.apply();
      assert.equal(r.exitCode, 1, r.output);
      assert.match(r.stderr, /still runs domains/);
      assert.equal(await lab.power(blade1), 'on', 'nothing was cut');
    } finally {
      await virsh(blade1.libvirtUri, 'destroy', 'busy');
      tf.write(serverHcl(blade1) + serverHcl(blade2, '  power       = "off"'));
    }
  });

  test('import by NAME@URI, then the plan only adds the ipmi block from the configuration', async () => {
    const other = new TerraformDir();
    try {
      other.write(serverHcl(blade1));
      await other.init();
      const r = await other.run(['import', '-no-color', 'storm_appliance_server.blade1', `blade1@${blade1.libvirtUri}`]);
      assert.equal(r.exitCode, 0, r.output);
      const [s] = resources(await other.state());
      assert.equal(s!.values.hostname, 'blade1');
      const plan = await other.plan();
      assert.equal(plan.exitCode, 2, plan.output);
      assert.match(plan.stdout, /will be updated in-place/);
      assert.match(plan.stdout, /\+ ipmi \{/);
      assert.doesNotMatch(plan.stdout, /must be replaced/);
    } finally {
      other.remove();
    }
  });
});

describe('bad BMC input gets a diagnostic and changes nothing', () => {
  const tf = new TerraformDir();
  before(async () => {
    tf.write('');
    await tf.init();
  });
  after(() => tf.remove());

  test('a wrong IPMI password names ipmi.password', async () => {
    await lab.setPower(blade2, false);
    tf.write(serverHcl(blade2, '', 'not-the-password'));
    const r = await tf.apply();
    assert.equal(r.exitCode, 1, r.output);
    assert.match(r.stderr, /The BMC refused storm's credentials/);
    assert.match(r.stderr, /ipmi\.password/);
    assert.equal(resources(await tf.state()).length, 0);
    assert.equal(await lab.power(blade2), 'off', 'power untouched');
  });

  test('an unreachable BMC names ipmi.address', async () => {
    tf.write(serverHcl({ ...blade2, bmc: { ...blade2.bmc, port: 9599 } }));
    const r = await tf.apply();
    assert.equal(r.exitCode, 1, r.output);
    assert.match(r.stderr, /The BMC did not answer/);
    assert.match(r.stderr, /ipmi\.address/);
  });

  test('a host that never answers after power-on times out clearly and is powered off again', async () => {
    tf.write(serverHcl({ ...blade2, libvirtUri: 'qemu+tcp://127.0.0.99/system' }, '  boot_timeout_seconds = 3'));
    const r = await tf.apply();
    assert.equal(r.exitCode, 1, r.output);
    assert.match(r.stderr, /The server did not come up/);
    assert.match(r.stderr, /within 3 s/);
    assert.match(r.output, /Powered server "blade2" off again/);
    assert.equal(resources(await tf.state()).length, 0);
    assert.equal(await lab.power(blade2), 'off');
  });
});
