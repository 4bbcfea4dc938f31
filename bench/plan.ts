// terraform plan/apply/refresh/destroy of N storm_appliance_server (qemu:///system) against
// N terraform_data in a directory with nothing of storm in it, side by side in one run; per
// command the provider processes terraform started and their peak memory; a memory row at
// 1000 resources; then one instrumented run of each command that says where storm's time goes
// (process starts, gRPC calls by method, libvirt connections and virsh processes).
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { REPO_DIR, TerraformDir } from '../test/lib/terraform.ts';
import { watchProcesses } from './processes.ts';

const COUNT = Number(process.env.BENCH_RESOURCES ?? 200);
const MEMORY_COUNT = Number(process.env.BENCH_MEMORY_RESOURCES ?? 1000);
/** Plans change nothing, so each is run this many times (storm and baseline alternating) and the median kept. */
const REPEATS = Number(process.env.BENCH_PLAN_REPEATS ?? 3);
const URI = 'qemu:///system';

const BUNDLE = join(REPO_DIR, 'provider', 'dist', 'storm.mjs');
const LAUNCHER = 'terraform-provider-storm';
const TRACE_HOOK = fileURLToPath(new URL('./rpc-trace.mjs', import.meta.url));

/** What bench/rpc-trace.mjs writes, one line per provider process. */
interface TracedProcess {
  pid: number;
  /** Epoch ms at which Node started (after the launcher's exec). */
  startedAt: number;
  exitedAt: number;
  /** Peak resident set as the process itself reports it (getrusage ru_maxrss), KiB. */
  maxRssKiB: number;
  /** CPU time (user + system) of the whole process, start included. */
  cpuMs: number;
  /** [method path, epoch ms at the request headers, ms until the stream closed] */
  calls: [string, number, number][];
}

export function median(xs: readonly number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

export const ms = (x: number) => `${x.toFixed(0)} ms`;
const mib = (kib: number) => `${(kib / 1024).toFixed(0)} MiB`;

function stormHcl(n: number): string {
  return `
resource "storm_appliance_server" "s" {
  count       = ${n}
  name        = "bench-\${count.index}"
  libvirt_uri = "${URI}"
  pool_path   = "/var/tmp/storm-bench-pool"
}
`;
}

function dataHcl(n: number): string {
  return `
resource "terraform_data" "s" {
  count = ${n}
  input = { name = "bench-\${count.index}", libvirt_uri = "${URI}" }
}
`;
}

interface Measured {
  ms: number;
  /** VmHWM KiB of each provider process terraform started (0: gone before it could be sampled after exec). */
  providers: number[];
  terraformKiB: number;
}

async function measure(dir: TerraformDir, args: string[]): Promise<Measured> {
  const t0 = performance.now();
  const child = dir.start(args);
  const watch = watchProcesses(child.pid!, [LAUNCHER, BUNDLE]);
  const r = await child;
  const t = performance.now() - t0;
  const peaks = watch.stop();
  if (r.exitCode !== 0 && r.exitCode !== 2) throw new Error(`terraform ${args.join(' ')} in ${dir.dir} exited ${r.exitCode}:\n${(r.all ?? '').slice(-2000)}`);
  return { ms: t, providers: [...peaks.providers.values()], terraformKiB: peaks.terraformKiB };
}

interface Row {
  label: string;
  storm: Measured[];
  baseline: Measured[];
}

const PLAN = ['plan', '-no-color', '-detailed-exitcode'];
const APPLY = ['apply', '-auto-approve', '-no-color'];
const DESTROY = ['destroy', '-auto-approve', '-no-color'];

async function row(label: string, storm: TerraformDir, baseline: TerraformDir, args: string[], times: number): Promise<Row> {
  const r: Row = { label, storm: [], baseline: [] };
  for (let i = 0; i < times; i++) {
    r.storm.push(await measure(storm, args));
    r.baseline.push(await measure(baseline, args));
  }
  return r;
}

function printRows(count: number, rows: readonly Row[]): void {
  console.log('');
  console.log(`terraform, ${count} resources       storm   baseline   ratio   provider processes   VmHWM per process (max / median)   terraform VmHWM storm / baseline`);
  for (const r of rows) {
    const s = median(r.storm.map((m) => m.ms));
    const b = median(r.baseline.map((m) => m.ms));
    const starts = r.storm.map((m) => m.providers.length);
    const peaks = r.storm.flatMap((m) => m.providers).filter((k) => k > 0);
    const startText = Math.min(...starts) === Math.max(...starts) ? String(starts[0]) : `${Math.min(...starts)}–${Math.max(...starts)}`;
    const tf = `${mib(Math.max(...r.storm.map((m) => m.terraformKiB)))} / ${mib(Math.max(...r.baseline.map((m) => m.terraformKiB)))}`;
    console.log(
      `  ${`${r.label}${r.storm.length > 1 ? ` (n=${r.storm.length})` : ''}`.padEnd(28)} ${ms(s).padStart(8)} ${ms(b).padStart(10)} ${`${(s / b).toFixed(2)}×`.padStart(7)}   ${startText.padStart(18)}   ${`${mib(Math.max(...peaks))} / ${mib(median(peaks))}`.padStart(32)}   ${tf.padStart(32)}`,
    );
  }
}

/** The baseline must not start storm nor ask a registry for anything: checked, not assumed. */
async function initBaseline(baseline: TerraformDir): Promise<string> {
  const log = join(baseline.dir, 'init-trace.log');
  const r = await baseline.run(['init', '-no-color'], { TF_LOG: 'TRACE', TF_LOG_PATH: log });
  if (r.exitCode !== 0) throw new Error(`baseline terraform init failed:\n${r.output}`);
  const contacts = readFileSync(log, 'utf8').split('\n').filter((l) => /Service discovery|HTTP client .* request|registry\.terraform\.io\/storm\/storm/.test(l) && !/Selected provider installation method/.test(l));
  const lock = existsSync(join(baseline.dir, '.terraform.lock.hcl'));
  const installed = existsSync(join(baseline.dir, '.terraform', 'providers'));
  if (contacts.length || lock || installed) {
    throw new Error(`the baseline directory ${baseline.dir} is not storm-free: lock file ${lock}, installed providers ${installed}, log lines:\n${contacts.join('\n')}`);
  }
  return 'no .terraform.lock.hcl, no installed providers, and no service discovery or HTTP request in its TRACE log';
}

export async function benchPlans(): Promise<void> {
  const storm = new TerraformDir();
  const baseline = new TerraformDir();
  try {
    storm.write(stormHcl(COUNT));
    baseline.write(dataHcl(COUNT), 'main.tf', '');
    await storm.init();
    const initCheck = await initBaseline(baseline);
    console.log('');
    console.log(`baseline: ${COUNT} terraform_data (built into terraform, no provider process) with input = { name, libvirt_uri }, in a directory with`);
    console.log(`  nothing of storm in it (no required_providers), run with the same TF_CLI_CONFIG_FILE (${join('build', 'terraform.rc')}) and environment;`);
    console.log(`  its terraform init: ${initCheck}.`);
    console.log(`storm: ${COUNT} storm_appliance_server on ${URI}, provider from the repo mirror. Commands alternate storm, baseline; plans are`);
    console.log(`  medians of ${REPEATS}. Provider processes: terraform's children running the storm launcher/bundle, VmHWM from /proc sampled every 5 ms.`);

    const rows: Row[] = [];
    rows.push(await row(`plan, ${COUNT} to create`, storm, baseline, PLAN, REPEATS));
    rows.push(await row(`apply, ${COUNT} created`, storm, baseline, APPLY, 1));
    rows.push(await row(`plan, ${COUNT} refreshed`, storm, baseline, PLAN, REPEATS));
    rows.push(await row(`destroy, ${COUNT}`, storm, baseline, DESTROY, 1));
    printRows(COUNT, rows);
    console.log('  goal: plan ratio ≤ 1.5× (create and refresh); ≤ 100 MiB VmHWM per provider process at 1000 resources');

    await memoryRow(storm, baseline);
    await breakdown(storm);
  } finally {
    await storm.run(DESTROY);
    storm.remove();
    baseline.remove();
  }
}

async function memoryRow(storm: TerraformDir, baseline: TerraformDir): Promise<void> {
  storm.write(stormHcl(MEMORY_COUNT));
  baseline.write(dataHcl(MEMORY_COUNT), 'main.tf', '');
  const applied = await row(`apply, ${MEMORY_COUNT} created`, storm, baseline, APPLY, 1);
  const refreshed = await row(`plan, ${MEMORY_COUNT} refreshed`, storm, baseline, PLAN, 1);
  await row(`destroy, ${MEMORY_COUNT}`, storm, baseline, DESTROY, 1);
  printRows(MEMORY_COUNT, [applied, refreshed]);
  const peak = Math.max(...refreshed.storm[0]!.providers);
  console.log(`  memory at ${MEMORY_COUNT} refreshed: VmHWM max ${mib(peak)} per provider process (goal ≤ 100 MiB) → ${peak / 1024 <= 100 ? 'met' : 'not met'}`);
  storm.write(stormHcl(COUNT));
  baseline.write(dataHcl(COUNT), 'main.tf', '');
}

// ---- The instrumented run: where storm's time goes ----

interface PluginLife {
  pid: number;
  /** Epoch ms: terraform logged "starting plugin", then "using plugin" (handshake read), then "plugin process exited". */
  starting: number;
  handshake: number;
  exited: number;
}

/** Provider process lifetimes as terraform logs them at DEBUG (go-plugin starts them one at a time). */
function pluginLives(logText: string): PluginLife[] {
  const lives: PluginLife[] = [];
  let current: Partial<PluginLife> | null = null;
  for (const line of logText.split('\n')) {
    const at = Date.parse(line.slice(0, 24));
    if (/provider: starting plugin: .*terraform-provider-storm/.test(line)) current = { starting: at };
    else if (current && /provider: plugin started: .*terraform-provider-storm.* pid=(\d+)/.test(line)) current.pid = Number(/pid=(\d+)/.exec(line)![1]);
    else if (current && current.handshake === undefined && /provider: using plugin: version=6/.test(line)) {
      current.handshake = at;
      lives.push(current as PluginLife);
    } else {
      const exited = /provider: plugin process exited: .*terraform-provider-storm.* id=(\d+)/.exec(line);
      const life = exited && lives.find((l) => l.pid === Number(exited[1]));
      if (life) life.exited = at;
    }
  }
  return lives;
}

/** Wall time during which at least one of the intervals is open. */
function covered(intervals: [number, number][]): number {
  const s = [...intervals].sort((a, b) => a[0] - b[0]);
  let total = 0;
  let end = -Infinity;
  for (const [a, b] of s) {
    if (b <= end) continue;
    total += b - Math.max(a, end);
    end = b;
  }
  return total;
}

interface LibvirtUse {
  /** Per provider process (tgid): virsh processes it started, libvirt socket connections it opened itself. */
  byProvider: Map<number, { virsh: number; native: number }>;
  virsh: number;
  virshConnections: number;
  nativeConnections: number;
}

/**
 * Reads `strace -f -e trace=execve,connect,clone,clone3,fork,vfork` output: threads are mapped
 * to their process through clone flags, processes to what they exec'd, children to parents.
 */
function libvirtUse(straceText: string): LibvirtUse {
  const process = new Map<number, number>(); // tid → tgid
  const parent = new Map<number, number>(); // tgid → parent tgid
  const exe = new Map<number, string>(); // tgid → last exec'd path
  const tgid = (tid: number) => process.get(tid) ?? tid;
  const connects: number[] = [];
  const pending = new Map<number, string>(); // tid → start of a call strace split around another thread's
  for (const line of straceText.split('\n')) {
    const m = /^(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const tid = Number(m[1]);
    let call = m[2]!;
    const unfinished = /^(.*) <unfinished \.\.\.>$/.exec(call);
    if (unfinished) {
      pending.set(tid, unfinished[1]!);
      continue;
    }
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(call);
    if (resumed) {
      call = (pending.get(tid) ?? '') + resumed[1]!;
      pending.delete(tid);
    }
    const clone = /^(clone3?|v?fork)\((.*)\)\s+=\s+(\d+)$/.exec(call);
    if (clone) {
      const child = Number(clone[3]);
      if (/CLONE_THREAD/.test(clone[2]!)) process.set(child, tgid(tid));
      else parent.set(child, tgid(tid));
      continue;
    }
    const exec = /^execve\("([^"]+)".*\)\s+=\s+0$/.exec(call);
    if (exec) {
      exe.set(tgid(tid), exec[1]!);
      continue;
    }
    if (/^connect\(\d+, \{sa_family=AF_UNIX, sun_path="[^"]*libvirt-sock[^"]*"\}, \d+\)\s+=\s+0$/.test(call)) connects.push(tgid(tid));
  }
  const isProvider = (p: number) => (exe.get(p) ?? '').endsWith('/node');
  const isVirsh = (p: number) => (exe.get(p) ?? '').endsWith('/virsh');
  const byProvider = new Map<number, { virsh: number; native: number }>();
  const entry = (p: number) => byProvider.get(p) ?? byProvider.set(p, { virsh: 0, native: 0 }).get(p)!;
  for (const p of exe.keys()) if (isProvider(p)) entry(p);
  let virsh = 0;
  for (const p of exe.keys()) {
    if (!isVirsh(p)) continue;
    virsh++;
    const owner = parent.get(p);
    if (owner !== undefined && isProvider(owner)) entry(owner).virsh++;
  }
  let virshConnections = 0;
  let nativeConnections = 0;
  for (const p of connects) {
    if (isVirsh(p)) virshConnections++;
    else {
      nativeConnections++;
      if (isProvider(p)) entry(p).native++;
    }
  }
  return { byProvider, virsh, virshConnections, nativeConnections };
}

/** Long-lived go-plugin streams: open for the whole life of a process, not calls. */
const HOUSEKEEPING = /^\/plugin\.(GRPCStdio|GRPCBroker)\//;

interface Instrumented {
  wall: number;
  lives: PluginLife[];
  traced: TracedProcess[];
}

/** One run with terraform at DEBUG and the call recorder preloaded into the provider. */
async function runWithCallTrace(storm: TerraformDir, args: string[], name: string): Promise<Instrumented> {
  const tfLog = join(storm.dir, `${name}.log`);
  const rpcLog = join(storm.dir, `${name}.rpc.jsonl`);
  const t0 = performance.now();
  const r = await storm.start(args, { TF_LOG: 'DEBUG', TF_LOG_PATH: tfLog, NODE_OPTIONS: `--import=${TRACE_HOOK}`, STORM_BENCH_RPC_LOG: rpcLog });
  const wall = performance.now() - t0;
  if (r.exitCode !== 0 && r.exitCode !== 2) throw new Error(`instrumented terraform ${args.join(' ')} exited ${r.exitCode}:\n${(r.all ?? '').slice(-2000)}`);
  const traced = existsSync(rpcLog) ? readFileSync(rpcLog, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as TracedProcess) : [];
  return { wall, lives: pluginLives(readFileSync(tfLog, 'utf8')), traced };
}

/** One run under strace (slows process and thread starts, so kept apart from the timed runs). */
async function runWithStrace(storm: TerraformDir, args: string[], name: string): Promise<LibvirtUse> {
  const straceLog = join(storm.dir, `${name}.strace`);
  const r = await storm.start(args, {}, ['strace', '-f', '--seccomp-bpf', '-e', 'trace=execve,connect,clone,clone3,fork,vfork', '-o', straceLog, 'terraform']);
  if (r.exitCode !== 0 && r.exitCode !== 2) throw new Error(`terraform ${args.join(' ')} under strace exited ${r.exitCode}:\n${(r.all ?? '').slice(-2000)}`);
  return libvirtUse(readFileSync(straceLog, 'utf8'));
}

function printBreakdown(label: string, run: Instrumented, libvirt: LibvirtUse): void {
  const { wall, lives, traced } = run;
  console.log('');
  console.log(`  ${label}: ${ms(wall)} instrumented, ${lives.length} provider processes (${traced.length} reported their calls)`);
  console.log(`    process   start→handshake   handshake→1st call   in calls (wall)   calls   lifetime   CPU    peak RSS   virsh   own libvirt conns`);
  let startTotal = 0;
  let callTotal = 0;
  let lifeTotal = 0;
  let cpuTotal = 0;
  const providers = [...libvirt.byProvider.values()];
  for (const [i, life] of lives.entries()) {
    const t = traced.find((p) => p.pid === life.pid);
    const calls = (t?.calls ?? []).filter((c) => !HOUSEKEEPING.test(c[0]));
    const first = calls.length ? Math.min(...calls.map((c) => c[1])) : NaN;
    const inCalls = covered(calls.map((c) => [c[1], c[1] + c[2]]));
    // The strace run is another run of the same command: its processes pair up by order.
    const lv = providers[i] ?? { virsh: NaN, native: NaN };
    startTotal += life.handshake - life.starting;
    callTotal += inCalls;
    lifeTotal += (life.exited ?? NaN) - life.starting;
    cpuTotal += t?.cpuMs ?? NaN;
    console.log(
      `    #${String(i + 1).padEnd(8)} ${ms(life.handshake - life.starting).padStart(15)}   ${ms(first - life.handshake).padStart(18)}   ${ms(inCalls).padStart(15)}   ${String(calls.length).padStart(5)}   ${ms((life.exited ?? NaN) - life.starting).padStart(8)}   ${(t ? ms(t.cpuMs) : '?').padStart(6)}   ${(t ? mib(t.maxRssKiB) : '?').padStart(8)}   ${String(lv.virsh).padStart(5)}   ${String(lv.native).padStart(17)}`,
    );
  }
  console.log(`    sum over processes: ${ms(startTotal)} start→handshake, ${ms(callTotal)} inside calls, ${ms(lifeTotal)} alive, ${ms(cpuTotal)} CPU; command ${ms(wall)}`);

  const byMethod = new Map<string, number[]>();
  for (const p of traced) for (const [path, , d] of p.calls) if (!HOUSEKEEPING.test(path)) (byMethod.get(path) ?? byMethod.set(path, []).get(path)!).push(d);
  const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0);
  console.log(`    RPC method                          calls    total ms   median ms     max ms`);
  for (const [path, ds] of [...byMethod].sort((a, b) => sum(b[1]) - sum(a[1]))) {
    const name = path.replace(/^\/tfplugin6\.Provider\//, '').replace(/^\//, '');
    console.log(`    ${name.padEnd(34)} ${String(ds.length).padStart(6)} ${sum(ds).toFixed(0).padStart(11)} ${median(ds).toFixed(1).padStart(11)} ${Math.max(...ds).toFixed(1).padStart(10)}`);
  }
  const perResource = (n: number) => (n / COUNT).toFixed(3);
  console.log(
    `    libvirt (strace run): ${libvirt.virsh} virsh processes (${perResource(libvirt.virsh)}/resource) making ${libvirt.virshConnections} connections; ` +
      `${libvirt.nativeConnections} connections by the provider processes themselves (${perResource(libvirt.nativeConnections)}/resource)`,
  );
}

async function breakdown(storm: TerraformDir): Promise<void> {
  console.log('');
  console.log(`where storm's time goes: each command twice more, instrumented (so slower than above). Run 1: terraform at TF_LOG=DEBUG`);
  console.log(`  (plugin start, handshake, exit times) and NODE_OPTIONS=--import bench/rpc-trace.mjs in the provider (Node's http2 diagnostics`);
  console.log(`  channels: each gRPC call from request headers to stream close, as the provider's server sees it; peak RSS self-reported).`);
  console.log(`  Run 2: under strace -f -e trace=execve,connect,clone*: virsh processes and connections to libvirtd's socket. All ${COUNT}`);
  console.log(`  servers name one host (${URI}), so the goal is ≤ 1 libvirt connection per provider process, whatever the count.`);
  const commands: [string, string[]][] = [
    [`plan, ${COUNT} to create`, PLAN],
    [`apply, ${COUNT} created`, APPLY],
    [`plan, ${COUNT} refreshed`, PLAN],
    [`destroy, ${COUNT}`, DESTROY],
  ];
  const timed: Instrumented[] = [];
  for (const [i, [, args]] of commands.entries()) timed.push(await runWithCallTrace(storm, args, `calls-${i}`));
  for (const [i, [label, args]] of commands.entries()) printBreakdown(label, timed[i]!, await runWithStrace(storm, args, `strace-${i}`));
}

/** The provider's launcher in the repo mirror (npm run build). */
export function pluginExecutable(): string {
  const base = join(REPO_DIR, 'build', 'terraform-mirror', 'registry.terraform.io', 'storm', 'storm');
  const version = readdirSync(base)[0]!;
  const dir = join(base, version, 'linux_amd64');
  return join(dir, readdirSync(dir)[0]!);
}
