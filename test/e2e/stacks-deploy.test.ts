// The cdktf stack web-server deployed for real, as a user would: `cdktf deploy web-server
// --skip-provider-lock` with the cdktf-cli from node_modules under the repo's Node 22, the
// provider from the repo-local mirror, inputs as TF_VAR_*, against a lab blade (a real libvirtd
// behind an ipmi_sim BMC) and a published Figure 2 channel (a .tgz holding sys.img, a swap and a
// user disk, a web panel); then `cdktf destroy web-server` leaves nothing on the blade.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import { startLab, type Blade, type Lab } from '../lib/lab.ts';
import { publishTestChannel, type TestChannel } from '../lib/channel.ts';
import { sha256File } from '../lib/images.ts';
import { CLI_CONFIG, REPO_DIR, virsh } from '../lib/terraform.ts';

const PREFIX = 'wts-';
const INSTANCE = `${PREFIX}www1`;
const NETWORK = `${PREFIX}web`;

let lab: Lab;
let blade: Blade;
let channel: TestChannel;
let destroyed = false;
const work = mkdtempSync(join(tmpdir(), 'storm-wts-deploy-'));
const out = join(work, 'cdktf.out');
// cdktf's local backend keeps the state beside cdktf.json (terraform.web-server.tfstate): run
// the app from a project directory of the test's own, so the repo stays as it was.
const project = join(work, 'project');

function cdktf(...args: string[]) {
  return execa('cdktf', [...args, '--output', out], {
    cwd: project,
    reject: false,
    all: true,
    timeout: 15 * 60_000,
    env: {
      PATH: `${join(REPO_DIR, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`,
      TF_CLI_CONFIG_FILE: CLI_CONFIG,
      CHECKPOINT_DISABLE: '1',
      CI: '1',
      TF_IN_AUTOMATION: '1',
      STORM_NAME_PREFIX: PREFIX,
      TF_VAR_channel_url: channel.feedUrl,
      TF_VAR_channel_trusted_key: channel.publicKeyLine,
      TF_VAR_libvirt_uri: blade.libvirtUri,
      TF_VAR_bmc_address: blade.bmc.address,
      TF_VAR_bmc_port: String(blade.bmc.port),
      TF_VAR_bmc_username: blade.bmc.username,
      TF_VAR_bmc_password: blade.bmc.password,
      TF_VAR_accelerator: 'tcg',
      TF_VAR_network_cidr: '192.168.254.0/24',
      // The test image is a blank disk, nothing boots on it to take a lease: define it, do not start it.
      TF_VAR_instance_state: 'shutoff',
    },
  });
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

before(async () => {
  lab = await startLab({ blades: 1, initialPower: 'on', firstPort: 9880 });
  blade = lab.blades[0]!;
  mkdirSync(project);
  const config = JSON.parse(readFileSync(join(REPO_DIR, 'cdktf.json'), 'utf8')) as { app: string };
  writeFileSync(join(project, 'cdktf.json'), JSON.stringify({ ...config, app: `tsx ${join(REPO_DIR, 'stacks', 'main.ts')}` }));
  const run = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { cwd: work, stdio: 'pipe' });
  run('qemu-img', 'create', '-q', '-f', 'qcow2', 'sys.img', '64M');
  writeFileSync(join(work, 'README'), 'A very simple and efficient test web server.\n');
  run('tar', '-czf', 'webserv.tgz', 'README', 'sys.img');
  channel = await publishTestChannel([
    {
      name: 'webserv',
      version: '1.0.0-0',
      label: 'Simple Web Server',
      base: null,
      image: { path: join(work, 'webserv.tgz'), sha256: sha256File(join(work, 'webserv.tgz')) },
      systemDiskFile: 'sys.img',
      disks: [
        { name: 'hda3', type: 'swap', sizeMib: 128 },
        { name: 'hda2', type: 'user', sizeMib: 96 },
      ],
      webpanel: '/upload.php',
      memoryMib: 128,
    },
  ]);
});

after(async () => {
  if (channel && blade && !destroyed) await cdktf('destroy', 'web-server', '--auto-approve', '--skip-provider-lock');
  await channel?.remove();
  await lab?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('cdktf deploy and destroy of the web-server stack', () => {
  test('cdktf deploy web-server --skip-provider-lock makes the Figure 2 instance on the blade, with its disks', async (t) => {
    const started = Date.now();
    const r = await cdktf('deploy', 'web-server', '--auto-approve', '--skip-provider-lock', '--outputs-file', join(work, 'outputs.json'));
    t.diagnostic(`cdktf deploy web-server: ${seconds(Date.now() - started)}`);
    assert.equal(r.exitCode, 0, r.all);
    assert.match(r.all ?? '', /Apply complete!/);
    const info = await virsh(blade.libvirtUri, 'dominfo', INSTANCE);
    assert.equal(info.exitCode, 0, info.output);
    assert.match(info.stdout, /State:\s+shut off/);
    const xml = (await virsh(blade.libvirtUri, 'dumpxml', INSTANCE)).stdout;
    assert.match(xml, new RegExp(`swap-${INSTANCE}_hda3`));
    assert.match(xml, new RegExp(`user-${INSTANCE}_hda2`));
    assert.match(xml, /<storm:webpanel>\/upload\.php<\/storm:webpanel>/);
    assert.equal((await virsh(blade.libvirtUri, 'net-info', NETWORK)).exitCode, 0, `network ${NETWORK} is on the blade`);
  });

  test('cdktf destroy web-server removes the instance, its swap disk and the network, and keeps its user disk (keep_user_disks)', async (t) => {
    const started = Date.now();
    const r = await cdktf('destroy', 'web-server', '--auto-approve', '--skip-provider-lock');
    t.diagnostic(`cdktf destroy web-server: ${seconds(Date.now() - started)}`);
    assert.equal(r.exitCode, 0, r.all);
    destroyed = true;
    assert.notEqual((await virsh(blade.libvirtUri, 'dominfo', INSTANCE)).exitCode, 0, 'the instance is gone');
    assert.notEqual((await virsh(blade.libvirtUri, 'net-info', NETWORK)).exitCode, 0, 'the network is gone');
    const volumes = (await virsh(blade.libvirtUri, 'vol-list', 'storm')).stdout;
    const left = volumes.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter((v) => v.includes(INSTANCE));
    assert.deepEqual(left, [`user-${INSTANCE}_hda2`], 'only the user disk stays, for the next instance of that name');
    assert.equal((await virsh(blade.libvirtUri, 'vol-delete', '--pool', 'storm', `user-${INSTANCE}_hda2`)).exitCode, 0);
    assert.ok(existsSync(join(project, 'terraform.web-server.tfstate')), 'the state is in the project directory');
  });
});
