// Outages that leave a blade half-working, without fault injection: a network that is defined
// but no longer runs, the leftover of a network create cut off before its state was written, and
// a BMC that stops answering while its blade runs on. Each must show up in `terraform plan` as
// something apply can fix, never block the resources it does not concern.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { bladeServerHcl, startLab, type Blade, type Lab } from '../lib/lab.ts';
import { localApplianceHcl, makeTestLayers, type TestLayers } from '../lib/images.ts';
import { TerraformDir, resources, virsh } from '../lib/terraform.ts';

// Blades share the machine's kernel, so these addresses must be free on the host as well.
const CIDR = '192.168.233.0/24';

let lab: Lab;
let blade: Blade;
let layers: TestLayers;
const tf = new TerraformDir();

function stackHcl({ server = '', network = '' } = {}): string {
  return `${bladeServerHcl(blade, server)}
resource "storm_network" "lan" {
  server = storm_appliance_server.blade1.id
  name   = "lan"
  cidr   = "${CIDR}"
${network}
}

${localApplianceHcl('mail', 'storm_appliance_server.blade1.id', { name: 'mail', version: '1.0', baseName: 'testos', base: layers.base, image: layers.appliance })}
resource "storm_deployment" "corp" {
  appliance = storm_appliance.mail.id
  name      = "corp"
}

resource "storm_instance" "mx" {
  name        = "mx"
  deployments = [storm_deployment.corp.id]
  memory_mib  = 64
  state       = "shutoff"
  network     = storm_network.lan.name
}
`;
}

async function netInfo(name: string): Promise<{ active: boolean; autostart: boolean; uuid: string; bridge: string }> {
  const r = await virsh(blade.libvirtUri, 'net-info', name);
  assert.equal(r.exitCode, 0, r.output);
  const field = (f: string) => new RegExp(`^${f}:\\s+(\\S+)`, 'm').exec(r.stdout)?.[1] ?? '';
  return { active: field('Active') === 'yes', autostart: field('Autostart') === 'yes', uuid: field('UUID'), bridge: field('Bridge') };
}

/** Defines a network storm did not make (its own bridge name) on the blade, with CIDR's addresses. */
async function defineForeign(name: string, bridge: string): Promise<void> {
  const file = join(tf.dir, `${name}.xml`);
  writeFileSync(file, `<network><name>${name}</name><bridge name='${bridge}' stp='off'/><ip address='192.168.233.1' netmask='255.255.255.0'/></network>`);
  const r = await virsh(blade.libvirtUri, 'net-define', file);
  assert.equal(r.exitCode, 0, r.output);
}

async function removeNetwork(name: string): Promise<void> {
  await virsh(blade.libvirtUri, 'net-destroy', name);
  await virsh(blade.libvirtUri, 'net-undefine', name);
}

before(async () => {
  lab = await startLab({ blades: 1, initialPower: 'off' });
  blade = lab.blades[0]!;
  layers = makeTestLayers();
  tf.write(stackHcl());
  await tf.init();
});

after(async () => {
  // The networks go before the lab: a blade's power cut would leave their bridges in the
  // machine's kernel, which the blades share.
  await lab.startBmc(blade).catch(() => undefined);
  tf.write(stackHcl());
  await tf.destroy();
  for (const name of ['squatter', 'lan']) await removeNetwork(name);
  tf.remove();
  layers.remove();
  await lab.stop();
});

describe('storm_network: a stopped network is drift, an interrupted create is adopted', () => {
  test('apply creates the network running and autostarted', async () => {
    const r = await tf.apply();
    assert.equal(r.exitCode, 0, r.output);
    const net = resources(await tf.state()).find((x) => x.type === 'storm_network')!;
    assert.equal(net.values.active, true);
    const info = await netInfo('lan');
    assert.equal(info.active, true);
    assert.equal(info.autostart, true);
    assert.equal(info.bridge, net.values.bridge);
    assert.equal((await tf.plan()).exitCode, 0);
  });

  test('a network stopped out of band plans active = false -> true, and apply starts it', async () => {
    assert.equal((await virsh(blade.libvirtUri, 'net-destroy', 'lan')).exitCode, 0);
    const plan = await tf.plan();
    assert.equal(plan.exitCode, 2, plan.output);
    assert.match(plan.stdout, /storm_network\.lan will be updated in-place/);
    assert.match(plan.stdout, /~ active\s+= false -> true/);
    assert.match(plan.stdout, /0 to add, 1 to change, 0 to destroy/);
    const r = await tf.apply();
    assert.equal(r.exitCode, 0, r.output);
    assert.equal((await netInfo('lan')).active, true);
    assert.equal((await tf.plan()).exitCode, 0, 'converged');
  });

  test('active = false stops it and turns autostart off; a host record added meanwhile reaches it when it runs again', async () => {
    tf.write(stackHcl({ network: '  active = false\n  host {\n    hostname = "relay"\n    ip       = "192.168.233.7"\n  }' }));
    const r = await tf.apply();
    assert.equal(r.exitCode, 0, r.output);
    const stopped = await netInfo('lan');
    assert.equal(stopped.active, false);
    assert.equal(stopped.autostart, false);
    assert.equal((await tf.plan()).exitCode, 0, 'a stopped network that should be stopped is no drift');

    tf.write(stackHcl({ network: '  host {\n    hostname = "relay"\n    ip       = "192.168.233.7"\n  }' }));
    const back = await tf.apply();
    assert.equal(back.exitCode, 0, back.output);
    const running = await netInfo('lan');
    assert.equal(running.active, true);
    assert.equal(running.autostart, true);
    assert.match((await virsh(blade.libvirtUri, 'net-dumpxml', 'lan')).stdout, /<hostname>relay<\/hostname>/);
    tf.write(stackHcl());
    assert.equal((await tf.apply()).exitCode, 0);
  });

  test('a start refused because another network holds the addresses names the server and the fix', async () => {
    assert.equal((await virsh(blade.libvirtUri, 'net-destroy', 'lan')).exitCode, 0);
    await defineForeign('squatter', 'stormtest-sq');
    try {
      assert.equal((await virsh(blade.libvirtUri, 'net-start', 'squatter')).exitCode, 0);
      const r = await tf.apply();
      assert.equal(r.exitCode, 1, r.output);
      assert.match(r.stderr, /The network collides with another one/);
      // Terraform wraps the detail's lines.
      assert.match(r.stderr, /server\s+"blade1"\s+says:/);
      assert.match(r.stderr, /already\s+in\s+use\s+by\s+interface\s+stormtest-sq/);
      assert.match(r.stderr, /Choose\s+another\s+cidr,\s+or\s+stop\s+the\s+network\s+that\s+holds\s+them/);
      assert.match(r.stderr, /with storm_network\.lan/);
      assert.equal((await netInfo('lan')).active, false, 'still defined, still stopped');
    } finally {
      await removeNetwork('squatter');
    }
    const r = await tf.apply();
    assert.equal(r.exitCode, 0, r.output);
    assert.equal((await netInfo('lan')).active, true);
  });

  test('the leftover of an interrupted create (storm\'s bridge, defined, never started) is adopted', async () => {
    // What a provider killed between net-define and net-start leaves: the network defined and
    // stopped, and no state for it.
    const before = await netInfo('lan');
    assert.equal((await tf.run(['state', 'rm', 'storm_network.lan'])).exitCode, 0);
    assert.equal((await virsh(blade.libvirtUri, 'net-destroy', 'lan')).exitCode, 0);
    assert.equal((await virsh(blade.libvirtUri, 'net-autostart', 'lan', '--disable')).exitCode, 0);
    const plan = await tf.plan();
    assert.match(plan.stdout, /storm_network\.lan will be created/);
    const r = await tf.apply();
    assert.equal(r.exitCode, 0, r.output);
    const adopted = await netInfo('lan');
    assert.deepEqual(adopted, { ...before, active: true, autostart: true }, 'the same network (UUID, bridge), running and autostarted');
    assert.equal((await tf.plan()).exitCode, 0, 'converged');
  });

  test('a network of that name that storm did not make is refused and left alone', async () => {
    assert.equal((await tf.run(['state', 'rm', 'storm_network.lan'])).exitCode, 0);
    await removeNetwork('lan');
    await defineForeign('lan', 'stormtest-ln');
    const foreign = await netInfo('lan');
    try {
      const r = await tf.apply();
      assert.equal(r.exitCode, 1, r.output);
      assert.match(r.stderr, /The network already exists/);
      assert.match(r.stderr, /storm\s+did\s+not\s+make/);
      assert.deepEqual(await netInfo('lan'), foreign, 'untouched');
    } finally {
      await removeNetwork('lan');
    }
    const r = await tf.apply();
    assert.equal(r.exitCode, 0, r.output);
    assert.equal((await netInfo('lan')).active, true);
  });
});

describe('a blade whose BMC does not answer', () => {
  test('everything on it plans with a warning, and what needs only libvirt applies', async () => {
    await lab.stopBmc(blade);
    try {
      assert.equal((await virsh(blade.libvirtUri, 'net-destroy', 'lan')).exitCode, 0);
      const plan = await tf.plan();
      assert.equal(plan.exitCode, 2, plan.output);
      assert.match(plan.output, /Warning: Could not read the power of server "blade1": its BMC at\s+127\.0\.0\.1:\d+ does\s+not\s+answer/);
      assert.match(plan.output, /a\s+change\s+of\s+power\s+cannot\s+be\s+planned\s+reliably/);
      assert.match(plan.stdout, /~ active\s+= false -> true/);
      assert.match(plan.stdout, /0 to add, 1 to change, 0 to destroy/, 'the server keeps its power; appliance, deployment and instance read as usual');
      const r = await tf.apply();
      assert.equal(r.exitCode, 0, r.output);
      assert.equal((await netInfo('lan')).active, true);
      const again = await tf.plan();
      assert.equal(again.exitCode, 0, again.output);
      const server = resources(await tf.state()).find((x) => x.type === 'storm_appliance_server')!;
      assert.equal(server.values.power, 'on');
      assert.equal(server.values.hostname, 'blade1', 'host facts read through libvirt');
    } finally {
      await lab.startBmc(blade);
    }
  });

  test('an apply that changes power fails clearly, and the blade keeps running', async () => {
    await lab.stopBmc(blade);
    try {
      tf.write(stackHcl({ server: '  power = "off"' }));
      const r = await tf.apply();
      assert.equal(r.exitCode, 1, r.output);
      assert.match(r.stderr, /The BMC did not answer/);
      assert.match(r.stderr, /ipmi\.address/);
      assert.equal((await virsh(blade.libvirtUri, 'hostname')).stdout.trim(), 'blade1');
    } finally {
      tf.write(stackHcl());
      await lab.startBmc(blade);
    }
    assert.equal(await lab.power(blade), 'on');
    const plan = await tf.plan();
    assert.equal(plan.exitCode, 0, plan.output);
    assert.doesNotMatch(plan.output, /Could not read the power/);
  });
});
