// What the paper's Figure 2 says, honoured on a real (lab) libvirt host: an appliance from a
// signed channel with no base, published as a .tgz holding sys.img, with a swap and a user
// disk and a web panel; its instances get their extra disks (raw, empty, the sizes asked, in
// order), a user disk survives a replacement when the instance keeps it and not otherwise, a
// missing disk is drift that the next apply mends, a killed apply converges, and an archive
// without the named file is refused, leaving nothing behind.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import type { Logger } from '../../provider/src/contract.ts';
import { makeInstance, removeInstance } from '../../provider/src/host/instances.ts';
import { parseLayerId } from '../../provider/src/host/refs.ts';
import { HostSession } from '../../provider/src/host/session.ts';
import { bladeServerHcl, startLab, type Blade, type Lab } from '../lib/lab.ts';
import { publishTestChannel, type TestChannel } from '../lib/channel.ts';
import { sha256File } from '../lib/images.ts';
import { TerraformDir, resources, virsh, type StateResource } from '../lib/terraform.ts';

let lab: Lab;
let blade: Blade;
let channel: TestChannel;
let images = '';
let sysImgSha = '';
const tf = new TerraformDir();
const NAME = 'wtd-webserv';
const INSTANCE = 'wtd-web1';
const SWAP = `swap-${INSTANCE}_hda3`;
const USER = `user-${INSTANCE}_hda2`;

interface Shape {
  keep?: boolean;
  /** A forceNew attribute: changing it replaces the instance. */
  generation?: number;
  instance?: boolean;
  extra?: string;
}

function stackHcl(s: Shape = {}): string {
  const d = 'data.storm_appliance.webserv';
  const instance = s.instance === false ? '' : `
resource "storm_instance" "web" {
  name            = "${INSTANCE}"
  deployments     = [storm_deployment.site.id]
  state           = "shutoff"
  keep_user_disks = ${s.keep ?? false}
  variables       = { generation = "${s.generation ?? 1}" }
}
`;
  return `
provider "storm" {
  trusted_keys = ["${channel.publicKeyLine}"]
}
${bladeServerHcl(blade)}
data "storm_appliance" "webserv" {
  channel = "${channel.feedUrl}"
  name    = "${NAME}"
}

# Figure 2 as a Terraform user writes it: everything from the definition, passed through.
resource "storm_appliance" "webserv" {
  server     = storm_appliance_server.${blade.name}.id
  name       = ${d}.name
  version    = ${d}.version
  memory_mib = ${d}.memory_mib
  vcpus      = ${d}.vcpus
  disks      = ${d}.disks
  webpanel   = ${d}.webpanel
  dynamic "base" {
    for_each = ${d}.base_name == null ? [] : [1]
    content {
      name   = ${d}.base_name
      url    = ${d}.base_url
      sha256 = ${d}.base_sha256
    }
  }
  image {
    url    = ${d}.image_url
    sha256 = ${d}.image_sha256
    file   = ${d}.system_disk_file
  }
}

resource "storm_deployment" "site" {
  appliance = storm_appliance.webserv.id
  name      = "wtd-site"
}
${instance}
${s.extra ?? ''}
output "disks" {
  value = ${d}.disks
}
`;
}

const poolFile = (volume: string) => join(lab.dir, blade.name, 'lib', 'storm', volume);

async function volumes(): Promise<string[]> {
  const r = await virsh(blade.libvirtUri, 'vol-list', 'storm');
  return r.stdout.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter(Boolean).sort();
}

async function volumeXml(volume: string): Promise<string> {
  const r = await virsh(blade.libvirtUri, 'vol-dumpxml', '--pool', 'storm', volume);
  assert.equal(r.exitCode, 0, r.output);
  return r.stdout;
}

function writeMarker(volume: string, marker: Buffer): void {
  const fd = openSync(poolFile(volume), 'r+');
  try {
    writeSync(fd, marker, 0, marker.length, 0);
  } finally {
    closeSync(fd);
  }
}

function readHead(volume: string, bytes: number): Buffer {
  const fd = openSync(poolFile(volume), 'r');
  try {
    const b = Buffer.alloc(bytes);
    readSync(fd, b, 0, bytes, 0);
    return b;
  } finally {
    closeSync(fd);
  }
}

async function instanceState(): Promise<StateResource['values']> {
  const found = resources(await tf.state()).find((r) => r.address === 'storm_instance.web');
  assert.ok(found, 'storm_instance.web is in state');
  return found.values;
}

async function converges(): Promise<void> {
  const r = await tf.apply();
  assert.equal(r.exitCode, 0, r.output);
  const plan = await tf.plan();
  assert.equal(plan.exitCode, 0, plan.output);
}

before(async () => {
  lab = await startLab({ blades: 1, initialPower: 'on', firstPort: 9750 });
  blade = lab.blades[0]!;
  images = mkdtempSync(join(tmpdir(), 'storm-wtd-images-'));
  const run = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { cwd: images, stdio: 'pipe' });
  // A whole disk: qcow2 with no backing file, as a single-layer appliance's image is.
  run('qemu-img', 'create', '-q', '-f', 'qcow2', 'sys.img', '64M');
  run('qemu-io', '-c', 'write -P 0x11 0 64k', 'sys.img');
  sysImgSha = sha256File(join(images, 'sys.img'));
  writeFileSync(join(images, 'README'), 'A very simple and efficient test web server.\n');
  run('tar', '-czf', 'webserv.tgz', 'README', 'sys.img');
  run('tar', '-czf', 'nosys.tgz', 'README');
  channel = await publishTestChannel([
    {
      name: NAME,
      version: '1.0.0-0',
      label: 'Simple Web Server',
      base: null,
      image: { path: join(images, 'webserv.tgz'), sha256: sha256File(join(images, 'webserv.tgz')) },
      systemDiskFile: 'sys.img',
      disks: [
        { name: 'hda3', type: 'swap', sizeMib: 128 },
        { name: 'hda2', type: 'user', sizeMib: 96 },
      ],
      webpanel: '/upload.php',
      memoryMib: 512,
    },
  ]);
  tf.write(stackHcl());
  await tf.init();
});

after(async () => {
  await tf.run(['destroy', '-auto-approve', '-no-color']);
  if (process.env.STORM_TEST_TF_LOG !== '1') tf.remove();
  await channel?.remove();
  if (images) rmSync(images, { recursive: true, force: true });
  await lab?.stop();
});

describe('Figure 2 honoured: single-layer .tgz appliances, swap and user disks, web panel', () => {
  test('the data source reads the definition\'s disks, and the appliance installs from the .tgz with no base', async () => {
    const r = await tf.apply();
    assert.equal(r.exitCode, 0, r.output);
    const out = JSON.parse((await tf.must(['output', '-json', 'disks'])).stdout) as unknown;
    assert.deepEqual(out, [
      { name: 'hda3', type: 'swap', size_mib: 128 },
      { name: 'hda2', type: 'user', size_mib: 96 },
    ]);
    const all = await volumes();
    assert.ok(!all.some((v) => v.startsWith('base-')), `no base layer: ${all.join(' ')}`);
    const layer = `app-${NAME}-1.0.0-0`;
    assert.ok(all.includes(layer), all.join(' '));
    const xml = await volumeXml(layer);
    assert.match(xml, /<format type='qcow2'\/>/);
    assert.doesNotMatch(xml, /<backingStore>\s*<path>/, 'the appliance layer stands alone');
    assert.equal(sha256File(poolFile(layer)), sysImgSha, 'the layer is sys.img from the archive, byte for byte');
    const app = resources(await tf.state()).find((x) => x.address === 'storm_appliance.webserv')!.values;
    assert.equal(app.base_volume, null);
    assert.match(await volumeXml('dep-wtd-site'), new RegExp(`<backingStore>\\s*<path>[^<]*/${layer}</path>`));
  });

  test('the instance has its swap and user disks: empty raw volumes of the sizes asked, attached in order after vda and vdb', async () => {
    const xml = (await virsh(blade.libvirtUri, 'dumpxml', INSTANCE)).stdout;
    const disks = [...xml.matchAll(/<disk type='file' device='disk'>([\s\S]*?)<\/disk>/g)].map((m) => ({
      source: /<source file='([^']+)'/.exec(m[1]!)?.[1] ?? '',
      target: /<target dev='([^']+)'/.exec(m[1]!)?.[1] ?? '',
      driver: /<driver name='qemu' type='([^']+)'/.exec(m[1]!)?.[1] ?? '',
      serial: /<serial>([^<]*)<\/serial>/.exec(m[1]!)?.[1] ?? null,
    }));
    assert.deepEqual(
      disks.map((d) => [d.source.split('/').pop(), d.target, d.driver, d.serial]),
      [
        [`inst-${INSTANCE}`, 'vda', 'qcow2', null],
        [`seed-${INSTANCE}.iso`, 'vdb', 'raw', null],
        [SWAP, 'vdc', 'raw', 'hda3'],
        [USER, 'vdd', 'raw', 'hda2'],
      ],
    );
    assert.match((await virsh(blade.libvirtUri, 'vol-info', '--pool', 'storm', SWAP)).stdout, /Capacity:\s+128\.00 MiB/);
    assert.match((await virsh(blade.libvirtUri, 'vol-info', '--pool', 'storm', USER)).stdout, /Capacity:\s+96\.00 MiB/);
    assert.match(await volumeXml(USER), /<format type='raw'\/>/);
    assert.ok(statSync(poolFile(USER)).blocks * 512 < 1024 * 1024, 'sparse: an empty disk costs nothing until written');
    assert.match((await virsh(blade.libvirtUri, 'dominfo', INSTANCE)).stdout, /Max memory:\s+524288 KiB/, 'the definition\'s <memory> reached the domain');
    const state = await instanceState();
    assert.deepEqual(state.disks, [
      { name: 'hda3', type: 'swap', size_mib: 128, volume: SWAP, device: 'vdc' },
      { name: 'hda2', type: 'user', size_mib: 96, volume: USER, device: 'vdd' },
    ]);
    assert.match(xml, /<storm:webpanel>\/upload\.php<\/storm:webpanel>/, 'the instance carries its appliance\'s panel path');
    assert.equal(state.webpanel_url, null, 'a shut-off instance has no IP, so no panel URL');
    assert.equal(state.memory_mib, 512);
    assert.equal((await tf.plan()).exitCode, 0, 'no changes');
  });

  test('import by NAME@SERVER_ID reads the instance back, disks and all, with nothing to change', async () => {
    const state = await instanceState();
    const other = new TerraformDir();
    try {
      other.write(`
resource "storm_instance" "web" {
  name        = "${INSTANCE}"
  deployments = ["${(state.deployments as string[])[0]}"]
  state       = "shutoff"
  variables   = { generation = "1" }
}
`);
      await other.init();
      const r = await other.run(['import', '-no-color', 'storm_instance.web', `${INSTANCE}@${String(state.server)}`]);
      assert.equal(r.exitCode, 0, r.output);
      const imported = resources(await other.state())[0]!.values;
      assert.deepEqual(imported.disks, state.disks);
      assert.equal((await other.plan()).exitCode, 0);
    } finally {
      other.remove();
    }
  });

  test('replaced with keep_user_disks, the instance re-attaches the same user disk; its swap disk is new', async () => {
    tf.write(stackHcl({ keep: true }));
    const inPlace = await tf.plan();
    assert.equal(inPlace.exitCode, 2, inPlace.output);
    assert.match(inPlace.stdout, /~ keep_user_disks\s+= false -> true/);
    assert.match(inPlace.stdout, /0 to add, 1 to change, 0 to destroy/);
    await converges();
    const marker = randomBytes(32);
    writeMarker(USER, marker);
    writeMarker(SWAP, marker);
    const userInode = statSync(poolFile(USER)).ino;
    tf.write(stackHcl({ keep: true, generation: 2 }));
    const r = await tf.apply();
    assert.equal(r.exitCode, 0, r.output);
    assert.match(r.output, /Kept the user disks of instance "wtd-web1" on server "blade1"/);
    assert.match(r.output, new RegExp(`${USER} stayed in the server's storm\\s+pool`));
    assert.ok(readHead(USER, 32).equals(marker), 'the user disk kept what was written to it');
    assert.equal(statSync(poolFile(USER)).ino, userInode, 'the very same volume');
    assert.ok(readHead(SWAP, 32).equals(Buffer.alloc(32)), 'the swap disk is a new, empty one');
    assert.match((await virsh(blade.libvirtUri, 'dumpxml', INSTANCE)).stdout, new RegExp(`${USER}'/>\\s*<target dev='vdd'`));
    assert.equal((await tf.plan()).exitCode, 0);
  });

  test('replaced without keep_user_disks, the user disk goes with the instance', async () => {
    tf.write(stackHcl({ keep: false, generation: 2 }));
    await converges();
    const marker = randomBytes(32);
    writeMarker(USER, marker);
    tf.write(stackHcl({ keep: false, generation: 3 }));
    const r = await tf.apply();
    assert.equal(r.exitCode, 0, r.output);
    assert.doesNotMatch(r.output, /Kept the user disks/);
    assert.ok(readHead(USER, 32).equals(Buffer.alloc(32)), 'a new, empty user disk');
  });

  test('a user disk kept by a destroyed instance is re-attached by the next one of its name', async () => {
    tf.write(stackHcl({ keep: true, generation: 3 }));
    await converges();
    const marker = randomBytes(32);
    writeMarker(USER, marker);
    tf.write(stackHcl({ keep: true, generation: 3, instance: false }));
    const gone = await tf.apply();
    assert.equal(gone.exitCode, 0, gone.output);
    assert.equal((await virsh(blade.libvirtUri, 'domstate', INSTANCE)).exitCode, 1, 'the domain is gone');
    const left = (await volumes()).filter((v) => v.includes(INSTANCE));
    assert.deepEqual(left, [USER], 'only the user disk stays');
    tf.write(stackHcl({ keep: true, generation: 3 }));
    await converges();
    assert.ok(readHead(USER, 32).equals(marker));
  });

  test('a swap disk deleted out of band is drift; apply mends the instance, keeping its domain', async () => {
    const uuid = (await virsh(blade.libvirtUri, 'domuuid', INSTANCE)).stdout.trim();
    assert.equal((await virsh(blade.libvirtUri, 'vol-delete', '--pool', 'storm', SWAP)).exitCode, 0);
    const plan = await tf.plan();
    assert.equal(plan.exitCode, 2, plan.output);
    assert.match(plan.stdout, /storm_instance\.web will be created/);
    await converges();
    assert.ok((await volumes()).includes(SWAP));
    assert.equal((await virsh(blade.libvirtUri, 'domuuid', INSTANCE)).stdout.trim(), uuid, 'the same domain, adopted');
  });

  test('terraform killed while making the instance: the next apply adopts what it left, nothing twice', async (t) => {
    tf.write(stackHcl({ keep: false, generation: 4 }));
    const run = tf.start(['apply', '-auto-approve', '-no-color']);
    let finished = false;
    void run.finally(() => (finished = true));
    const deadline = Date.now() + 120_000;
    let seen: string[] = [];
    // The replacement first removes the old instance's disks (all but the kept user disk), then
    // makes the new one's: killed as soon as its new swap disk exists, before its seed and
    // complete definition.
    let destroyed = false;
    for (;;) {
      const now = await volumes();
      destroyed ||= !now.includes(`inst-${INSTANCE}`) && !now.includes(SWAP);
      if ((destroyed && now.includes(SWAP)) || finished || Date.now() > deadline) break;
      await sleep(5);
    }
    const midApply = !finished;
    run.kill('SIGKILL');
    await run;
    seen = await volumes();
    t.diagnostic(`killed ${midApply ? 'mid-apply' : 'after the apply had finished'}; volumes of ${INSTANCE} then: ${seen.filter((v) => v.includes(INSTANCE)).join(' ') || 'none'}`);
    // The orphaned provider notices and stops within about a second.
    await sleep(3000);
    await converges();
    const mine = (await volumes()).filter((v) => v.includes(INSTANCE));
    assert.deepEqual(mine, [`inst-${INSTANCE}`, `seed-${INSTANCE}.iso`, SWAP, USER].sort(), `at the kill: ${seen.filter((v) => v.includes(INSTANCE)).join(' ')}`);
    assert.match((await virsh(blade.libvirtUri, 'list', '--all', '--name')).stdout, new RegExp(`^${INSTANCE}$`, 'm'));
    const xml = (await virsh(blade.libvirtUri, 'dumpxml', INSTANCE)).stdout;
    assert.match(xml, new RegExp(`${SWAP}'/>\\s*<target dev='vdc'[\\s\\S]*${USER}'/>\\s*<target dev='vdd'`), 'the adopted domain has both disks');
  });

  test('a scaling group\'s member, made the controller\'s way, gets the same disks; removing it removes them all', async () => {
    const dep = resources(await tf.state()).find((x) => x.address === 'storm_deployment.site')!.values;
    const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };
    const maker = { session: new HostSession(), log: quiet, signal: new AbortController().signal, warn() {} };
    const member = 'wtd-web-0';
    await makeInstance(maker, {
      name: member,
      deployments: [parseLayerId(String(dep.id), 'dep', [])],
      hardware: { memoryMib: 64, vcpus: 1 },
      network: 'default',
      variables: {},
      files: [],
      diskSizeMib: null,
      state: 'shutoff',
      labels: { group: 'wtd-web' },
    });
    const made = (await volumes()).filter((v) => v.includes(member));
    assert.deepEqual(made, [`inst-${member}`, `seed-${member}.iso`, `swap-${member}_hda3`, `user-${member}_hda2`].sort());
    assert.match((await virsh(blade.libvirtUri, 'dumpxml', member)).stdout, new RegExp(`user-${member}_hda2'/>\\s*<target dev='vdd'`));
    assert.deepEqual(await removeInstance(blade.libvirtUri, member), [], 'members keep nothing');
    assert.deepEqual((await volumes()).filter((v) => v.includes(member)), []);
  });

  test('a .tgz without the system disk\'s file is refused, naming what it holds; nothing is left behind', async () => {
    const nosys = join(images, 'nosys.tgz');
    const broken = `
resource "storm_appliance" "broken" {
  server  = storm_appliance_server.${blade.name}.id
  name    = "wtd-broken"
  version = "1.0"
  disks   = [{ name = "hda3", type = "swap", size_mib = 16 }]
  image {
    url    = "${nosys}"
    sha256 = "${sha256File(nosys)}"
    file   = "sys.img"
  }
}
`;
    tf.write(stackHcl({ keep: false, generation: 4, extra: broken }));
    const before = await volumes();
    const r = await tf.apply();
    assert.equal(r.exitCode, 1, r.output);
    assert.match(r.stderr, /The appliance archive does not hold its system disk/);
    assert.match(r.stderr, /nosys\.tgz holds no sys\.img; it holds: README/);
    assert.match(r.stderr, /file\s+= "sys\.img"/, 'Terraform points at image.file');
    assert.deepEqual(await volumes(), before, 'no volume made');
    assert.ok(!resources(await tf.state()).some((x) => x.address === 'storm_appliance.broken'));
    tf.write(stackHcl({ keep: false, generation: 4 }));
  });

  test('disks are checked by the definition\'s rules at plan time', async () => {
    tf.write(stackHcl({ keep: false, generation: 4, extra: `
resource "storm_appliance" "odd" {
  server  = storm_appliance_server.${blade.name}.id
  name    = "wtd-odd"
  version = "1.0"
  disks   = [{ name = "hda1", type = "system", size_mib = 16 }, { name = "Bad Name", type = "swap", size_mib = 0 }]
  image {
    url    = "/nonexistent.qcow2"
    sha256 = "${'0'.repeat(64)}"
  }
}
` }));
    const r = await tf.plan();
    assert.equal(r.exitCode, 1, r.output);
    assert.match(r.stderr, /Invalid disks\[0\]\.type[\s\S]*disks lists only "swap" and "user" disks/);
    assert.match(r.stderr, /Invalid disks\[1\]\.name[\s\S]*name must be a device name/);
    assert.match(r.stderr, /Invalid disks\[1\]\.size_mib/);
    tf.write(stackHcl({ keep: false, generation: 4 }));
  });

  test('destroy removes the instance\'s disks with it and leaves the server empty', async () => {
    const r = await tf.destroy();
    assert.equal(r.exitCode, 0, r.output);
    const left = await virsh(blade.libvirtUri, 'vol-list', 'storm');
    assert.notEqual(left.exitCode, 0, `the pool is gone: ${left.output}`);
    assert.equal((await virsh(blade.libvirtUri, 'list', '--all', '--name')).stdout.trim(), '');
  });
});
