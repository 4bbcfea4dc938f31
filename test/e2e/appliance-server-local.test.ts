// storm_appliance_server against the real libvirtd on this machine (qemu:///system), driven
// by the real terraform binary: create → no-op plan → drift → import → destroy, and bad input.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { TerraformDir, resources, virsh } from '../lib/terraform.ts';

const URI = 'qemu:///system';
const suffix = randomBytes(3).toString('hex');
const pool = 'storm';
const poolPath = `/var/tmp/storm-e2e-${suffix}`;

function serverHcl(extra = ''): string {
  return `
resource "storm_appliance_server" "local" {
  name        = "local"
  libvirt_uri = "${URI}"
  pool_path   = "${poolPath}"
${extra}
}
`;
}

describe('storm_appliance_server on this machine', () => {
  const tf = new TerraformDir();

  before(async () => {
    tf.write(serverHcl());
    await tf.init();
  });

  after(async () => {
    await tf.destroy();
    await virsh(URI, 'pool-destroy', pool);
    await virsh(URI, 'pool-undefine', pool);
    tf.remove();
  });

  test('apply creates the server and its storage pool, and reads the host capacity', async () => {
    const r = await tf.apply();
    assert.equal(r.exitCode, 0, r.output);
    const [server] = resources(await tf.state());
    assert.ok(server);
    assert.equal(server.values.id, `local@${URI}`, 'the reference other storm resources take');
    assert.ok(Number(server.values.cpus) >= 1, 'cpus read from libvirt');
    assert.ok(Number(server.values.memory_mib) > 1024, 'memory read from libvirt');
    assert.equal(server.values.available_memory_mib, Number(server.values.memory_mib) - 128, 'the paper\'s 128 MiB reserve');
    assert.match(String(server.values.hypervisor), /^QEMU /);
    const info = await virsh(URI, 'pool-info', pool);
    assert.match(info.stdout, /State:\s+running/);
    assert.ok(existsSync(poolPath), 'pool directory built');
  });

  test('a second plan shows no changes', async () => {
    const r = await tf.plan();
    assert.equal(r.exitCode, 0, r.output);
    assert.match(r.stdout, /No changes/);
  });

  test('TF_LOG=INFO shows storm\'s own log lines at their level', async () => {
    const r = await tf.run(['plan', '-no-color'], { TF_LOG: 'INFO' });
    assert.equal(r.exitCode, 0, r.output);
    assert.match(r.stderr, /\[INFO\]\s+provider\.terraform-provider-storm_v[\d.]+: configured: .*@module=storm/, "at INFO, not demoted to DEBUG (key order varies)");
  });

  test('changing the reserve is an in-place update that recomputes available memory', async () => {
    tf.write(serverHcl('  reserved_memory_mib = 512'));
    const plan = await tf.plan();
    assert.equal(plan.exitCode, 2, plan.output);
    assert.match(plan.stdout, /~ reserved_memory_mib\s+= 128 -> 512/);
    assert.match(plan.stdout, /1 to change, 0 to destroy/);
    assert.equal((await tf.apply()).exitCode, 0);
    const [server] = resources(await tf.state());
    assert.equal(server!.values.available_memory_mib, Number(server!.values.memory_mib) - 512);
  });

  test('a pool deleted out of band shows as drift, and apply recreates it', async () => {
    await virsh(URI, 'pool-destroy', pool);
    await virsh(URI, 'pool-undefine', pool);
    const plan = await tf.plan();
    assert.equal(plan.exitCode, 2, plan.output);
    assert.match(plan.stdout, /storm_appliance_server\.local will be created/);
    assert.equal((await tf.apply()).exitCode, 0);
    assert.equal((await virsh(URI, 'pool-info', pool)).exitCode, 0);
  });

  test('changing the pool directory is a replacement, said in the plan', async () => {
    tf.write(serverHcl('  reserved_memory_mib = 512').replace(`pool_path   = "${poolPath}"`, `pool_path   = "${poolPath}-b"`));
    const plan = await tf.plan();
    assert.equal(plan.exitCode, 2, plan.output);
    assert.match(plan.stdout, /must be replaced/);
    assert.match(plan.stdout, /pool_path\s+= "[^"]+" -> "[^"]+" # forces replacement/);
    tf.write(serverHcl('  reserved_memory_mib = 512'));
  });

  test('import by NAME@URI reads the same server back', async () => {
    const other = new TerraformDir();
    try {
      other.write(serverHcl('  reserved_memory_mib = 512'));
      await other.init();
      const r = await other.run(['import', '-no-color', 'storm_appliance_server.local', `local@${URI}`]);
      assert.equal(r.exitCode, 0, r.output);
      const [server] = resources(await other.state());
      assert.equal(server!.values.name, 'local');
      assert.equal(server!.values.libvirt_uri, URI);
      assert.ok(Number(server!.values.cpus) >= 1);
    } finally {
      other.remove();
    }
  });

  test('destroy removes the empty pool and leaves nothing behind', async () => {
    const r = await tf.destroy();
    assert.equal(r.exitCode, 0, r.output);
    assert.notEqual((await virsh(URI, 'pool-info', pool)).exitCode, 0, 'pool gone');
    assert.equal(existsSync(poolPath), false, 'pool directory removed');
  });
});

describe('bad input gets a clear diagnostic and creates nothing', () => {
  const tf = new TerraformDir();
  before(async () => {
    tf.write('');
    await tf.init();
  });
  after(() => tf.remove());

  async function failingApply(hcl: string): Promise<string> {
    tf.write(hcl);
    const r = await tf.apply();
    assert.equal(r.exitCode, 1, r.output);
    assert.equal(resources(await tf.state()).length, 0, 'nothing in state');
    return r.stderr;
  }

  test('a malformed libvirt URI names the attribute and the forms that work', async () => {
    const err = await failingApply(`resource "storm_appliance_server" "a" {\n  name = "a"\n  libvirt_uri = "qemu:/system"\n}\n`);
    assert.match(err, /Invalid libvirt_uri/);
    assert.match(err, /qemu:\/\/\/system/);
    assert.match(err, /libvirt_uri\s+= "qemu:\/system"/, 'Terraform points at the line');
  });

  test('an unreachable host names libvirt_uri and leaves no state', async () => {
    const err = await failingApply(`resource "storm_appliance_server" "a" {\n  name = "a"\n  libvirt_uri = "qemu+tcp://127.0.0.99/system"\n}\n`);
    assert.match(err, /Cannot reach libvirt on the server/);
    assert.match(err, /127\.0\.0\.99/);
    assert.match(err, /libvirt_uri/);
  });

  test('an unknown attribute is refused by Terraform with the schema', async () => {
    const err = await failingApply(`resource "storm_appliance_server" "a" {\n  name = "a"\n  libvirt_uri = "qemu:///system"\n  cpu_count = 4\n}\n`);
    assert.match(err, /Unsupported argument/);
    assert.match(err, /cpu_count/);
  });

  test('power = "off" without an ipmi block says what to add', async () => {
    const err = await failingApply(`resource "storm_appliance_server" "a" {\n  name = "a"\n  libvirt_uri = "qemu:///system"\n  power = "off"\n}\n`);
    assert.match(err, /power = "off" needs an ipmi block/);
    assert.match(err, /Add ipmi \{ address,\s+username,\s+password \}/);
  });

  test('a bad name and a relative pool path are both reported at once', async () => {
    const err = await failingApply(`resource "storm_appliance_server" "a" {\n  name = "Blade_1"\n  libvirt_uri = "qemu:///system"\n  pool_path = "pools/storm"\n}\n`);
    assert.match(err, /Invalid name/);
    assert.match(err, /Invalid pool_path/);
    assert.match(err, /absolute path/);
  });
});
