// Layered appliances on two simulated blades, without booting guests (instances stay shut
// off; test/boot boots them): base → appliance → deployment → instance as qcow2 chains made
// through libvirt's storage API, a base shared once per server, placement, bad input, drift,
// and destroy leaving nothing behind.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { after, before, describe, test } from 'node:test';
import { bladeServerHcl, startLab, type Blade, type Lab } from '../lib/lab.ts';
import { makeTestLayers, type TestLayers } from '../lib/images.ts';
import { REPO_DIR, TerraformDir, resources, virsh } from '../lib/terraform.ts';

let lab: Lab;
let layers: TestLayers;
/**
 * Instance memory chosen so that exactly one fits on each server: the host memory libvirt
 * reports on these VMs moves (ballooning), so it is read from the servers, not assumed.
 */
let M = 3000;
const tf = new TerraformDir();

function stackHcl(instances: string, extra = ''): string {
  const [b1, b2] = lab.blades as [Blade, Blade];
  return `${bladeServerHcl(b1)}${bladeServerHcl(b2)}
locals {
  servers = { blade1 = storm_appliance_server.blade1.id, blade2 = storm_appliance_server.blade2.id }
}

resource "storm_appliance" "mail" {
  for_each = local.servers
  server   = each.value
  name     = "mail"
  version  = "1.0"
  base {
    name   = "testos"
    url    = "${layers.base.path}"
    sha256 = "${layers.base.sha256}"
  }
  image {
    url    = "${layers.appliance.path}"
    sha256 = "${layers.appliance.sha256}"
  }
}

# A second appliance on the same base: the base layer must not be installed twice.
resource "storm_appliance" "web" {
  server  = storm_appliance_server.blade1.id
  name    = "web"
  version = "2.1"
  base {
    name   = "testos"
    url    = "${layers.base.path}"
    sha256 = "${layers.base.sha256}"
  }
  image {
    url    = "${layers.appliance.path}"
    sha256 = "${layers.appliance.sha256}"
  }
}

resource "storm_deployment" "corp" {
  for_each  = storm_appliance.mail
  appliance = each.value.id
  name      = "corp"
  image {
    url    = "${layers.deployment.path}"
    sha256 = "${layers.deployment.sha256}"
  }
  variables = { relay = "smtp.example.org" }
  file {
    path    = "/etc/mail/relay.conf"
    content = "relay $\${relay} for $\${site}\\n"
  }
}
${instances}
${extra}
`;
}

const instanceHcl = (name: string, memory: number, extra = '') => `
resource "storm_instance" "${name}" {
  name        = "${name}"
  deployments = [for d in storm_deployment.corp : d.id]
  memory_mib  = ${memory}
  state       = "shutoff"
  variables   = { site = "${name}" }
${extra}
}
`;

/** Import-verify: in a fresh directory holding only `hcl`, import `address` by `id`; the next plan must be empty. */
async function importVerify(hcl: string, address: string, id: string): Promise<void> {
  const other = new TerraformDir();
  try {
    other.write(hcl);
    await other.init();
    const r = await other.run(['import', '-no-color', address, id]);
    assert.equal(r.exitCode, 0, r.output);
    const plan = await other.plan();
    assert.equal(plan.exitCode, 0, plan.output);
  } finally {
    other.remove();
  }
}

async function volumes(blade: Blade): Promise<string[]> {
  const r = await virsh(blade.libvirtUri, 'vol-list', 'storm');
  return r.stdout.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter(Boolean).sort();
}

async function backingOf(blade: Blade, volume: string): Promise<string | null> {
  const xml = (await virsh(blade.libvirtUri, 'vol-dumpxml', '--pool', 'storm', volume)).stdout;
  return /<backingStore>\s*<path>([^<]+)<\/path>/.exec(xml)?.[1] ?? null;
}

before(async () => {
  lab = await startLab({ blades: 2, initialPower: 'off' });
  layers = makeTestLayers();
  tf.write(stackHcl(''));
  await tf.init();
});

after(async () => {
  await tf.destroy();
  if (process.env.STORM_TEST_TF_LOG !== '1') tf.remove();
  layers.remove();
  await lab.stop();
});

describe('layers', () => {
  let prefetchedInode = 0;

  test('storm fetch --server installs a base on a server ahead of apply, with its progress shown', async () => {
    const servers = await tf.run(['apply', '-auto-approve', '-no-color', '-target=storm_appliance_server.blade1', '-target=storm_appliance_server.blade2']);
    assert.equal(servers.exitCode, 0, servers.output);
    const blade1 = lab.blades[0]!;
    const id = `blade1@${blade1.libvirtUri}`;
    const r = await execa(join(REPO_DIR, 'build', 'bin', 'storm'), ['fetch', layers.base.path, '--sha256', layers.base.sha256, '--server', id, '--base', 'testos'], { reject: false, env: { STORM_CACHE_DIR: tf.dir } });
    assert.equal(r.exitCode, 0, r.stderr);
    const volume = `base-testos-${layers.base.sha256.slice(0, 12)}`;
    assert.equal(r.stdout.trim(), `${volume}@${id}`);
    assert.match(r.stderr, /installed on blade1 in [\d.]+ s/);
    prefetchedInode = statSync(join(lab.dir, 'blade1', 'lib', 'storm', volume)).ino;
    const again = await execa(join(REPO_DIR, 'build', 'bin', 'storm'), ['fetch', layers.base.path, '--sha256', layers.base.sha256, '--server', id, '--base', 'testos'], { reject: false, env: { STORM_CACHE_DIR: tf.dir } });
    assert.match(again.stderr, /already on blade1/);
  });

  test('appliances and deployments install as qcow2 chains; a base is installed once per server', async () => {
    const r = await tf.apply();
    assert.equal(r.exitCode, 0, r.output);
    const [b1, b2] = lab.blades as [Blade, Blade];
    const v1 = await volumes(b1);
    const bases = v1.filter((v) => v.startsWith('base-') && !v.endsWith('.json'));
    assert.deepEqual(bases, [`base-testos-${layers.base.sha256.slice(0, 12)}`], 'one base layer for two appliances');
    assert.equal(statSync(join(lab.dir, 'blade1', 'lib', 'storm', bases[0]!)).ino, prefetchedInode, 'apply used the pre-fetched base');
    assert.ok(v1.includes('app-mail-1.0') && v1.includes('app-web-2.1') && v1.includes('dep-corp'), v1.join(' '));
    assert.ok((await volumes(b2)).includes('dep-corp'), 'the deployment is on both servers');
    assert.match((await backingOf(b1, 'app-mail-1.0'))!, new RegExp(`/base-testos-${layers.base.sha256.slice(0, 12)}$`));
    assert.match((await backingOf(b1, 'app-web-2.1'))!, /\/base-testos-/);
    assert.match((await backingOf(b1, 'dep-corp'))!, /\/app-mail-1\.0$/);
  });

  test('a second plan shows no changes', async () => {
    const r = await tf.plan();
    assert.equal(r.exitCode, 0, r.output);
  });

  test('placement puts two large instances on different servers, each an overlay on the deployment', async () => {
    await tf.run(['apply', '-refresh-only', '-auto-approve', '-no-color']);
    const available = resources(await tf.state()).filter((x) => x.type === 'storm_appliance_server').map((x) => Number(x.values.available_memory_mib));
    M = Math.floor(Math.min(...available) * 0.6);
    tf.write(stackHcl(instanceHcl('mx1', M) + instanceHcl('mx2', M)));
    const r = await tf.apply();
    assert.equal(r.exitCode, 0, r.output);
    const byName = new Map(resources(await tf.state()).filter((s) => s.type === 'storm_instance').map((s) => [s.name, s.values]));
    const s1 = String(byName.get('mx1')!.server);
    const s2 = String(byName.get('mx2')!.server);
    assert.notEqual(s1, s2, 'least-loaded placement spreads them');
    for (const blade of lab.blades) {
      const name = [...byName].find(([, v]) => String(v.server).startsWith(`${blade.name}@`))![0];
      assert.match((await backingOf(blade, `inst-${name}`))!, /\/dep-corp$/);
      assert.ok((await volumes(blade)).includes(`seed-${name}.iso`));
      assert.match((await virsh(blade.libvirtUri, 'domstate', name)).stdout, /shut off/);
    }
    assert.equal((await tf.plan()).exitCode, 0, 'no drift after create');
  });

  test('an instance that fits nowhere gets a diagnostic and leaves nothing behind', async () => {
    tf.write(stackHcl(instanceHcl('mx1', M) + instanceHcl('mx2', M) + instanceHcl('mx3', M)));
    const r = await tf.apply();
    assert.equal(r.exitCode, 1, r.output);
    assert.match(r.stderr, /No server fits this instance/);
    assert.match(r.stderr, /memory_mib/);
    for (const blade of lab.blades) {
      assert.ok(!(await volumes(blade)).some((v) => v.includes('mx3')), 'no volume of mx3');
      assert.notEqual((await virsh(blade.libvirtUri, 'domstate', 'mx3')).exitCode, 0, 'no domain mx3');
    }
  });

  test('memory larger than any server is refused the same way', async () => {
    tf.write(stackHcl(instanceHcl('mx1', M) + instanceHcl('mx2', M) + instanceHcl('big', 1048576)));
    const r = await tf.apply();
    assert.equal(r.exitCode, 1, r.output);
    assert.match(r.stderr, /no server fits 1048576 MiB/);
  });

  test('a template naming an undefined variable is refused and leaves nothing behind', async () => {
    tf.write(stackHcl(instanceHcl('mx1', M) + instanceHcl('mx2', M) + instanceHcl('tiny', 64, '  server = storm_appliance_server.blade1.id\n  file {\n    path    = "/etc/motd"\n    content = "hello $${nobody}"\n  }').replace('variables   = { site = "tiny" }', 'variables   = {}')));
    const r = await tf.apply();
    assert.equal(r.exitCode, 1, r.output);
    assert.match(r.stderr, /Undefined template variable/);
    assert.match(r.stderr, /\$\{nobody\}/);
    assert.match(r.stderr, /\$\{site\}/);
    assert.ok(!(await volumes(lab.blades[0]!)).some((v) => v.includes('tiny')));
  });

  test('a wrong sha256 is refused before anything is installed', async () => {
    const bad = 'f'.repeat(64);
    tf.write(
      stackHcl(
        instanceHcl('mx1', M) + instanceHcl('mx2', M),
        `
resource "storm_appliance" "broken" {
  server  = storm_appliance_server.blade1.id
  name    = "broken"
  version = "1"
  base {
    name   = "otheros"
    url    = "${layers.base.path}"
    sha256 = "${bad}"
  }
  image {
    url    = "${layers.appliance.path}"
    sha256 = "${layers.appliance.sha256}"
  }
}
`,
      ),
    );
    const r = await tf.apply();
    assert.equal(r.exitCode, 1, r.output);
    assert.match(r.stderr, /does not match its sha256/);
    assert.match(r.stderr, /sha256 = "f{64}"/, 'Terraform points at the checksum line');
    assert.ok(!(await volumes(lab.blades[0]!)).some((v) => v.includes('otheros') || v.includes('broken')));
  });

  test('names with "/" or ".." are refused at plan time', async () => {
    tf.write(stackHcl(instanceHcl('mx1', M) + instanceHcl('mx2', M) + instanceHcl('x', 64).replace('name        = "x"', 'name        = "../etc/x"')));
    const r = await tf.plan();
    assert.equal(r.exitCode, 1, r.output);
    assert.match(r.stderr, /Invalid name/);
  });

  test('an instance whose domain was removed out of band shows as drift; apply adopts its disk', async () => {
    tf.write(stackHcl(instanceHcl('mx1', M) + instanceHcl('mx2', M)));
    const [state] = resources(await tf.state()).filter((s) => s.name === 'mx1');
    const blade = lab.blades.find((b) => String(state!.values.server).startsWith(`${b.name}@`))!;
    assert.equal((await virsh(blade.libvirtUri, 'undefine', 'mx1')).exitCode, 0);
    const plan = await tf.plan();
    assert.equal(plan.exitCode, 2, plan.output);
    assert.match(plan.stdout, /storm_instance\.mx1 will be created/);
    const r = await tf.apply();
    assert.equal(r.exitCode, 0, r.output);
    assert.match((await virsh(blade.libvirtUri, 'domstate', 'mx1')).stdout, /shut off/);
    assert.equal((await tf.plan()).exitCode, 0, 'converged');
  });

  test('an instance whose create was cut off after its domain was defined is adopted, same domain', async () => {
    // What terraform killed mid-apply leaves: the domain, disk and seed exist, the state does not know them.
    const [before] = resources(await tf.state()).filter((s) => s.name === 'mx2');
    const blade = lab.blades.find((b) => String(before!.values.server).startsWith(`${b.name}@`))!;
    const uuid = (await virsh(blade.libvirtUri, 'domuuid', 'mx2')).stdout.trim();
    assert.equal((await tf.run(['state', 'rm', '-no-color', 'storm_instance.mx2'])).exitCode, 0);
    const r = await tf.apply();
    assert.equal(r.exitCode, 0, r.output);
    assert.doesNotMatch(r.output, /already has a domain/);
    assert.equal((await virsh(blade.libvirtUri, 'domuuid', 'mx2')).stdout.trim(), uuid, 'the same domain, adopted');
    assert.equal((await tf.plan()).exitCode, 0, 'converged');
  });

  test('memory and disk changes are in place: redefined domain, grown volume', async () => {
    tf.write(stackHcl(instanceHcl('mx1', M, '  disk_size_mib = 128') + instanceHcl('mx2', 2048)));
    const plan = await tf.plan();
    assert.equal(plan.exitCode, 2, plan.output);
    assert.match(plan.stdout, new RegExp(`~ memory_mib\\s+= ${M} -> 2048`));
    assert.match(plan.stdout, /~ disk_size_mib\s+= 64 -> 128/);
    assert.doesNotMatch(plan.stdout, /must be replaced/);
    const r = await tf.apply();
    assert.equal(r.exitCode, 0, r.output);
    const byName = new Map(resources(await tf.state()).filter((x) => x.type === 'storm_instance').map((x) => [x.name, x.values]));
    const home = (name: string) => lab.blades.find((b) => String(byName.get(name)!.server).startsWith(`${b.name}@`))!;
    assert.match((await virsh(home('mx2').libvirtUri, 'dominfo', 'mx2')).stdout, /Max memory:\s+2097152 KiB/);
    assert.match((await virsh(home('mx1').libvirtUri, 'vol-info', '--pool', 'storm', 'inst-mx1')).stdout, /Capacity:\s+128\.00 MiB/);
    assert.equal((await tf.plan()).exitCode, 0);
  });

  test('more memory than the server has room for is refused; the instance keeps what it had', async () => {
    const mx2 = resources(await tf.state()).find((x) => x.address === 'storm_instance.mx2')!.values;
    const home = lab.blades.find((b) => String(mx2.server).startsWith(`${b.name}@`))!;
    const server = resources(await tf.state()).find((x) => x.type === 'storm_appliance_server' && x.values.name === home.name)!.values;
    tf.write(stackHcl(instanceHcl('mx1', M, '  disk_size_mib = 128') + instanceHcl('mx2', Number(server.available_memory_mib) + 1)));
    const r = await tf.apply();
    assert.equal(r.exitCode, 1, r.output);
    assert.match(r.output, new RegExp(`The server has no room for this much memory[\\s\\S]*Server "${home.name}"[\\s\\S]*keeps 2048 MiB`));
    assert.match((await virsh(home.libvirtUri, 'dominfo', 'mx2')).stdout, /Max memory:\s+2097152 KiB/);
    tf.write(stackHcl(instanceHcl('mx1', M, '  disk_size_mib = 128') + instanceHcl('mx2', 2048)));
    assert.equal((await tf.plan()).exitCode, 0, 'nothing changed');
  });

  test('import by NAME@SERVER_ID reads an instance back with nothing to change', async () => {
    const [mx1] = resources(await tf.state()).filter((x) => x.name === 'mx1');
    const serverId = String(mx1!.values.server);
    const deploymentId = (mx1!.values.deployments as string[]).find((d) => d.endsWith(`@${serverId}`))!;
    await importVerify(
      `
resource "storm_instance" "mx1" {
  name          = "mx1"
  deployments   = ["${deploymentId}"]
  memory_mib    = ${M}
  disk_size_mib = 128
  state         = "shutoff"
  variables     = { site = "mx1" }
}
`,
      'storm_instance.mx1',
      `mx1@${serverId}`,
    );
  });

  test('import a deployment by NAME@SERVER_ID: files, variables and image come back, nothing to change', async () => {
    const [dep] = resources(await tf.state()).filter((x) => x.address === 'storm_deployment.corp["blade1"]');
    const serverId = String(dep!.values.appliance).replace(/^app-mail-1\.0@/, '');
    await importVerify(
      `
resource "storm_deployment" "corp" {
  appliance = "${String(dep!.values.appliance)}"
  name      = "corp"
  image {
    url    = "${layers.deployment.path}"
    sha256 = "${layers.deployment.sha256}"
  }
  variables = { relay = "smtp.example.org" }
  file {
    path    = "/etc/mail/relay.conf"
    content = "relay $\${relay} for $\${site}\\n"
  }
}
`,
      'storm_deployment.corp',
      `corp@${serverId}`,
    );
  });

  test('a new appliance version replaces what stands on the old one, and the plan says so', async () => {
    tf.write(stackHcl(instanceHcl('mx1', M, '  disk_size_mib = 128') + instanceHcl('mx2', 2048)).replace('version  = "1.0"', 'version  = "1.1"'));
    const plan = await tf.plan();
    assert.equal(plan.exitCode, 2, plan.output);
    assert.match(plan.stdout, /storm_appliance\.mail\["blade1"\] must be replaced/);
    assert.match(plan.stdout, /storm_deployment\.corp\["blade1"\] must be replaced/);
    assert.match(plan.stdout, /storm_instance\.mx1 must be replaced/);
    assert.match(plan.stdout, /version\s+= "1\.0" -> "1\.1" # forces replacement/);
    tf.write(stackHcl(instanceHcl('mx1', M, '  disk_size_mib = 128') + instanceHcl('mx2', 2048)));
  });

  test('an instance without memory_mib and vcpus gets its appliance\'s, decided at create', async () => {
    const instances = instanceHcl('mx1', M, '  disk_size_mib = 128') + instanceHcl('mx2', 2048);
    const web = (more: string) =>
      stackHcl(instances, `
resource "storm_deployment" "site" {
  appliance = storm_appliance.web.id
  name      = "site"
}
${more}`).replace('version = "2.1"', 'version = "2.1"\n  memory_mib = 192\n  vcpus   = 2');
    const www = (name: string) => `
resource "storm_instance" "${name}" {
  name        = "${name}"
  deployments = [storm_deployment.site.id]
  state       = "shutoff"
}
`;
    tf.write(web(www('www1')));
    const first = await tf.apply();
    assert.equal(first.exitCode, 0, first.output);
    const www1 = resources(await tf.state()).find((x) => x.address === 'storm_instance.www1')!.values;
    assert.equal(www1.memory_mib, 192);
    assert.equal(www1.vcpus, 2);
    const blade1 = lab.blades[0]!;
    const xml = (await virsh(blade1.libvirtUri, 'dumpxml', 'www1')).stdout;
    assert.match(xml, /<memory unit='KiB'>196608<\/memory>/, 'the domain has the appliance\'s memory');
    assert.match(xml, /<vcpu[^>]*>2<\/vcpu>/);
    // Changing the appliance's hardware and adding an instance in one apply: the new instance
    // gets the new values (the plan cannot promise them earlier), the running one keeps its own.
    tf.write(web(www('www1') + www('www2')).replace('memory_mib = 192', 'memory_mib = 224'));
    const plan = await tf.plan();
    assert.equal(plan.exitCode, 2, plan.output);
    assert.match(plan.stdout, /\+ memory_mib\s+= \(known after apply\)/);
    const second = await tf.apply();
    assert.equal(second.exitCode, 0, second.output);
    const after = new Map(resources(await tf.state()).filter((x) => x.type === 'storm_instance').map((x) => [x.name, x.values]));
    assert.equal(after.get('www2')!.memory_mib, 224);
    assert.equal(after.get('www1')!.memory_mib, 192, 'an existing instance keeps what it was created with');
    tf.write(stackHcl(instances));
    const back = await tf.apply();
    assert.equal(back.exitCode, 0, back.output);
  });

  test('a network of one name on each blade: each its own bridge, though the blades share a kernel', async () => {
    const instances = instanceHcl('mx1', M, '  disk_size_mib = 128') + instanceHcl('mx2', 2048);
    const lan = (server: string, octet: number) => `
resource "storm_network" "lan_${server}" {
  server = storm_appliance_server.${server}.id
  name   = "lan"
  cidr   = "192.168.${octet}.0/24"
}
`;
    tf.write(stackHcl(instances, lan('blade1', 171) + lan('blade2', 172)));
    const r = await tf.apply();
    assert.equal(r.exitCode, 0, r.output);
    const bridges = resources(await tf.state()).filter((x) => x.type === 'storm_network').map((x) => String(x.values.bridge));
    assert.equal(new Set(bridges).size, 2, `two bridges: ${bridges.join(', ')}`);
    for (const blade of lab.blades) assert.match((await virsh(blade.libvirtUri, 'net-info', 'lan')).stdout, /Active:\s+yes/);
    assert.equal((await tf.plan()).exitCode, 0, 'converged');
    tf.write(stackHcl(instances));
    const back = await tf.apply();
    assert.equal(back.exitCode, 0, back.output);
  });

  test('destroy leaves no volume, domain or seed behind', async () => {
    const r = await tf.destroy();
    assert.equal(r.exitCode, 0, r.output);
    for (const blade of lab.blades) {
      const left = await virsh(blade.libvirtUri, 'vol-list', 'storm');
      assert.notEqual(left.exitCode, 0, `pool storm is gone from ${blade.name}: ${left.output}`);
      assert.equal((await virsh(blade.libvirtUri, 'list', '--all', '--name')).stdout.trim(), '');
    }
  });
});
