// The controller (`storm controller run`): printed, never asserted. Three figures, each beside
// what a user would otherwise run, measured in the same run:
//
// 1. Reaction: from the group's load crossing its threshold to the new member's domain running
//    (libvirt's state; the guest's own boot comes after and is not counted). On one lab blade
//    (test/lib/lab.ts, TCG) with a storm_appliance_server, a small test appliance, a
//    storm_deployment and a storm_network applied by terraform, the controller's own code runs
//    in this process: a scaling group in an SQLite store, its load written into the store as the
//    sampler would (a sample below the threshold, then two at 95 % 5 s apart: the second, at t0,
//    completes the policy's 5 s window: the crossing), then one Rounds.once (what the controller
//    runs every interval: the lead, the sampler's round, the group's pass that makes the member,
//    the power pass) while a poller asks libvirt for the member's state every 50 ms. Median and
//    range over BENCH_CONTROLLER_SCALE_OUTS scale-outs (the member removed between them).
//    The policy's hold window (60 s by default) is the user's choice against churn and is not
//    counted; the round interval is: the crossing waits for the next round's sample, 0 to one
//    interval (3 s by default), so the printed worst case adds one interval.
//    Baseline: what the user would do by hand, `terraform apply` of the same configuration with
//    one storm_instance of the same shape added (same deployment, 64 MiB, 1 vCPU, network, file
//    template; ip_wait_seconds = 0, as the controller waits for no lease either), timed from
//    spawning terraform to the same poller seeing the domain running; removed by another apply
//    (not timed) between runs. That baseline still runs storm's provider; the one without storm is
//    an operator's bash script with libvirt's own tools (byHandFrom: a member's XML as template,
//    an overlay by vol-create-as --backing-vol, a genisoimage seed, define, start). Alternating
//    controller, terraform, script.
// 2. Memory with 1000 members: a child process of its own (bench/controller-child.ts, bundled by
//    esbuild as the provider's build bundles storm, run by the same Node) opens an SQLite store
//    holding 1000 members in 20 groups whose deployments name 10 servers that do not answer
//    (qemu+tcp://127.0.1.N:1/system: connection refused, so the passes keep the members "on a
//    server that did not answer" and the sampler reads nothing), with BENCH_CONTROLLER_HOURS of
//    samples at the default 3 s interval (each member's cpu and cpu_seconds, each group's cpu,
//    cpu_seconds and member count, each server's cpu and watts), and runs
//    BENCH_CONTROLLER_ROUNDS rounds back to back (the real Rounds.once) plus the status page
//    after each. Printed: its VmHWM and VmRSS after the rounds (/proc/self/status), the store's
//    size. Baseline: a bare `node -e` of the same Node printing its own VmHWM; ratio.
// 3. CPU per round: in that child, process.cpuUsage() (user + system, all its threads) per
//    round and per page, median and p90 (and max: the first round also prunes old samples,
//    which scans the samples table). On the lab blade, with BENCH_CONTROLLER_GUESTS running
//    members (TCG guests of the blank test appliance; 8 by default, since more TCG guests
//    swamp this 2-core machine), the wall time and CPU of CpuSampler.sampleRound and of
//    runGroupPass over them (the node process's CPU, plus the blade libvirtd's from
//    /proc/PID/stat). Baseline: `virsh -c URI domstats --cpu-total`, what an operator's script
//    would run each round, spawned from node the same number of times: its wall time, the CPU of
//    node and the virsh process (cutime/cstime) and of the blade's libvirtd; ratio.
//
// Lab: run as root, with scripts/install-system.sh's tools; STORM_LAB_ADDRESS_BASE moves the
// blade's address when another lab runs; BENCH_CONTROLLER_LAB=0 runs only the child (2, 3a).
// Everything made (lab, domains, volumes, networks, stores, temp dirs) is removed, also on failure.
// Alone: `npm run bench -- controller`.
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { Logger } from '../provider/src/contract.ts';
import { GROUP_CPU, runGroupPass, type PassContext } from '../provider/src/controller/group-pass.ts';
import { Rounds } from '../provider/src/controller/main.ts';
import { WATTS } from '../provider/src/controller/power-pass.ts';
import { CPU, CPU_SECONDS, CpuSampler, GROUP_CPU_SECONDS, MEMBERS } from '../provider/src/controller/sampler.ts';
import { StatusBoard } from '../provider/src/controller/status.ts';
import { openSqliteStore } from '../provider/src/controller/store-sqlite.ts';
import type { ControllerStore, GroupRecord, SampleRecord } from '../provider/src/controller/store.ts';
import { getDomain, listDomains } from '../provider/src/drivers/domains.ts';
import { removeInstance } from '../provider/src/host/instances.ts';
import { HostSession } from '../provider/src/host/session.ts';
import { DEFAULT_POWER } from '../provider/src/policy/power.ts';
import { DEFAULT_SCALING } from '../provider/src/policy/scaling.ts';
import { localApplianceHcl, makeTestLayers, type TestLayers } from '../test/lib/images.ts';
import { bladeServerHcl, startLab, type Blade, type Lab } from '../test/lib/lab.ts';
import { REPO_DIR, TerraformDir, resources, virsh } from '../test/lib/terraform.ts';
import type { ChildReport } from './controller-child.ts';
import { median, ms } from './plan.ts';

const SCALE_OUTS = Number(process.env.BENCH_CONTROLLER_SCALE_OUTS ?? 5);
const GUESTS = Number(process.env.BENCH_CONTROLLER_GUESTS ?? 8);
const SAMPLING_ROUNDS = Number(process.env.BENCH_CONTROLLER_SAMPLING_ROUNDS ?? 10);
const SIM_MEMBERS = Number(process.env.BENCH_CONTROLLER_MEMBERS ?? 1000);
const SIM_GROUPS = Number(process.env.BENCH_CONTROLLER_GROUPS ?? 20);
const SIM_SERVERS = 10;
const SIM_HOURS = Number(process.env.BENCH_CONTROLLER_HOURS ?? 2);
const SIM_ROUNDS = Number(process.env.BENCH_CONTROLLER_ROUNDS ?? 20);
const WITH_LAB = process.env.BENCH_CONTROLLER_LAB !== '0';
const INTERVAL_S = 3; // storm controller run's default --interval
const POLL_MS = 50;
/** A /24 no other lab of this machine uses (test/e2e uses 192.168.24x). */
const CIDR = '192.168.250.0/24';
const NETWORK = 'benchlan';
const CLK_TCK = 100;

const p90 = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(0.9 * xs.length) - 1)]!;
const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;
const secs = (x: number) => `${(x / 1000).toFixed(2)} s`;
const range = (xs: readonly number[], f: (x: number) => string) => `${f(median(xs))} (min ${f(Math.min(...xs))}, max ${f(Math.max(...xs))}, n=${xs.length})`;

export async function benchController(): Promise<void> {
  await benchSimulated();
  if (WITH_LAB) await benchOnLab();
  else console.log('\ncontroller on a lab blade: skipped (BENCH_CONTROLLER_LAB=0)');
}

// ---- 2 and 3a: 1000 simulated members in a child process ----

const simServer = (k: number) => ({ name: `s${k}`, uri: `qemu+tcp://127.0.1.${k}:1/system` });

/** The simulated servers must refuse connections, or the passes would talk to something real. */
async function refuses(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => { s.destroy(); resolve(false); });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

/** A deterministic value in [lo, hi): the same store every run. */
const wobble = (seed: number, lo: number, hi: number) => lo + (hi - lo) * ((Math.sin(seed * 12.9898) * 43758.5453) % 1 + 1) % 1;

/**
 * The store a controller would have after SIM_HOURS with these groups: groups, members and
 * decisions through the store's own API; the samples, rounds in time order as the sampler
 * writes them, through a second connection with a large page cache and no fsync (a fixture:
 * the rows are the same, built ~2× faster).
 */
async function buildSimulatedStore(path: string, end: number): Promise<{ samples: number; decisions: number }> {
  const store = await openSqliteStore(path);
  const perGroup = Math.ceil(SIM_MEMBERS / SIM_GROUPS);
  const groups: { name: string; members: { name: string; server: string }[] }[] = [];
  const rounds = Math.floor((SIM_HOURS * 3600) / INTERVAL_S);
  let decisions = 0;
  try {
    let made = 0;
    for (let g = 0; g < SIM_GROUPS; g++) {
      const name = `grp${String(g).padStart(2, '0')}`;
      const servers = [simServer((g % SIM_SERVERS) + 1), simServer(((g + 1) % SIM_SERVERS) + 1)];
      const group: GroupRecord = {
        name,
        policy: { ...DEFAULT_SCALING, min: 1, max: 1000 },
        shape: { deployments: servers.map((s) => `dep-web@${s.name}@${s.uri}`), memoryMib: 512, vcpus: 1, network: 'lan', variables: {}, files: [{ path: '/etc/motd', content: 'I am ${member}\n', permissions: '0644' }], services: [], placement: 'spread' },
        dnsName: `${name}.example.org`,
        metric: 'cpu',
        power: DEFAULT_POWER,
        deleting: false,
        lastScaleOutAt: end - 3600_000,
        lastScaleInAt: null,
      };
      await store.putGroup(group);
      const members: { name: string; server: string }[] = [];
      for (let i = 0; i < perGroup && made < SIM_MEMBERS; i++, made++) {
        const s = servers[i % 2]!;
        const m = { group: name, name: `${name}-${i}`, server: `${s.name}@${s.uri}`, index: i, createdAt: end - SIM_HOURS * 3600_000, tokenSha256: null };
        await store.putMember(m);
        members.push(m);
      }
      groups.push({ name, members });
      for (let r = rounds - 1; r >= 0; r -= 120) {
        await store.recordDecision({ at: end - r * INTERVAL_S * 1000, kind: 'scale', subject: name, action: 'none', reason: `scale none ${name}: load within bounds (simulated history)` });
        decisions++;
      }
    }
  } finally {
    await store.close();
  }
  // node:sqlite is loaded by now (openSqliteStore, which also silences its "experimental" warning).
  const { DatabaseSync } = await import('node:sqlite');
  const db = new DatabaseSync(path);
  let samples = 0;
  try {
    db.exec('pragma synchronous = off; pragma cache_size = -400000;');
    const insert = db.prepare('insert into samples (subject, metric, at, value) values (?, ?, ?, ?)');
    const add = (s: SampleRecord) => { insert.run(s.subject, s.metric, s.at, s.value); samples++; };
    db.exec('begin');
    for (let r = rounds - 1; r >= 0; r--) {
      const at = end - r * INTERVAL_S * 1000;
      for (const [gi, g] of groups.entries()) {
        let sum = 0;
        for (const [mi, m] of g.members.entries()) {
          // Group means stay between the thresholds: every pass decides "none", as most do.
          const v = wobble(at / 1000 + gi * 1000 + mi, 0.35, 0.8);
          sum += v;
          add({ at, subject: m.name, metric: CPU, value: v });
          add({ at, subject: m.name, metric: CPU_SECONDS, value: v * INTERVAL_S });
        }
        add({ at, subject: g.name, metric: GROUP_CPU, value: sum / g.members.length });
        add({ at, subject: g.name, metric: GROUP_CPU_SECONDS, value: sum * INTERVAL_S });
        add({ at, subject: g.name, metric: MEMBERS, value: g.members.length });
      }
      for (let k = 1; k <= SIM_SERVERS; k++) {
        add({ at, subject: `s${k}`, metric: CPU, value: wobble(at / 1000 + k, 0.3, 0.7) });
        add({ at, subject: `s${k}`, metric: WATTS, value: Math.round(wobble(at / 1000 - k, 120, 220)) });
      }
      if (r % 50 === 0) db.exec('commit; begin');
    }
    db.exec('commit');
    db.exec('pragma wal_checkpoint(truncate)');
  } finally {
    db.close();
  }
  return { samples, decisions };
}

/** The child, bundled like storm itself (provider/scripts/build.ts): one ESM file, the libvirt binding loaded from node_modules. */
async function bundleChild(dir: string): Promise<string> {
  const outfile = join(dir, 'controller-child.mjs');
  await build({
    entryPoints: [fileURLToPath(new URL('./controller-child.ts', import.meta.url))],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'esm',
    minify: true,
    external: ['@unraid/libvirt'],
    banner: { js: "const require = process.getBuiltinModule('node:module').createRequire(import.meta.url);" },
    logLevel: 'warning',
  });
  return outfile;
}

function runNode(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d; });
    child.stderr.on('data', (d: Buffer) => { err += d; });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${process.execPath} ${args.join(' ')} exited ${code}:\n${err.slice(-2000)}`))));
  });
}

async function bareNodeHwmKiB(): Promise<number> {
  const status = await runNode(['-e', "process.stdout.write(require('node:fs').readFileSync('/proc/self/status', 'utf8'))"]);
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
}

async function benchSimulated(): Promise<void> {
  for (let k = 1; k <= SIM_SERVERS; k++) {
    if (!(await refuses(`127.0.1.${k}`, 1))) throw new Error(`127.0.1.${k}:1 does not refuse connections: the simulated servers must not answer`);
  }
  const work = await mkdtemp(join(tmpdir(), 'storm-bench-controller-'));
  // The bundle sits in the repo's build/ so that its external import finds node_modules.
  const bundleDir = join(REPO_DIR, 'build', `bench-controller-${process.pid}`);
  mkdirSync(bundleDir, { recursive: true });
  try {
    const db = join(work, 'controller.db');
    const t0 = performance.now();
    const built = await buildSimulatedStore(db, Date.now());
    const buildMs = performance.now() - t0;
    const dbBytes = statSync(db).size;
    const child = await bundleChild(bundleDir);
    const bare: number[] = [];
    for (let i = 0; i < 3; i++) bare.push(await bareNodeHwmKiB());
    const report = JSON.parse(await runNode([child, db, String(SIM_ROUNDS)])) as ChildReport;
    const dbAfter = statSync(db).size + (statSync(`${db}-wal`, { throwIfNoEntry: false })?.size ?? 0);
    const b = median(bare);
    const roundCpu = report.rounds.map((r) => r.cpuMs);
    const pageCpu = report.pages.map((r) => r.cpuMs);
    console.log('');
    console.log(`controller with ${SIM_MEMBERS} simulated members: ${SIM_GROUPS} groups on ${SIM_SERVERS} servers that do not answer (qemu+tcp://127.0.1.N:1/system, refused),`);
    console.log(`  ${SIM_HOURS} h of samples at ${INTERVAL_S} s (cpu and cpu_seconds per member; cpu, cpu_seconds and members per group; cpu and watts per server)`);
    console.log(`  store: ${(built.samples / 1e6).toFixed(2)} M samples and ${built.decisions} decisions, SQLite file ${(dbBytes / 2 ** 20).toFixed(0)} MiB (${(dbBytes / built.samples).toFixed(0)} B/sample with its index; built in ${secs(buildMs)});`);
    console.log(`    at the default --retention-hours 24 that is ~${((dbBytes / SIM_HOURS) * 24 / 2 ** 30).toFixed(1)} GiB; ${(dbAfter / 2 ** 20).toFixed(0)} MiB (file + WAL) after the rounds`);
    console.log(`  baseline: the same Node (${process.execPath}) running \`-e\` that prints its own /proc/self/status; median of 3.`);
    console.log(`  controller: a process of its own running the real Rounds.once ${SIM_ROUNDS} times back to back and the status page after each`);
    console.log(`    (bench/controller-child.ts bundled by esbuild as storm is, run by the same Node).`);
    console.log(`  VmHWM after the rounds      ${mib(report.after.hwmKiB).padStart(10)}   bare node -e ${mib(b)}   → ${(report.after.hwmKiB / b).toFixed(1)}×`);
    console.log(`  VmRSS after the rounds      ${mib(report.after.rssKiB).padStart(10)}   (V8 heap ${mib(report.heap.heapUsed / 1024)} used of ${mib(report.heap.heapTotal / 1024)}, external ${mib(report.heap.external / 1024)})`);
    console.log(`  VmHWM store opened, before any round ${mib(report.opened.hwmKiB)}; at the child's start (bundle loaded) ${mib(report.started.hwmKiB)}`);
    console.log(`  CPU per round (Rounds.once: lead, sampler, ${SIM_GROUPS} group passes, ${SIM_GROUPS} power passes)   median ${ms(median(roundCpu))}, p90 ${ms(p90(roundCpu))}, max ${ms(Math.max(...roundCpu))}`);
    console.log(`    wall median ${ms(median(report.rounds.map((r) => r.wallMs)))}; first round (it also prunes: delete by time scans the samples) CPU ${ms(roundCpu[0]!)}, wall ${ms(report.rounds[0]!.wallMs)}`);
    console.log(`    = ${((median(roundCpu) / (INTERVAL_S * 1000)) * 100).toFixed(1)} % of one CPU at --interval ${INTERVAL_S}`);
    console.log(`  CPU per status page          median ${ms(median(pageCpu))}, p90 ${ms(p90(pageCpu))}; wall median ${ms(median(report.pages.map((r) => r.wallMs)))}; ${(report.pages[0]!.bytes / 1024).toFixed(0)} KiB of HTML`);
    console.log(`  logged by the rounds: ${report.logged.info} info, ${report.logged.warn} warn, ${report.logged.error} error${report.logged.errors.length ? `: ${report.logged.errors.join(' | ')}` : ''}`);
    for (const w of report.logged.warnings) console.log(`    e.g. warn: ${w}`);
  } finally {
    rmSync(bundleDir, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  }
}

// ---- 1 and 3b: on a lab blade ----

interface ProcCpu {
  /** ms of CPU of the process itself, and of its waited-for children. */
  self: number;
  children: number;
}

function procCpu(pid: number | 'self'): ProcCpu {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  // Fields 14-17 of proc(5) (utime, stime, cutime, cstime) are f[11..14] here, in clock ticks.
  return { self: ((f[11]! + f[12]!) * 1000) / CLK_TCK, children: ((f[13]! + f[14]!) * 1000) / CLK_TCK };
}

/** The blade's libvirtd, by its config path (the lab dir marks every lab process). */
function bladeLibvirtd(lab: Lab, blade: Blade): number {
  const conf = join(lab.dir, blade.name, 'etc', 'libvirtd.conf');
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (cmd[0]?.endsWith('libvirtd') && cmd.includes(conf)) return Number(entry);
    } catch { /* exited meanwhile */ }
  }
  throw new Error(`no libvirtd of ${blade.name} running`);
}

/** ms from `t0` (performance.now()) until libvirt shows domain `name` running, polled through the binding. */
async function runningAfter(uri: string, name: string, t0: number, gaveUp: () => string | null): Promise<number> {
  for (;;) {
    const d = await getDomain(uri, name).catch(() => null);
    if (d?.state === 'running') return performance.now() - t0;
    const why = gaveUp();
    if (why !== null) throw new Error(why);
    await sleep(POLL_MS);
  }
}

/**
 * The by-hand baseline, with nothing of storm's in it: what an operator without storm runs for one
 * more web server. A working domain is the template (as operators copy one: `virsh dumpxml`, the
 * names changed); a qcow2 overlay on the same deployment layer (`virsh vol-create-as
 * --backing-vol`); a NoCloud seed written by genisoimage and uploaded (`virsh vol-upload`);
 * `virsh define` and `virsh start`. One bash script, timed from its spawn to the domain running.
 */
interface ByHand {
  script: string;
  cleanup: string;
}

async function byHandFrom(uri: string, member: string, name: string, work: string): Promise<ByHand> {
  const xml = await virshOut(uri, 'dumpxml', '--inactive', member);
  const files = [...xml.matchAll(/<source file='([^']+)'/g)].map((m) => m[1]!);
  // The first disk is the instance's layer, the seed an ISO.
  const seed = files.find((f) => f.endsWith('.iso') && f.includes(member));
  const system = files.find((f) => f !== seed && f.includes(member));
  if (!system || !seed) throw new Error(`cannot find ${member}'s disk and seed in its XML:\n${xml}`);
  // Through libvirt, as the blade's files are the blade's (its own mount namespace in the lab).
  const pool = (await virshOut(uri, 'vol-pool', system)).trim();
  const vol = await virshOut(uri, 'vol-dumpxml', system);
  const backing = /<backingStore>\s*<path>([^<]+)<\/path>/.exec(vol)?.[1];
  const capacity = /<capacity unit='bytes'>(\d+)<\/capacity>/.exec(vol)?.[1];
  if (!backing || !capacity) throw new Error(`${system}: no backing store or capacity in its volume XML:\n${vol}`);
  const rename = (path: string) => path.split('/').pop()!.replaceAll(member, name);
  const template = xml
    .replaceAll(member, name)
    .replace(/\s*<uuid>[^<]*<\/uuid>/, '')
    .replace(/\s*<mac address='[^']*'\/>/g, '');
  const seedDir = join(work, `${name}-seed`);
  mkdirSync(seedDir, { recursive: true });
  writeFileSync(join(seedDir, 'meta-data'), `instance-id: ${name}\nlocal-hostname: ${name}\n`);
  writeFileSync(join(seedDir, 'user-data'), `#cloud-config\nwrite_files:\n  - path: /etc/motd\n    content: |\n      I am ${name}\n    permissions: '0644'\n`);
  writeFileSync(join(work, `${name}.xml`), template);
  const v = (args: string) => `virsh -q -c '${uri}' ${args}`;
  return {
    script: [
      'set -euo pipefail',
      v(`vol-create-as '${pool}' '${rename(system)}' ${capacity}B --format qcow2 --backing-vol '${backing}' --backing-vol-format qcow2 >/dev/null`),
      `genisoimage -quiet -output '${work}/${name}-seed.iso' -volid cidata -joliet -rock '${seedDir}/user-data' '${seedDir}/meta-data'`,
      v(`vol-create-as '${pool}' '${rename(seed)}' $(stat -c %s '${work}/${name}-seed.iso')B --format raw >/dev/null`),
      v(`vol-upload --pool '${pool}' '${rename(seed)}' '${work}/${name}-seed.iso'`),
      v(`define '${work}/${name}.xml' >/dev/null`),
      v(`start '${name}' >/dev/null`),
    ].join('\n'),
    cleanup: [
      v(`destroy '${name}' >/dev/null 2>&1 || true`),
      v(`undefine '${name}' >/dev/null 2>&1 || true`),
      `${v(`vol-delete --pool '${pool}' '${rename(system)}'`)} >/dev/null 2>&1 || true`,
      `${v(`vol-delete --pool '${pool}' '${rename(seed)}'`)} >/dev/null 2>&1 || true`,
    ].join('\n'),
  };
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => execFile(cmd, args, { maxBuffer: 16 << 20 }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout))));
}

/** test/lib's virsh, failing loudly: the baseline's facts must be read, not guessed. */
async function virshOut(uri: string, ...args: string[]): Promise<string> {
  const r = await virsh(uri, ...args);
  if (r.exitCode !== 0) throw new Error(`virsh ${args.join(' ')}: ${r.output}`);
  return r.stdout;
}

function labHcl(blade: Blade, layers: TestLayers, instance: boolean): string {
  return `${bladeServerHcl(blade, '  accelerator = "tcg"')}
${localApplianceHcl('web', `storm_appliance_server.${blade.name}.id`, { name: 'web', version: '1', baseName: 'webos', base: layers.base, image: layers.appliance })}
resource "storm_deployment" "web" {
  appliance = storm_appliance.web.id
  name      = "web"
}

resource "storm_network" "lan" {
  server = storm_appliance_server.${blade.name}.id
  name   = "${NETWORK}"
  cidr   = "${CIDR}"
}
${instance ? `
# What a user adds by hand for one more web server: the shape the controller's members have.
resource "storm_instance" "manual" {
  name            = "manual"
  deployments     = [storm_deployment.web.id]
  memory_mib      = 64
  vcpus           = 1
  network         = storm_network.lan.name
  variables       = { member = "manual", index = "0" }
  ip_wait_seconds = 0
  file {
    path        = "/etc/motd"
    content     = "I am $\${member}\\n"
    permissions = "0644"
  }
}
` : ''}`;
}

const APPLY = ['apply', '-auto-approve', '-no-color'];

async function benchOnLab(): Promise<void> {
  const tf = new TerraformDir();
  const work = await mkdtemp(join(tmpdir(), 'storm-bench-controller-lab-'));
  let lab: Lab | undefined;
  let layers: TestLayers | undefined;
  let store: ControllerStore | undefined;
  let blade: Blade | undefined;
  try {
    lab = await startLab({ blades: 1, initialPower: 'on' });
    blade = lab.blades[0]!;
    const uri = blade.libvirtUri;
    layers = makeTestLayers();
    tf.write(labHcl(blade, layers, false));
    await tf.init();
    const applied = await tf.apply();
    if (applied.exitCode !== 0) throw new Error(`terraform apply of the lab's stack failed:\n${applied.output.slice(-3000)}`);
    const deployment = String(resources(await tf.state()).find((x) => x.type === 'storm_deployment')!.values.id);
    store = await openSqliteStore(join(work, 'controller.db'));
    const lines: string[] = [];
    const log: Logger = { debug: () => {}, info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(`error: ${m}`) };
    const shape: GroupRecord['shape'] = { deployments: [deployment], memoryMib: 64, vcpus: 1, network: NETWORK, variables: {}, files: [{ path: '/etc/motd', content: 'I am ${member}\n', permissions: '0644' }], services: [], placement: 'spread' };
    const rx: GroupRecord = {
      name: 'rx', policy: { ...DEFAULT_SCALING, min: 0, max: 3, windowSeconds: 5, cooldownOutSeconds: 0 }, shape,
      dnsName: null, metric: 'cpu', power: null, deleting: false, lastScaleOutAt: null, lastScaleInAt: null,
    };
    await store.putGroup(rx);
    const board = new StatusBoard(store, { id: 'bench', intervalSeconds: INTERVAL_S });
    const rounds = new Rounds(store, log, INTERVAL_S, 24 * 3600_000, null, board, 'bench', new AbortController().signal);
    // Warm-up: the binding's first load, the sampler's one-time read of the host's CPUs.
    await rounds.once();

    const controller: { running: number; returned: number }[] = [];
    const terraform: { running: number; exited: number }[] = [];
    const byHand: number[] = [];
    let manual: ByHand | null = null;
    for (let i = 0; i < SCALE_OUTS; i++) {
      // Controller: the load crosses at t0; one round; the poller sees rx-0 running.
      const at = Date.now();
      await store.recordSamples([
        { at: at - 10_000, subject: 'rx', metric: GROUP_CPU, value: 0.5 },
        { at: at - 5_000, subject: 'rx', metric: GROUP_CPU, value: 0.95 },
        { at, subject: 'rx', metric: GROUP_CPU, value: 0.95 },
      ]);
      const t0 = performance.now();
      let roundDone = false;
      const round = rounds.once().then(() => { roundDone = true; return performance.now() - t0; });
      const seen = await runningAfter(uri, 'rx-0', t0, () => (roundDone ? `the round ended without rx-0 running:\n${lines.slice(-10).join('\n')}` : null));
      controller.push({ running: seen, returned: await round });
      if (!lines.some((l) => /^scale out rx: .* → rx-0 on /.test(l))) throw new Error(`no scale-out logged:\n${lines.join('\n')}`);
      lines.length = 0;
      manual ??= await byHandFrom(uri, 'rx-0', 'byhand', work);
      await removeInstance(uri, 'rx-0');
      await store.removeMember('rx', 'rx-0');

      // Baseline: terraform apply with one storm_instance more.
      tf.write(labHcl(blade, layers, true));
      const t1 = performance.now();
      const child = tf.start(APPLY);
      let exitedAt: number | null = null;
      const done = child.then((r) => { exitedAt = performance.now() - t1; return r; });
      const running = await runningAfter(uri, 'manual', t1, () => (exitedAt !== null ? 'terraform exited without the instance running' : null)).catch(async (err: Error) => {
        throw new Error(`${err.message}:\n${((await done).all ?? '').slice(-3000)}`);
      });
      const r = await done;
      if (r.exitCode !== 0) throw new Error(`terraform apply with the instance exited ${r.exitCode}:\n${(r.all ?? '').slice(-3000)}`);
      terraform.push({ running, exited: exitedAt! });
      tf.write(labHcl(blade, layers, false));
      const removed = await tf.apply();
      if (removed.exitCode !== 0) throw new Error(`terraform apply removing the instance failed:\n${removed.output.slice(-3000)}`);

      // Baseline without storm: the operator's script.
      const t2 = performance.now();
      let scriptDone = false;
      const script = run('bash', ['-c', manual.script]).finally(() => (scriptDone = true));
      byHand.push(await runningAfter(uri, 'byhand', t2, () => (scriptDone ? 'the by-hand script ended without the domain running' : null)).catch(async (err: Error) => {
        await script;
        throw err;
      }));
      await script;
      await run('bash', ['-c', manual.cleanup]);
    }
    printReaction(blade, controller, terraform, byHand);

    await benchSampling(lab, blade, store, { ...rx, name: 'load', policy: { ...DEFAULT_SCALING, min: GUESTS, max: GUESTS } });
  } finally {
    // Members and the manual instance first (their layers stand on the deployment), then what
    // terraform made (the network's bridge lives in the host's kernel, not in the blade), then the lab.
    if (blade) {
      for (const d of await listDomains(blade.libvirtUri).catch(() => [])) {
        if (d.storm) await removeInstance(blade.libvirtUri, d.name).catch((err: Error) => console.error(`cleanup: ${d.name}: ${err.message}`));
      }
    }
    const destroyed = await tf.destroy().catch((err: Error) => ({ exitCode: -1, output: err.message }));
    if (destroyed.exitCode !== 0 && blade) {
      console.error(`cleanup: terraform destroy failed, removing the network by hand:\n${destroyed.output.slice(-1500)}`);
      await virsh(blade.libvirtUri, 'net-destroy', NETWORK);
      await virsh(blade.libvirtUri, 'net-undefine', NETWORK);
    }
    tf.remove();
    await store?.close().catch(() => {});
    await rm(work, { recursive: true, force: true });
    layers?.remove();
    await lab?.stop();
  }
}

function printReaction(blade: Blade, controller: { running: number; returned: number }[], terraform: { running: number; exited: number }[], byHand: number[]): void {
  const c = controller.map((x) => x.running);
  const t = terraform.map((x) => x.running);
  const worst = median(c) + INTERVAL_S * 1000;
  console.log('');
  console.log(`controller reaction on a lab blade (${blade.name}, ${blade.libvirtUri}, TCG): the group's load crossing its threshold → the new member's`);
  console.log(`  domain running (libvirt's state, polled every ${POLL_MS} ms through the binding; the guest's boot is not counted). Members: 64 MiB,`);
  console.log(`  1 vCPU, of a blank 64 MiB test appliance, on a storm_network. t0 = the sample completing the policy's 5 s window (the hold window`);
  console.log(`  is the policy's choice, 60 s by default, and not counted); then one Rounds.once, as the controller runs it every interval.`);
  console.log(`  baseline: what a user would do by hand: terraform apply of the same configuration with one storm_instance of the same shape`);
  console.log(`  added (same deployment, memory, vCPUs, network, file; ip_wait_seconds = 0: the controller waits for no lease either), timed`);
  console.log(`  from spawning terraform to the same poller seeing the domain running; removed by another apply (not timed) between runs.`);
  console.log(`  baseline without storm: an operator's bash script with libvirt's own tools: the member's domain XML as the template (names`);
  console.log(`  changed, uuid and MAC dropped), virsh vol-create-as --backing-vol (a qcow2 overlay on the same deployment layer), a NoCloud`);
  console.log(`  seed by genisoimage, virsh vol-upload, define, start; timed from spawning bash to the same poller seeing it running.`);
  console.log(`  Alternating controller, terraform, script.`);
  console.log(`  controller round → member running    ${range(c, secs)}   (round returned: median ${secs(median(controller.map((x) => x.returned)))})`);
  console.log(`  terraform apply → instance running   ${range(t, secs)}   (terraform exited: median ${secs(median(terraform.map((x) => x.exited)))})`);
  console.log(`  by-hand script → domain running      ${range(byHand, secs)}`);
  console.log(`  ratio controller / terraform         ${(median(c) / median(t)).toFixed(2)}× (terraform takes ${(median(t) / median(c)).toFixed(1)}× as long)`);
  console.log(`  ratio controller / by-hand script    ${(median(c) / median(byHand)).toFixed(2)}×`);
  console.log(`  as the controller sees it with --interval ${INTERVAL_S}: the crossing waits 0-${INTERVAL_S} s for the next round's sample, so ${secs(median(c))} to ${secs(worst)} (worst case: + one interval;`);
  console.log(`    each sample is the guests' mean over the interval before it, and t0 here is the sample that crosses)`);
  console.log(`  goal ≤ 5 s plus the guest's boot: in-round ${median(c) <= 5000 ? 'met' : 'not met'}; worst case with the default interval ${worst <= 5000 ? 'met' : `not met (needs --interval ≤ ${Math.max(0, 5 - median(c) / 1000).toFixed(1)} s)`}`);
}

async function benchSampling(lab: Lab, blade: Blade, store: ControllerStore, group: GroupRecord): Promise<void> {
  const uri = blade.libvirtUri;
  const log: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: (m) => console.error(`controller: ${m}`) };
  const ctx = (): PassContext => ({ session: new HostSession(), log, signal: new AbortController().signal, warn: () => {}, store, now: Date.now, report: null });
  await store.putGroup(group);
  const made = await runGroupPass(ctx(), group);
  const running = (await listDomains(uri)).filter((d) => d.state === 'running' && d.name.startsWith(`${group.name}-`)).length;
  if (running !== GUESTS) throw new Error(`${running} of ${GUESTS} members running after the pass (${made.decision.reason}; ${made.done.join(', ')})`);
  const libvirtd = bladeLibvirtd(lab, blade);
  const sampler = new CpuSampler();
  await sampler.sampleRound(store, new HostSession(), [group], Date.now()); // baseline readings, the host's CPU count
  await sleep(1000);

  const sample: { wall: number; cpu: number }[] = [];
  const pass: { wall: number; cpu: number }[] = [];
  let d0 = procCpu(libvirtd).self;
  for (let i = 0; i < SAMPLING_ROUNDS; i++) {
    const g = (await store.group(group.name))!;
    let c = process.cpuUsage();
    let t = performance.now();
    const samples = await sampler.sampleRound(store, new HostSession(), [g], Date.now());
    sample.push({ wall: performance.now() - t, cpu: cpuMs(c) });
    if (samples.filter((s) => s.metric === CPU && s.subject.startsWith(`${group.name}-`)).length !== GUESTS) throw new Error(`the sampler read ${JSON.stringify(samples)}`);
    c = process.cpuUsage();
    t = performance.now();
    const r = await runGroupPass(ctx(), g);
    pass.push({ wall: performance.now() - t, cpu: cpuMs(c) });
    if (r.decision.action !== 'none') throw new Error(`the pass acted: ${r.decision.reason}`);
    await sleep(1000);
  }
  const stormLibvirtd = (procCpu(libvirtd).self - d0) / SAMPLING_ROUNDS;

  const domstats: { wall: number; cpu: number }[] = [];
  d0 = procCpu(libvirtd).self;
  const kids0 = procCpu('self').children;
  for (let i = 0; i < SAMPLING_ROUNDS; i++) {
    const c = process.cpuUsage();
    const t = performance.now();
    const out = await new Promise<string>((resolve, reject) => execFile('virsh', ['-c', uri, 'domstats', '--cpu-total'], (err, stdout) => (err ? reject(err) : resolve(stdout))));
    domstats.push({ wall: performance.now() - t, cpu: cpuMs(c) });
    if ((out.match(/cpu\.time=/g) ?? []).length < GUESTS) throw new Error(`virsh domstats read:\n${out}`);
    await sleep(1000);
  }
  const virshLibvirtd = (procCpu(libvirtd).self - d0) / SAMPLING_ROUNDS;
  const virshCpu = (procCpu('self').children - kids0) / SAMPLING_ROUNDS;

  const both = sample.map((s, i) => ({ wall: s.wall + pass[i]!.wall, cpu: s.cpu + pass[i]!.cpu }));
  const row = (label: string, xs: { wall: number; cpu: number }[], extra: string) =>
    console.log(`  ${label.padEnd(40)} ${ms(median(xs.map((x) => x.wall))).padStart(7)} (p90 ${ms(p90(xs.map((x) => x.wall))).padStart(6)})   ${ms(median(xs.map((x) => x.cpu))).padStart(7)} (p90 ${ms(p90(xs.map((x) => x.cpu))).padStart(6)})   ${extra}`);
  console.log('');
  console.log(`controller sampling on the lab blade: ${GUESTS} running members of one group (TCG guests of the blank appliance${GUESTS < 20 ? '; fewer than 20,' : ''}`);
  console.log(`  ${GUESTS < 20 ? 'since 20 TCG guests swamp this 2-core machine' : ''}), ${SAMPLING_ROUNDS} rounds 1 s apart. CPU: the node process's (process.cpuUsage, all threads); the blade's`);
  console.log(`  libvirtd's from /proc/PID/stat (10 ms ticks, averaged over the rounds).`);
  console.log(`  baseline: \`virsh -c ${uri} domstats --cpu-total\` (every domain on the blade: the same ${GUESTS}), what an operator's script would`);
  console.log(`  run each round, spawned from node ${SAMPLING_ROUNDS} times, 1 s apart; CPU: node's + the virsh process's (cutime/cstime) + libvirtd's.`);
  console.log(`  ${''.padEnd(40)} wall median          node CPU median      other CPU per round`);
  row('CpuSampler.sampleRound', sample, '');
  row('runGroupPass (reconcile, decide: none)', pass, '');
  row('sampleRound + runGroupPass', both, `libvirtd ${ms(stormLibvirtd)}`);
  row('virsh domstats --cpu-total', domstats, `virsh ${ms(virshCpu)}, libvirtd ${ms(virshLibvirtd)}`);
  const bw = median(domstats.map((x) => x.wall));
  console.log(`  ratio wall: sampleRound / virsh ${(median(sample.map((x) => x.wall)) / bw).toFixed(2)}×; sampleRound + runGroupPass / virsh ${(median(both.map((x) => x.wall)) / bw).toFixed(2)}×`);
  console.log(`  ratio CPU (all processes): sampleRound + runGroupPass / virsh ${((median(both.map((x) => x.cpu)) + stormLibvirtd) / (median(domstats.map((x) => x.cpu)) + virshCpu + virshLibvirtd)).toFixed(2)}×`);
}

const cpuMs = (since: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
};

// `node --import tsx bench/controller.ts` runs this section alone (as `npm run bench -- controller` does).
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const load = () => `load average ${loadavg().map((x) => x.toFixed(2)).join(' ')} on ${availableParallelism()} CPUs`;
  console.log(`storm bench, controller — Node ${process.versions.node}, ${new Date().toISOString()}, ${load()}`);
  await benchController();
  console.log(`[controller done, ${load()}]`);
}
