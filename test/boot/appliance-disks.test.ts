// A real guest of a Figure 2 appliance: single-layer, its system disk unpacked from a .tgz,
// booted under QEMU (TCG) on a lab blade with its swap and user disks attached, on a storm
// network whose DHCP gives it an address: webpanel_url is then http://IP/upload.php, and the
// guest boots from vda as before, whatever disks follow it.
// Builds the test guest first (scripts/build-guest.sh, scripts/build-test-layers.sh), as every boot suite does.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { bladeServerHcl, startLab, type Blade, type Lab } from '../lib/lab.ts';
import { sha256File } from '../lib/images.ts';
import { REPO_DIR, TerraformDir, resources } from '../lib/terraform.ts';

const GUEST = join(REPO_DIR, 'build', 'guest');
const img = (path: string) => ({ path, sha256: sha256File(path) });
let lab: Lab;
let blade: Blade;
let work = '';
const tf = new TerraformDir();

function stackHcl(): string {
  const tgz = img(join(work, 'webserv.tgz'));
  const kernel = img(join(GUEST, 'vmlinuz'));
  const initrd = img(join(GUEST, 'initrd.gz'));
  return `
${bladeServerHcl(blade, '  accelerator = "tcg"')}
resource "storm_network" "lan" {
  server = storm_appliance_server.${blade.name}.id
  name   = "wtd-lan"
  cidr   = "192.168.250.0/24"
}

resource "storm_appliance" "webserv" {
  server   = storm_appliance_server.${blade.name}.id
  name     = "wtd-webserv"
  version  = "1.0.0-0"
  webpanel = "/upload.php"
  disks = [
    { name = "hda3", type = "swap", size_mib = 16 },
    { name = "hda2", type = "user", size_mib = 16 },
  ]
  image {
    url    = "${tgz.path}"
    sha256 = "${tgz.sha256}"
    file   = "sys.img"
  }
  boot {
    kernel_url    = "${kernel.path}"
    kernel_sha256 = "${kernel.sha256}"
    initrd_url    = "${initrd.path}"
    initrd_sha256 = "${initrd.sha256}"
    cmdline       = "console=ttyS0 quiet panic=-1"
  }
}

resource "storm_deployment" "site" {
  appliance = storm_appliance.webserv.id
  name      = "wtd-site"
}

resource "storm_instance" "web" {
  name            = "wtd-web1"
  deployments     = [storm_deployment.site.id]
  network         = storm_network.lan.name
  memory_mib      = 256
  ip_wait_seconds = 240
}
`;
}

/** The blade's console log of a guest: its /var/log/libvirt is the lab's blade/log. */
async function waitForConsole(path: string, marker: string, ms: number): Promise<string> {
  const onHost = join(lab.dir, blade.name, 'log', path.replace(/^\/var\/log\/libvirt\//, ''));
  const deadline = Date.now() + ms;
  for (;;) {
    const text = existsSync(onHost) ? readFileSync(onHost, 'utf8').replace(/\r/g, '') : '';
    if (text.includes(marker) || Date.now() > deadline) return text;
    await sleep(1000);
  }
}

before(async () => {
  // Built here as the other boot suites build them (idempotent): this suite may run first.
  execFileSync('bash', [join(REPO_DIR, 'scripts', 'build-guest.sh')], { stdio: 'inherit' });
  execFileSync('bash', [join(REPO_DIR, 'scripts', 'build-test-layers.sh')], { stdio: 'inherit' });
  work = mkdtempSync(join(tmpdir(), 'storm-wtd-boot-'));
  // The test guest's standalone ext4 disk, published the paper's way: sys.img inside a .tgz.
  execFileSync('cp', [join(GUEST, 'layers', 'base.qcow2'), join(work, 'sys.img')]);
  execFileSync('tar', ['-czf', 'webserv.tgz', 'sys.img'], { cwd: work });
  lab = await startLab({ blades: 1, initialPower: 'on', firstPort: 9780 });
  blade = lab.blades[0]!;
  tf.write(stackHcl());
  await tf.init();
});

after(async () => {
  await tf.destroy();
  tf.remove();
  if (work) rmSync(work, { recursive: true, force: true });
  await lab?.stop();
});

describe('a Figure 2 appliance boots', () => {
  test('with its extra disks, from the .tgz\'s sys.img, and shows its web panel at its address', async (t) => {
    const r = await tf.apply();
    assert.equal(r.exitCode, 0, r.output);
    const web = resources(await tf.state()).find((x) => x.address === 'storm_instance.web')!.values;
    const console = await waitForConsole(String(web.console_log), 'STORM-READY', 240_000);
    const lines = console.split('\n').filter((l) => l.startsWith('STORM-'));
    t.diagnostic(`console:\n    ${lines.join('\n    ')}`);
    assert.ok(lines.some((l) => l.startsWith('STORM-READY')), 'the guest booted');
    assert.ok(lines.includes('STORM-LAYERS base'), 'its instance disk (vda) is sys.img, mounted as before');
    assert.deepEqual(lines.filter((l) => l.startsWith('STORM-ERROR')), []);
    assert.match(String(web.ip), /^192\.168\.250\.\d+$/);
    assert.equal(web.webpanel_url, `http://${String(web.ip)}/upload.php`);
    assert.deepEqual((web.disks as { device: string }[]).map((d) => d.device), ['vdc', 'vdd']);
    const plan = await tf.plan();
    assert.equal(plan.exitCode, 0, plan.output);
  });
});
