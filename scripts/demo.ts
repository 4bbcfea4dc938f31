// npm run demo: the paper's experiment on this machine, in one command. A local cluster (two lab
// blades with BMCs, the channel site on loopback, the storm controller), the mail-cluster stack
// deployed with cdktf, then SMTP load on the group's DNS name: members are added, blade 2 is
// powered on over IPMI and given one, and when the load stops the group shrinks and blade 2 is
// powered off again. The cluster stays up afterwards (status page, catalog, blades) until
// `npm run demo -- --destroy`. Run again, it adopts what an earlier run left.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Resolver } from 'node:dns/promises';
import { get } from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ControllerConnection } from '../provider/src/drivers/controller-api.ts';
import { readControllerDir } from '../provider/src/controller/init.ts';
import { CHROMIUM } from '../test/lib/browser.ts';
import { ipmitool, type Blade } from '../test/lib/lab.ts';
import { SmtpSession, SteadyLoad } from '../test/lib/smtp-load.ts';
import { REPO_DIR, virsh } from '../test/lib/terraform.ts';
import { cdktf, terraform, writeProject } from './demo/cdktf.ts';
import { ensureCluster, stopCluster } from './demo/cluster-process.ts';
import { DOMAIN, FQDN, GROUP, MAX_MEMBERS, stackVars, thresholds } from './demo/inputs.ts';
import { DEMO_DIR, LANS, paths, ROUND_SECONDS } from './demo/state.ts';
import { DemoError, waitFor } from './demo/wait.ts';
import { chassis, leftOn, runningDomains, Watch } from './demo/watch.ts';

const USAGE = `usage: npm run demo [-- --destroy]

  (no option)   bring up the demo cluster (or adopt the one already up), deploy the stack
                mail-cluster with cdktf, run SMTP load on its DNS name and show the group
                grow onto blade 2 and shrink back. Leaves the cluster up.
  --destroy     cdktf destroy of mail-cluster, then stop the cluster and remove ${DEMO_DIR}
  --help        this text

Needs root and the README's install (bash scripts/install.sh). Everything it makes is under
${DEMO_DIR}; ports 127.0.0.1:8480 (channel), :9443 (controller), UDP 9601+ (BMCs),
127.0.0.11-12 (the blades' libvirtd) and the networks 192.168.160.0/24 and 192.168.161.0/24.`;

const STORM = join(REPO_DIR, 'build', 'bin', 'storm');

const t0 = Date.now();
const clock = () => {
  const s = Math.round((Date.now() - t0) / 1000);
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
};
const say = (line: string) => console.log(`[${clock()}] ${line}`);
const detail = (line: string) => console.log(`         ${line}`);
const step = (n: number, total: number, what: string) => console.log(`\n[${clock()}] ── ${n}/${total} ${what}`);

// ---- up ------------------------------------------------------------------------------------------

async function up(): Promise<void> {
  const total = 6;
  step(1, total, 'the mail appliance\'s images (the test guest, its base layer, the OpenSMTPD layer)');
  if (!existsSync(STORM)) throw new DemoError(`${STORM} is missing: run the README's install (bash scripts/install.sh) or npm run build first`);
  mkdirSync(DEMO_DIR, { recursive: true });
  for (const script of ['build-guest.sh', 'build-test-layers.sh', 'build-mail-layer.sh']) {
    const started = Date.now();
    try {
      execFileSync('bash', [join(REPO_DIR, 'scripts', script)], { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      const err = e as { stderr?: Buffer; stdout?: Buffer };
      throw new DemoError(`scripts/${script} failed:\n${`${err.stdout ?? ''}${err.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n')}`);
    }
    detail(`scripts/${script}: ready (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  }

  step(2, total, 'the cluster: two blades behind BMCs, the channel site, the controller');
  const c = await ensureCluster(say);
  const admin: ControllerConnection = { url: c.controller.url, token: '', caPem: '' };
  const files = await readControllerDir(c.controller.dir);
  admin.token = files.adminToken;
  admin.caPem = files.caPem;
  for (const b of c.blades) detail(`${b.name}: libvirt ${b.libvirtUri}, BMC ipmitool -I lanplus -C 3 -H ${b.bmc.address} -p ${b.bmc.port} -U ${b.bmc.username} -P ${b.bmc.password}`);
  detail(`channel:  ${c.channel.catalogUrl} (catalog), ${c.channel.feedUrl} (signed feed)`);
  detail(`controller: ${admin.url}; status page ${admin.url}/status (certificate from the demo's own CA, ${join(c.controller.dir, 'ca.pem')})`);

  const marks = thresholds();
  const vars = await stackVars(c, marks);
  writeProject();

  step(3, total, 'the plan, summarized as a pull request would show it (storm plan-summary)');
  const synth = await cdktf(['synth'], vars, () => {});
  if (synth.exitCode !== 0) throw new DemoError(`cdktf synth failed:\n${synth.tail.join('\n')}`);
  const init = await terraform(['init', '-input=false', '-no-color'], vars);
  if (init.exitCode !== 0) throw new DemoError(`terraform init failed:\n${init.tail.join('\n')}`);
  const planFile = join(DEMO_DIR, 'mail-cluster.tfplan');
  const plan = await terraform(['plan', '-input=false', '-no-color', `-out=${planFile}`], vars);
  if (plan.exitCode !== 0) throw new DemoError(`terraform plan failed:\n${plan.tail.join('\n')}`);
  const shown = await terraform(['show', '-json', planFile], vars);
  const summary = execFileSync(STORM, ['plan-summary', '-'], { input: shown.stdout, encoding: 'utf8' });
  writeFileSync(paths.planSummary, summary);
  for (const l of summary.split('\n').filter((l) => l && !l.startsWith('<!--'))) detail(l);

  step(4, total, 'cdktf deploy mail-cluster');
  detail(`policy: a member more when the members' CPU holds ≥ ${Math.round(marks.guest * 100)} % for 10 s; blade 2 on when blade 1 is ≥ ${Math.round(marks.host * 100)} % busy; off after 20 s empty`);
  detail(`thresholds: ${marks.why}`);
  const deploy = await cdktf(['deploy', 'mail-cluster', '--auto-approve', '--skip-provider-lock', '--outputs-file', join(DEMO_DIR, 'outputs.json')], vars, (l) => detail(l));
  if (deploy.exitCode !== 0) throw new DemoError(`cdktf deploy failed (log ${paths.deployLog}):\n${deploy.tail.slice(-20).join('\n')}`);

  const watch = new Watch(admin, c.blades, (reason) => detail(`controller: ${reason}`));
  await watch.decisions(false);
  const [blade1, blade2] = c.blades as [Blade, Blade];
  const resolver = new Resolver({ timeout: 2000, tries: 1 });
  resolver.setServers([`${LANS[0]}.1`]);
  const resolve = () => resolver.resolve4(FQDN);

  step(5, total, `the experiment: SMTP load on ${FQDN}`);
  // The timeline written at the end covers this run's experiment, not the cluster's whole life.
  const experimentFrom = Date.now() - 10_000;
  say('waiting for the group\'s first member to take mail');
  const first = await waitFor(`${FQDN} to resolve`, 240_000, async () => ((await resolve()).length ? resolve() : null), `see ${paths.controllerLog}`);
  await waitFor(`smtpd on ${first[0]}`, 180_000, async () => {
    const s = await SmtpSession.open({ host: first[0]!, timeoutMs: 5000 });
    await s.quit();
    return true;
  });
  say(`${FQDN} → ${first.join(', ')}: smtpd answers`);
  await watch.decisions();
  if ((await chassis(blade2)) === 'on') {
    say('blade 2 runs nothing: the controller powers it off after its 20 s hold');
    await waitFor('blade 2 powered off', 180_000, async () => {
      await watch.decisions();
      return (await chassis(blade2)) === 'off';
    });
  }
  say(await watch.line());

  const load = new SteadyLoad({ addresses: resolve, perAddress: 4, sizeBytes: 100 * 1024, from: 'loadgen@example.org', to: `user@${DOMAIN}` });
  const loadOn = Date.now();
  load.start();
  say('load on: 4 SMTP sessions per address the name resolves to, 100 KiB messages back to back');
  let lastLine = 0;
  let reached: number | null = null;
  try {
    await waitFor(`${MAX_MEMBERS} members with one on blade 2`, 15 * 60_000, async () => {
      await watch.decisions();
      if (Date.now() - lastLine >= 10_000) {
        lastLine = Date.now();
        say(await watch.line(load, loadOn));
      }
      const g = await watch.group();
      const onBlade2 = (await runningDomains(blade2)).some((n) => n.startsWith(`${GROUP}-`));
      if (g && g.members.length >= MAX_MEMBERS && onBlade2) reached ??= Date.now();
      // Held a little, so the timeline shows the three members working.
      return reached !== null && Date.now() - reached > 30_000;
    }, `the controller log is ${paths.controllerLog}`);
  } finally {
    await load.stop();
  }
  say(`load off after ${Math.round((Date.now() - loadOn) / 1000)} s: ${load.total} messages accepted${load.failed ? `, ${load.failed} sessions failed (last: ${load.lastError})` : ''}`);
  say(await watch.line());
  const loadOff = Date.now();
  await waitFor('the group back at one member and blade 2 off', 10 * 60_000, async () => {
    await watch.decisions();
    if (Date.now() - lastLine >= 10_000) {
      lastLine = Date.now();
      say(await watch.line());
    }
    const g = await watch.group();
    return g !== null && g.members.length === 1 && (await chassis(blade2)) === 'off';
  }, `the controller log is ${paths.controllerLog}`);
  say(`back to one member on ${blade1.name}, blade 2 off, ${Math.round((Date.now() - loadOff) / 1000)} s after the load stopped`);
  say(await watch.line());
  watch.writeLog();

  step(6, total, 'the timeline (the paper\'s Figure 5), the simulator\'s replay and the status page');
  // The group's member count is sampled at the start of a round: two more rounds draw the last step.
  await sleep(5000);
  // The simulator replays what the controller recorded through the same policy functions: its
  // decisions must be the live ones, each within one round.
  const replayed = spawnSync(STORM, ['controller', 'replay', '--db', join(paths.controller, 'controller.db'), '--group', GROUP, '--interval', String(ROUND_SECONDS)], { encoding: 'utf8' });
  const [out, err] = [(replayed.stdout ?? '').trim(), (replayed.stderr ?? '').trim()];
  writeFileSync(paths.replay, `${out}\n${err}\n`);
  // Its verdict is the report's last line; without a report, what it said on stderr.
  say(`replay: ${out.split('\n').at(-1) || err || `storm controller replay did not run (${replayed.error?.message ?? `exit ${replayed.status}`})`}`);
  const svg = await fetchText(`${admin.url}/status/timeline.svg?from=${experimentFrom}`, admin.caPem);
  writeFileSync(paths.timeline, svg);
  const shot = await screenshot(`${admin.url}/status`).catch((e: Error) => `not taken (${e.message.split('\n')[0]})`);
  console.log(`
storm demo: done in ${clock()}.
  status page     ${admin.url}/status   (live; its CA: ${join(c.controller.dir, 'ca.pem')})
  timeline        ${paths.timeline}   (Watts per blade, members over time; live at ${admin.url}/status/timeline.svg)
  status picture  ${shot}
  decisions       ${paths.decisions}
  replay          ${paths.replay}   (the simulator's decisions on the recorded load, beside the controller's)
  plan summary    ${paths.planSummary}
  catalog         ${c.channel.catalogUrl}
  logs            ${paths.clusterLog}, ${paths.controllerLog}, ${paths.deployLog}
The cluster stays up: run the load again with npm run demo, tear everything down with
npm run demo -- --destroy.`);
}

function fetchText(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, { ca }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => { text += d.toString(); });
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`${url}: HTTP ${res.statusCode}`))));
    }).on('error', reject);
  });
}

async function screenshot(url: string): Promise<string> {
  if (!existsSync(CHROMIUM)) return `not taken (${CHROMIUM} is not installed)`;
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
  try {
    // The page is the demo CA's; the browser does not know that CA.
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 }, ignoreHTTPSErrors: true });
    await page.goto(url);
    await page.screenshot({ path: paths.statusShot, fullPage: true });
    return paths.statusShot;
  } finally {
    await browser.close();
  }
}

// ---- destroy -------------------------------------------------------------------------------------

async function destroy(): Promise<void> {
  if (!existsSync(DEMO_DIR)) {
    say(`nothing to destroy: ${DEMO_DIR} does not exist`);
    return;
  }
  const state = join(paths.project, 'terraform.mail-cluster.tfstate');
  const deployed = existsSync(state) && (JSON.parse(readFileSync(state, 'utf8')) as { resources?: unknown[] }).resources?.length;
  if (deployed) {
    step(1, 3, 'the cluster (destroy needs both blades answering)');
    const c = await ensureCluster(say);
    const vars = await stackVars(c, thresholds());
    writeProject();
    // Blade 2 must run for its layers to be removed, and stay on while they are: the group's
    // hold is made long before it is powered on, so the controller leaves it on until the group goes.
    step(2, 3, 'cdktf destroy mail-cluster');
    const hold = await cdktf(['deploy', 'mail-cluster', '--auto-approve', '--skip-provider-lock'], { ...vars, empty_hold_seconds: 86_400 }, () => {});
    if (hold.exitCode !== 0) throw new DemoError(`cdktf deploy (holding blade 2 on) failed (log ${paths.deployLog}):\n${hold.tail.slice(-20).join('\n')}`);
    const blade2 = c.blades[1]!;
    if ((await chassis(blade2)) !== 'on') {
      say('powering blade 2 on over IPMI');
      await ipmitool(blade2.bmc, 'chassis', 'power', 'on');
      await waitFor('blade 2\'s libvirt', 120_000, async () => (await virsh(blade2.libvirtUri, 'version')).exitCode === 0);
    }
    const r = await cdktf(['destroy', 'mail-cluster', '--auto-approve', '--skip-provider-lock'], vars, (l) => detail(l));
    if (r.exitCode !== 0) throw new DemoError(`cdktf destroy failed (log ${paths.deployLog}); the cluster is left up so you can run npm run demo -- --destroy again:\n${r.tail.slice(-20).join('\n')}`);
    for (const b of c.blades) {
      const left = [...(await leftOn(b, 'list', '--all', '--name')), ...(await leftOn(b, 'net-list', '--all', '--name')), ...(await leftOn(b, 'pool-list', '--all', '--name'))];
      say(left.length ? `left on ${b.name}: ${left.join(', ')}` : `${b.name}: no domain, network or pool left`);
    }
  }
  step(deployed ? 3 : 1, deployed ? 3 : 1, `stopping the cluster and removing ${DEMO_DIR}`);
  await stopCluster();
  rmSync(DEMO_DIR, { recursive: true, force: true });
  say(`removed ${DEMO_DIR}`);
}

// ---- main ----------------------------------------------------------------------------------------

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  console.log(USAGE);
  process.exit(0);
}
const unknown = args.filter((a) => a !== '--destroy');
if (unknown.length) {
  console.error(`npm run demo: unknown argument ${unknown.map((a) => JSON.stringify(a)).join(', ')}\n${USAGE}`);
  process.exit(2);
}
if (process.getuid?.() !== 0) {
  console.error('npm run demo: needs root (the lab blades use namespaces and mounts, like npm test)');
  process.exit(2);
}
try {
  if (args.includes('--destroy')) await destroy();
  else await up();
  process.exit(0);
} catch (e) {
  const message = e instanceof Error ? e.message : String(e);
  console.error(`\nnpm run demo${args.length ? ` ${args.join(' ')}` : ''}: ${message}`);
  console.error(`logs: ${paths.clusterLog}, ${paths.controllerLog}, ${paths.deployLog}`);
  process.exit(1);
}
