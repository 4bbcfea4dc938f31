// Real guests from a signed channel: two instances of one deployment on a 4-layer chain (base → appliance →
// deployment → instance) boot under QEMU (TCG) from the project's test guest
// (scripts/build-guest.sh, scripts/build-test-layers.sh). Their serial consoles prove that
// every lower layer's files are visible and that the instance variables were expanded.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sha256File } from '../lib/images.ts';
import { applianceFromChannelHcl, publishTestChannel, type TestChannel } from '../lib/channel.ts';
import { REPO_DIR, TerraformDir, resources, virsh } from '../lib/terraform.ts';

const URI = 'qemu:///system';
const GUEST = join(REPO_DIR, 'build', 'guest');
const tf = new TerraformDir();
const img = (name: string) => ({ path: join(GUEST, name), sha256: sha256File(join(GUEST, name)) });

let dnsHosts = '';
let mx1MemoryMib = 256;
let mx1DiskMib: number | null = null;

function stackHcl(state: 'running' | 'shutoff'): string {
  const dep = img('layers/deployment.qcow2');
  const instance = (name: string) => `
resource "storm_instance" "${name}" {
  name        = "${name}"
  deployments = [storm_deployment.mail.id]
  network     = storm_network.lan.name
  memory_mib  = ${name === 'mx1' ? mx1MemoryMib : 256}
${name === 'mx1' && mx1DiskMib ? `  disk_size_mib = ${mx1DiskMib}\n` : ''}  state       = "${state}"
  variables   = { site = "${name}" }
}
`;
  return `
resource "storm_appliance_server" "local" {
  name        = "local"
  libvirt_uri = "${URI}"
  pool_path   = "/var/tmp/storm-boot-pool"
  accelerator = "tcg" # /dev/kvm exists on these VMs but does not work
}

resource "storm_network" "lan" {
  server = storm_appliance_server.local.id
  name   = "storm-boot"
  cidr   = "192.168.161.0/24"
${dnsHosts}
}

provider "storm" {
  trusted_keys = ["${channel.publicKeyLine}"]
}

# The appliance comes from a signed channel, published with the catalog site.
${applianceFromChannelHcl(channel.feedUrl, 'mail', 'storm_appliance_server.local.id')}
resource "storm_deployment" "mail" {
  appliance = storm_appliance.mail.id
  name      = "corp-mail"
  image {
    url    = "${dep.path}"
    sha256 = "${dep.sha256}"
  }
  variables = { relay = "smtp.example.org" }
  file {
    path        = "/etc/mail/relay.conf"
    content     = "relay $\${relay} for $\${site}\\n"
    permissions = "0640"
  }
}
${instance('mx1')}${instance('mx2')}
`;
}

async function volumePath(name: string): Promise<string> {
  return (await virsh(URI, 'vol-path', '--pool', 'storm', name)).stdout.trim();
}

async function lowerLayerSums(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const names = (await virsh(URI, 'vol-list', 'storm')).stdout.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter((n) => /^(base|app|dep)-/.test(n) && !n.endsWith('.json'));
  for (const n of names) out[n] = sha256File(await volumePath(n));
  return out;
}

async function waitForConsole(path: string, marker: string, timeoutMs: number, times = 1): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = existsSync(path) ? readFileSync(path, 'utf8').replace(/\r/g, '') : '';
    if (text.split(marker).length - 1 >= times || Date.now() > deadline) return text;
    await new Promise((r) => setTimeout(r, 500));
  }
}

let channel: TestChannel;

before(async () => {
  execFileSync('bash', [join(REPO_DIR, 'scripts', 'build-guest.sh')], { stdio: 'inherit' });
  execFileSync('bash', [join(REPO_DIR, 'scripts', 'build-test-layers.sh')], { stdio: 'inherit' });
  channel = await publishTestChannel([
    {
      name: 'mail',
      version: '1.0',
      label: 'Mail appliance',
      base: { name: 'testos', ...img('layers/base.qcow2') },
      image: img('layers/appliance.qcow2'),
      boot: { kernel: img('vmlinuz'), initrd: img('initrd.gz'), cmdline: 'console=ttyS0 quiet panic=-1' },
    },
  ]);
  tf.write(stackHcl('shutoff'));
  await tf.init();
});

after(async () => {
  await tf.destroy();
  tf.remove();
  await channel.remove();
});

describe('instances boot from layered appliances', () => {
  let before: Record<string, string>;

  test('apply installs the chain once and defines two instances (shut off)', async () => {
    const r = await tf.apply();
    assert.equal(r.exitCode, 0, r.output);
    before = await lowerLayerSums();
    const names = Object.keys(before).sort();
    assert.equal(names.filter((n) => n.startsWith('base-')).length, 1, 'one base layer');
    assert.deepEqual(names.filter((n) => !n.startsWith('base-')), ['app-mail-1.0', 'dep-corp-mail']);
  });

  test('state = "running" boots both in place; their consoles show all layers and expanded variables', async (t) => {
    tf.write(stackHcl('running'));
    const plan = await tf.plan();
    assert.match(plan.stdout, /~ state\s+= "shutoff" -> "running"/);
    assert.match(plan.stdout, /2 to change, 0 to destroy/);
    const r = await tf.apply();
    assert.equal(r.exitCode, 0, r.output);
    const instances = resources(await tf.state()).filter((s) => s.type === 'storm_instance');
    for (const inst of instances) {
      const name = String(inst.values.name);
      const log = await waitForConsole(String(inst.values.console_log), 'STORM-READY', 180_000);
      const lines = log.split('\n').filter((l) => l.startsWith('STORM-'));
      t.diagnostic(`${name} console:\n    ${lines.join('\n    ')}`);
      assert.ok(lines.includes(`STORM-BOOT instance=${name} hostname=${name}`), lines.join('\n'));
      assert.ok(lines.includes('STORM-LAYERS appliance base deployment'), 'files of every lower layer are visible');
      assert.ok(lines.includes(`STORM-FILE /etc/mail/relay.conf relay smtp.example.org for ${name}`), 'deployment template expanded with the instance variable');
      assert.ok(lines.some((l) => l.startsWith('STORM-READY')));
      const ipLine = lines.find((l) => l.startsWith('STORM-IP '));
      assert.ok(ipLine, 'guest got a DHCP lease');
      assert.equal(inst.values.ip, ipLine.split(' ')[1], 'ip attribute from the lease');
      assert.match(String(inst.values.mac), /^52:54:00:/);
    }
  });

  test('booting changed only the instances\' own layers', async () => {
    assert.deepEqual(await lowerLayerSums(), before);
    for (const name of ['mx1', 'mx2']) {
      const info = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', await volumePath(`inst-${name}`)]).toString()) as { 'actual-size': number; 'backing-filename': string };
      assert.match(info['backing-filename'], /\/dep-corp-mail$/);
      assert.ok(info['actual-size'] > 200_000, `inst-${name} holds what its guest wrote`);
    }
  });

  test('a running guest: a bigger disk grows live, without a reboot', async () => {
    const log = String(resources(await tf.state()).find((x) => x.name === 'mx1')!.values.console_log);
    const boots = (readFileSync(log, 'utf8').match(/STORM-READY/g) ?? []).length;
    mx1DiskMib = 128;
    tf.write(stackHcl('running'));
    const plan = await tf.plan();
    assert.match(plan.stdout, /~ disk_size_mib\s+= 64 -> 128/);
    assert.doesNotMatch(plan.output, /will restart/);
    const r = await tf.apply();
    assert.equal(r.exitCode, 0, r.output);
    assert.match((await virsh(URI, 'domblkinfo', 'mx1', 'vda')).stdout, /Capacity:\s+134217728/, 'QEMU sees the new size');
    assert.match((await virsh(URI, 'domstate', 'mx1')).stdout, /running/);
    assert.equal((readFileSync(log, 'utf8').match(/STORM-READY/g) ?? []).length, boots, 'no reboot');
    assert.equal((await tf.plan()).exitCode, 0);
  });

  test('a running guest: more memory restarts it, and the plan says so', async () => {
    const log = String(resources(await tf.state()).find((x) => x.name === 'mx1')!.values.console_log);
    const boots = (readFileSync(log, 'utf8').match(/STORM-READY/g) ?? []).length;
    mx1MemoryMib = 320;
    tf.write(stackHcl('running'));
    const plan = await tf.plan();
    assert.equal(plan.exitCode, 2, plan.output);
    assert.match(plan.output, /storm will restart instance "mx1"/);
    assert.match(plan.stdout, /~ memory_mib\s+= 256 -> 320/);
    assert.doesNotMatch(plan.stdout, /must be replaced/);
    const r = await tf.apply();
    assert.equal(r.exitCode, 0, r.output);
    assert.match((await virsh(URI, 'dominfo', 'mx1')).stdout, /Max memory:\s+327680 KiB/);
    const text = await waitForConsole(log, 'STORM-READY', 120_000, boots + 1);
    assert.equal((text.match(/STORM-READY/g) ?? []).length, boots + 1, 'the guest booted again with the new memory');
    assert.equal((await tf.plan()).exitCode, 0);
  });

  test('pause and shut off are in-place changes', async () => {
    tf.write(stackHcl('running').replace('state       = "running"\n  variables   = { site = "mx2" }', 'state       = "paused"\n  variables   = { site = "mx2" }'));
    const r = await tf.apply();
    assert.equal(r.exitCode, 0, r.output);
    assert.match((await virsh(URI, 'domstate', 'mx2')).stdout, /paused/);
    assert.equal((await tf.plan()).exitCode, 0);
  });

  test('DNS host records change in place (round-robin: one name, two addresses)', async () => {
    const ips = ['192.168.161.10', '192.168.161.11'];
    dnsHosts = ips.map((ip) => `  host {\n    hostname = "mail"\n    ip       = "${ip}"\n  }`).join('\n');
    tf.write(stackHcl('running').replace('state       = "running"\n  variables   = { site = "mx2" }', 'state       = "paused"\n  variables   = { site = "mx2" }'));
    const plan = await tf.plan();
    assert.match(plan.stdout, /storm_network\.lan will be updated in-place/);
    const r = await tf.apply();
    assert.equal(r.exitCode, 0, r.output);
    const xml = (await virsh(URI, 'net-dumpxml', 'storm-boot')).stdout;
    for (const ip of ips) assert.match(xml, new RegExp(`<host ip='${ip.replace(/\./g, '\\.')}'>\\s*<hostname>mail</hostname>`));
    assert.equal((await tf.plan()).exitCode, 0);
  });

  test('destroy leaves no volume, domain, seed or network behind', async () => {
    const r = await tf.destroy();
    assert.equal(r.exitCode, 0, r.output);
    assert.notEqual((await virsh(URI, 'pool-info', 'storm')).exitCode, 0, 'pool gone');
    for (const name of ['mx1', 'mx2']) assert.notEqual((await virsh(URI, 'dominfo', name)).exitCode, 0);
    assert.notEqual((await virsh(URI, 'net-info', 'storm-boot')).exitCode, 0);
  });
});
