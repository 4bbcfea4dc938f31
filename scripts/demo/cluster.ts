// The demo's cluster, as one long-running process (started detached by scripts/demo.ts): two lab
// blades, each a real libvirtd behind an ipmi_sim BMC (their BMCs die with this process, so it
// must outlive the command that started it); the channel site built from the mail appliance's
// definition and served on loopback; `storm controller run`; and the power model on the BMCs'
// sensors. It writes cluster.json once all of them answer, and on SIGTERM stops them all.
// Everything lives in build/demo/, so a cluster started again finds the same channel key,
// controller CA and blade disks.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { controllerRequest } from '../../provider/src/drivers/controller-api.ts';
import { readControllerDir } from '../../provider/src/controller/init.ts';
import { publishTestChannel } from '../../test/lib/channel.ts';
import { sha256File } from '../../test/lib/images.ts';
import { startLab } from '../../test/lib/lab.ts';
import { REPO_DIR } from '../../test/lib/terraform.ts';
import { startPowerModel } from './meter.ts';
import { BMC_FIRST_PORT, CHANNEL_PORT, CONTROLLER_PORT, paths, ROUND_SECONDS, type ClusterInfo } from './state.ts';

const STORM = join(REPO_DIR, 'build', 'bin', 'storm');
const GUEST = join(REPO_DIR, 'build', 'guest');
const img = (name: string) => ({ path: join(GUEST, name), sha256: sha256File(join(GUEST, name)) });
// Seconds between the controller's rounds: samples every 2 s make a minute of demo readable.

const say = (line: string) => console.log(`${new Date().toISOString().slice(11, 19)} ${line}`);

let stopping = false;
const cleanups: (() => Promise<void> | void)[] = [];
async function stopAll(code: number): Promise<never> {
  stopping = true;
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch((e: Error) => say(`stopping: ${e.message}`));
  rmSync(paths.cluster, { force: true });
  say('cluster stopped');
  process.exit(code);
}
process.on('SIGTERM', () => void stopAll(0));
process.on('SIGINT', () => void stopAll(0));

try {
  mkdirSync(paths.channel, { recursive: true });
  const channel = await publishTestChannel([{
    name: 'mail', version: '1.0', label: 'Mail appliance (OpenSMTPD)',
    description: 'OpenSMTPD 6.8 on storm\'s small Debian-kernel guest: takes mail for the deployment\'s domain (/etc/smtpd/domains) and discards it, as the paper\'s mail cluster did.',
    base: { name: 'testos', ...img('layers/base.qcow2') },
    image: img('layers/mail.qcow2'),
    boot: { kernel: img('vmlinuz'), initrd: img('initrd.gz'), cmdline: 'console=ttyS0 quiet panic=-1' },
  }], { dir: paths.channel, port: CHANNEL_PORT, publisher: 'storm demo publisher', imagesBeside: true });
  cleanups.push(() => channel.close());
  say(`channel: ${channel.feedUrl}`);

  const lab = await startLab({ blades: 2, initialPower: 'on', dir: paths.lab, firstPort: BMC_FIRST_PORT });
  cleanups.push(() => lab.stop());
  say(`blades: ${lab.blades.map((b) => `${b.name} (libvirt ${b.libvirtUri}, BMC ${b.bmc.address}:${b.bmc.port})`).join(', ')}`);
  cleanups.push(startPowerModel(lab, say));

  if (!existsSync(join(paths.controller, 'ca.pem'))) execFileSync(STORM, ['controller', 'init', '--dir', paths.controller, '--host', '127.0.0.1'], { stdio: 'inherit' });
  const files = await readControllerDir(paths.controller);
  const listen = `127.0.0.1:${CONTROLLER_PORT}`;
  const admin = { url: `https://${listen}`, token: files.adminToken, caPem: files.caPem };
  const log = createWriteStream(paths.controllerLog, { flags: 'a' });
  let controller: ChildProcess | null = null;
  // The controller is restarted if it dies: its exit is logged, never hidden, and the demo's
  // controller, like a service manager's, comes back.
  const run = () => {
    // Under pdeathsig, like the lab's BMCs: a cluster process that dies takes its controller along.
    const child = spawn('setpriv', ['--pdeathsig', 'TERM', STORM, 'controller', 'run', '--dir', paths.controller, '--listen', listen, '--interval', String(ROUND_SECONDS), '--id', 'demo'], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.pipe(log, { end: false });
    child.on('exit', (code, signal) => {
      if (stopping) return;
      say(`controller exited (${signal ?? `exit ${code}`}); restarting it in 2 s`);
      setTimeout(() => { if (!stopping) controller = run(); }, 2000);
    });
    return child;
  };
  controller = run();
  cleanups.push(async () => {
    const c = controller;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await Promise.race([exited, sleep(10_000)]);
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
  const deadline = Date.now() + 60_000;
  while ((await controllerRequest(admin, 'GET', 'v1/groups').then((r) => r.status, () => 0)) !== 200) {
    if (Date.now() > deadline) throw new Error(`the controller did not answer on ${admin.url} within 60 s; see ${paths.controllerLog}`);
    await sleep(500);
  }
  say(`controller: ${admin.url} (status page ${admin.url}/status)`);

  const info: ClusterInfo = {
    pid: process.pid,
    startedAt: new Date().toISOString(),
    blades: lab.blades,
    channel: { feedUrl: channel.feedUrl, publicKeyLine: channel.publicKeyLine, catalogUrl: channel.feedUrl.replace(/rss\.xml$/, '') },
    controller: { url: admin.url, dir: paths.controller },
  };
  writeFileSync(paths.cluster, `${JSON.stringify(info, null, 2)}\n`);
  say('cluster ready');
  setInterval(() => {}, 1 << 30);
} catch (e) {
  say(`cluster failed: ${(e as Error).message}`);
  await stopAll(1);
}
