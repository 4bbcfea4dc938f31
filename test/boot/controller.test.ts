// The paper's Figure 5, for real: `storm controller` runs a scaling group of the test guest on two
// lab blades behind ipmi_sim BMCs, blade 2 powered off. A burner inside the guests (switched from
// here over HTTP: the seed's /etc/storm/burn-url) loads the members; the controller adds a
// member, powers blade 2 on over IPMI when blade 1 passes its threshold and places the next
// member there; the group's name resolves to its members on the network's DNS. Switched off,
// the group shrinks to min and blade 2 is powered off after its hold. Killed in the middle of a
// scale-out, the controller comes back with nothing duplicated or lost; with blade 2's BMC
// unplugged it keeps scaling on blade 1 and its status page says why it cannot power more.
// Reaction times and the decision log are printed.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, type WriteStream } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { get } from 'node:https';
import { Resolver } from 'node:dns/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { controllerRequest, type ControllerConnection, type WireGroupView } from '../../provider/src/drivers/controller-api.ts';
import { readControllerDir } from '../../provider/src/controller/init.ts';
import { sha256File } from '../lib/images.ts';
import { launchChromium } from '../lib/browser.ts';
import { applianceFromChannelHcl, publishTestChannel, type TestChannel } from '../lib/channel.ts';
import { bladeServerHcl, startLab, type Blade, type Lab } from '../lib/lab.ts';
import { PROVIDER_BLOCK, REPO_DIR, TerraformDir, virsh } from '../lib/terraform.ts';

const GUEST = join(REPO_DIR, 'build', 'guest');
const STORM = join(REPO_DIR, 'build', 'bin', 'storm');
const RESULTS = join(REPO_DIR, 'test-results');
const img = (name: string) => ({ path: join(GUEST, name), sha256: sha256File(join(GUEST, name)) });
// Blade 1's network: the burner server is reached at its gateway from every member.
const LAN1 = '192.168.243';
const LAN2 = '192.168.244';
// The scale-out cooldown (40 s) lets blade 2 power on before the third member is placed; the
// 10 s window and 45 s scale-in cooldown keep a few starved samples (a busy machine) from
// removing a member mid-test.
// Thresholds under the paper's 0.9: this machine's 2 cores also run terraform, the controller,
// QEMU's own threads and, in CI, whatever else runs; two burning TCG guests on 2 cores measure
// 75-100 % each, three share 2 cores (~66 % each). The group's mark must hold with two (0.6) and
// blade 1 must pass its mark with two burning (0.75) for the run to show each step every time.
const GUEST_HIGH = 0.6;
const HOST_HIGH = 0.75;
const INTERVAL = 2;

const work = mkdtempSync(join(tmpdir(), 'storm-controller-boot-'));
const tf = new TerraformDir();
let lab: Lab;
let blade1: Blade;
let blade2: Blade;
let channel: TestChannel;
let admin: ControllerConnection;
let controller: ChildProcess | null = null;
let controllerLog: WriteStream;
const logLines: string[] = [];
const figures: string[] = [];
let burning = false;
let bmc2Unplugged = false;
let meter: NodeJS.Timeout | null = null;

/**
 * A power model for the lab's BMC sensors, so the timeline shows what Figure 5 does: a blade
 * draws 100 W idle, 8 W more per guest and 40 W more per guest burning a CPU.
 */
async function meterWatts(): Promise<void> {
  for (const blade of [blade1, blade2]) {
    if (blade === blade2 && bmc2Unplugged) continue;
    const running = (await domains(blade)).filter((d) => d.state === 'running').length;
    if (running === 0 && blade === blade2) continue;
    await lab.setWatts(blade, 100 + running * (burning ? 48 : 8)).catch(() => {});
  }
}
let burnServer: Server;
let listen = '';

function startController(): ChildProcess {
  const child = spawn(STORM, ['controller', 'run', '--dir', join(work, 'ctl'), '--listen', listen, '--interval', String(INTERVAL), '--id', `boot-${Date.now()}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let rest = '';
  child.stderr!.on('data', (d: Buffer) => {
    controllerLog.write(d);
    rest += d.toString();
    const lines = rest.split('\n');
    rest = lines.pop()!;
    logLines.push(...lines);
  });
  controller = child;
  // However this run ends, no controller outlives it.
  process.once('exit', () => child.kill('SIGKILL'));
  return child;
}

async function stopController(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const c = controller;
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once('exit', r));
  c.kill(signal);
  await exited;
  controller = null;
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | null | undefined | false>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => null);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}; controller log tail:\n${logLines.slice(-30).join('\n')}`);
    await sleep(500);
  }
}

async function domains(blade: Blade): Promise<{ name: string; state: string }[]> {
  const r = await virsh(blade.libvirtUri, 'list', '--all');
  if (r.exitCode !== 0) return [];
  // virsh -q: no header, rows of "ID NAME STATE" (ID is - when shut off).
  return r.stdout.split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f.length >= 3 && f[1]!.startsWith('web-')).map((f) => ({ name: f[1]!, state: f.slice(2).join(' ') }));
}

async function group(): Promise<WireGroupView> {
  const r = await controllerRequest<WireGroupView>(admin, 'GET', 'v1/groups/web');
  if (!r.body) throw new Error('the controller has no group web');
  return r.body;
}

async function runningOn(blade: Blade, name: string): Promise<boolean> {
  return (await domains(blade)).some((d) => d.name === name && d.state === 'running');
}

function hcl(withGroup: boolean): string {
  const app1 = applianceFromChannelHcl(channel.feedUrl, 'mail', 'storm_appliance_server.blade1.id');
  const app2 = app1.replace(/data "storm_appliance" "mail" \{[^}]*\}\n/, '').replace('resource "storm_appliance" "mail"', 'resource "storm_appliance" "mail2"').replace('storm_appliance_server.blade1.id', 'storm_appliance_server.blade2.id');
  const ctl = join(work, 'ctl');
  return `
provider "storm" {
  trusted_keys = ["${channel.publicKeyLine}"]
  controller {
    url    = "${admin.url}"
    token  = trimspace(file("${join(ctl, 'admin-token')}"))
    ca_pem = file("${join(ctl, 'ca.pem')}")
  }
}
${bladeServerHcl(blade1, '  accelerator = "tcg"')}
${bladeServerHcl(blade2, '  accelerator = "tcg"\n  power       = "controller"')}
${app1}
${app2}
resource "storm_deployment" "web1" {
  appliance = storm_appliance.mail.id
  name      = "web"
}
resource "storm_deployment" "web2" {
  appliance = storm_appliance.mail2.id
  name      = "web"
}
resource "storm_network" "lan1" {
  server = storm_appliance_server.blade1.id
  name   = "lan"
  cidr   = "${LAN1}.0/24"
}
resource "storm_network" "lan2" {
  server = storm_appliance_server.blade2.id
  name   = "lan"
  cidr   = "${LAN2}.0/24"
}
${withGroup ? `
resource "storm_scaling_group" "web" {
  name                 = "web"
  deployments          = [storm_deployment.web1.id, storm_deployment.web2.id]
  network              = "lan"
  memory_mib           = 160
  vcpus                = 1
  min                  = 1
  max                  = 3
  guest_cpu_high       = ${GUEST_HIGH}
  guest_cpu_low        = 0.3
  window_seconds       = 10
  cooldown_out_seconds = 40
  cooldown_in_seconds  = 45
  # The paper's one member at a time, both ways: this suite follows Figure 5's steps (a second
  # member, then blade 2 powered on and given the third, then one member less at a time).
  scale_out_target     = 0
  scale_in_target      = 0
  dns_name             = "web"
  services             = ["http"]
  file {
    path    = "/etc/storm/burn-url"
    content = "http://${LAN1}.1:${(burnServer.address() as AddressInfo).port}/burn/$\${member}\\n"
  }
  host_power {
    host_cpu_high        = ${HOST_HIGH}
    min_servers_on       = 1
    empty_hold_seconds   = 20
    default_boot_seconds = 5
  }
  depends_on = [storm_network.lan1, storm_network.lan2]
}
` : ''}`;
}

before(async () => {
  execFileSync('bash', [join(REPO_DIR, 'scripts', 'build-guest.sh')], { stdio: 'inherit' });
  execFileSync('bash', [join(REPO_DIR, 'scripts', 'build-test-layers.sh')], { stdio: 'inherit' });
  mkdirSync(RESULTS, { recursive: true });
  controllerLog = createWriteStream(join(RESULTS, 'controller-boot.log'));
  channel = await publishTestChannel([{
    name: 'mail', version: '1.0', label: 'Mail appliance',
    base: { name: 'testos', ...img('layers/base.qcow2') },
    image: img('layers/appliance.qcow2'),
    boot: { kernel: img('vmlinuz'), initrd: img('initrd.gz'), cmdline: 'console=ttyS0 quiet panic=-1' },
  }]);
  burnServer = createServer((req, res) => res.end(burning && req.url?.startsWith('/burn/') ? 'on\n' : 'off\n'));
  await new Promise<void>((r) => burnServer.listen(0, '0.0.0.0', r));
  lab = await startLab({ blades: 2, initialPower: 'on' });
  [blade1, blade2] = lab.blades as [Blade, Blade];
  let metering = false;
  meter = setInterval(() => {
    if (metering) return;
    metering = true;
    void meterWatts().finally(() => { metering = false; });
  }, 3000);
  execFileSync(STORM, ['controller', 'init', '--dir', join(work, 'ctl'), '--host', '127.0.0.1']);
  const files = await readControllerDir(join(work, 'ctl'));
  const port = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const p = (probe.address() as AddressInfo).port;
      probe.close(() => resolve(p));
    });
  });
  listen = `127.0.0.1:${port}`;
  admin = { url: `https://${listen}`, token: files.adminToken, caPem: files.caPem };
  startController();
  await waitFor('the controller API', 20_000, async () => (await controllerRequest(admin, 'GET', 'v1/groups')).status === 200);
  tf.write(hcl(false), 'main.tf', PROVIDER_BLOCK);
  await tf.init();
});

after(async () => {
  burning = false;
  if (meter) clearInterval(meter);
  await stopController('SIGKILL');
  // Destroy needs every server answering: blade 2 on, its BMC unplugged or not.
  await lab?.startBmc(blade2).catch(() => {});
  await lab?.setPower(blade2, true).catch(() => {});
  startController();
  const destroyed = await tf.destroy();
  if (destroyed.exitCode !== 0) console.log(`# destroy failed (exit ${destroyed.exitCode}):\n${destroyed.output.split('\n').map((l) => `#   ${l}`).join('\n')}`);
  await stopController();
  tf.remove();
  await lab?.stop();
  await channel?.remove();
  burnServer?.close();
  controllerLog?.end();
  rmSync(work, { recursive: true, force: true });
});

test('the stack applies on two blades; blade 2 is then powered off, its power left to the controller', async () => {
  const r = await tf.apply();
  assert.equal(r.exitCode, 0, r.output);
  await lab.setPower(blade2, false);
  assert.equal(await lab.power(blade2), 'off');
  const plan = await tf.plan('-detailed-exitcode');
  assert.equal(plan.exitCode, 0, `a powered-off controller-managed server plans no change:\n${plan.output}`);
  assert.match(plan.output, /does not answer: kept what storm last knew/);
});

test('the scaling group starts with its minimum: one member, on the powered blade', async () => {
  tf.write(hcl(true), 'main.tf', PROVIDER_BLOCK);
  const r = await tf.apply();
  assert.equal(r.exitCode, 0, r.output);
  await waitFor('web-0 running on blade1', 120_000, () => runningOn(blade1, 'web-0'));
  const g = await group();
  assert.deepEqual(g.members.map((m) => m.name), ['web-0']);
});

test('load on the guest: a second member, then blade 2 powered on over IPMI and given the third', async () => {
  // Booted far enough to poll the burner switch: its DHCP lease and the first samples.
  await sleep(15_000);
  const t0 = Date.now();
  burning = true;
  await waitFor('a scale-out decision on load', 120_000, async () => logLines.find((l) => /scale out web: cpu/.test(l)));
  // When the pass decided (the decision's time), not when its line was written (after the member was made).
  const decisions = (await controllerRequest<{ at: number; reason: string }[]>(admin, 'GET', 'v1/decisions?subject=web&limit=20')).body ?? [];
  const decided = decisions.find((d) => /scale out web: cpu/.test(d.reason))!.at;
  await waitFor('web-1 running', 180_000, async () => (await runningOn(blade1, 'web-1')) || (await runningOn(blade2, 'web-1')));
  const running1 = Date.now();
  figures.push(`load switched on → scale-out decided: ${((decided - t0) / 1000).toFixed(1)} s (the guest polls its switch every 2 s; the first rate needs two samples ${INTERVAL} s apart; the load must then hold 10 s)`);
  figures.push(`scale-out decided → web-1's domain running: ${((running1 - decided) / 1000).toFixed(1)} s (goal ≤ 5 s); load switched on → running: ${((running1 - t0) / 1000).toFixed(1)} s`);
  assert.ok(await runningOn(blade1, 'web-1'), 'blade 2 is off: the second member goes to blade 1');

  // The group's name on the network's own DNS: both members, round-robin, and its SRV record.
  const resolver = new Resolver({ timeout: 2000, tries: 1 });
  resolver.setServers([`${LAN1}.1`]);
  const both = await waitFor('web to resolve to both members', 60_000, async () => {
    const a = await resolver.resolve4('web.storm.internal');
    return a.length === 2 ? a : null;
  });
  assert.ok(both.every((ip) => ip.startsWith(`${LAN1}.`)), both.join(', '));
  const srv = await resolver.resolveSrv('_http._tcp.web.storm.internal');
  assert.deepEqual(srv.map((r) => [r.name, r.port]), [['web.storm.internal', 80]]);
  figures.push(`web.storm.internal → ${both.join(', ')} (A, round-robin); _http._tcp → web.storm.internal:80 (SRV)`);

  await waitFor('blade 2 powered on by the controller', 180_000, async () => (await lab.power(blade2)) === 'on');
  const poweredOn = Date.now();
  figures.push(`web-1 running → blade 2 powered on (blade 1 ≥ ${HOST_HIGH * 100} %): ${((poweredOn - running1) / 1000).toFixed(1)} s`);
  // The decision is logged once the BMC has acted: a moment after the chassis is seen on.
  await waitFor('the power-on decision in the log', 20_000, async () => logLines.some((l) => new RegExp(`power on blade2 \\(web\\): every powered server ≥ ${HOST_HIGH * 100} %`).test(l)));

  // Killed in the middle of the next scale-out (its domain reserved on blade 2, nothing more):
  // restarted, it finishes that member — no twin, nothing lost.
  await waitFor('the third member placed', 120_000, async () => logLines.find((l) => /placed instance.*"web-2"/.test(l)));
  await stopController('SIGKILL');
  const atKill = [...(await domains(blade1)), ...(await domains(blade2))].map((d) => d.name).sort();
  startController();
  await waitFor('web-2 running on blade 2', 240_000, () => runningOn(blade2, 'web-2'));
  const all = [...(await domains(blade1)), ...(await domains(blade2))].map((d) => d.name).sort();
  assert.deepEqual(all, ['web-0', 'web-1', 'web-2'], `after the restart (at the kill: ${atKill.join(', ')})`);
  assert.deepEqual((await group()).members.map((m) => m.name), ['web-0', 'web-1', 'web-2']);
  figures.push(`blade 2 on → web-2 running there (with a controller SIGKILL mid scale-out and a restart): ${((Date.now() - poweredOn) / 1000).toFixed(1)} s`);

  const plan = await tf.plan('-detailed-exitcode');
  assert.equal(plan.exitCode, 0, `Terraform owns the policy, the controller the count: no change after scaling\n${plan.output}`);
});

test('load off: the group shrinks to its minimum, newest first, and blade 2 is powered off after its hold', async () => {
  const t0 = Date.now();
  burning = false;
  await waitFor('the group back at min', 300_000, async () => (await group()).members.length === 1);
  const shrunk = Date.now();
  assert.deepEqual((await group()).members.map((m) => m.name), ['web-0'], 'the newest go first');
  figures.push(`load off → back to 1 member: ${((shrunk - t0) / 1000).toFixed(1)} s (window 10 s, cooldown in 45 s per step)`);
  await waitFor('blade 2 powered off', 180_000, async () => (await lab.power(blade2)) === 'off');
  figures.push(`back to 1 member → blade 2 off: ${((Date.now() - shrunk) / 1000).toFixed(1)} s (it had been empty since web-2 left; hold 20 s)`);
});

test('blade 2\'s BMC unplugged: the group scales within blade 1, and the status page says why it cannot power more', async (t) => {
  bmc2Unplugged = true;
  await lab.stopBmc(blade2);
  burning = true;
  await waitFor('web-1 on blade 1 again', 240_000, () => runningOn(blade1, 'web-1'));
  await waitFor('a power decision naming the silent BMC', 240_000, async () => logLines.find((l) => /no server is left to power on \(blade2: BMC not answering\)/.test(l)));
  const html = await new Promise<string>((resolve, reject) => {
    get(`${admin.url}/status`, { ca: admin.caPem }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => { text += d.toString(); });
      res.on('end', () => resolve(text));
    }).on('error', reject);
  });
  assert.match(html, /BMC not answering/);
  const browser = await launchChromium(t);
  if (browser) {
    // The controller's CA is not the browser's; the page's content is what is checked here.
    const p = await browser.newPage({ viewport: { width: 1280, height: 1000 }, ignoreHTTPSErrors: true });
    await p.goto(`${admin.url}/status`);
    assert.ok(await p.getByText('Cannot power more servers').isVisible());
    const shot = join(RESULTS, 'controller-status-e2e.png');
    await p.screenshot({ path: shot, fullPage: true });
    figures.push(`status page screenshot: ${shot}`);
  }
  burning = false;
  await lab.startBmc(blade2);
  bmc2Unplugged = false;
});

test('figures and the decision log', async () => {
  const decisions = await controllerRequest<{ at: number; reason: string }[]>(admin, 'GET', 'v1/decisions?limit=200');
  const log = (decisions.body ?? []).reverse().map((d) => `${new Date(d.at).toISOString().slice(11, 19)} ${d.reason}`);
  console.log(['', '# controller e2e figures', ...figures.map((f) => `#   ${f}`), '# decision log (oldest first)', ...log.map((l) => `#   ${l}`)].join('\n'));
  assert.ok(log.some((l) => /scale out web/.test(l)) && log.some((l) => /scale in web/.test(l)) && log.some((l) => /power on blade2/.test(l)) && log.some((l) => /power off blade2/.test(l)), log.join('\n'));
});
