// `storm controller`: the long-running third face of the executable. `init` makes its CA,
// certificate and admin token; `run` serves the API and, while it leads, runs rounds: sample
// the guests' CPU (sampler.ts), one pass over every scaling group (group-pass.ts), one over
// each group's servers' power (power-pass.ts), with a fresh host session each round so it
// never acts on an old observation; `report` sums CPU-seconds; `replay` runs a group's recorded
// load through the simulator's replay and compares its decisions with the live ones. Stops cleanly on SIGTERM/SIGINT
// after the round in progress; a kill at any other moment is what the passes are built to survive.
import { hostname } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Logger } from '../contract.ts';
import { readServerRecord } from '../host/records.ts';
import { HostSession } from '../host/session.ts';
import { ControllerApi } from './api.ts';
import { runDnsPass } from './dns-pass.ts';
import { runGroupPass, sha256Hex } from './group-pass.ts';
import { initControllerDir, readControllerDir } from './init.ts';
import { openStore } from './open-store.ts';
import { redactUrl } from './redact.ts';
import { PowerMemory, runPowerPass, serversOf } from './power-pass.ts';
import { recordingOf, RecordingError, replayReport, type Capacity } from './recording.ts';
import { compareDecisions, replay } from '../sim/replay.ts';
import { HOST_RESERVE_MIB } from '../rules.ts';
import { accountingCsv } from './report.ts';
import { CpuSampler } from './sampler.ts';
import { StatusBoard } from './status.ts';
import type { ControllerStore } from './store.ts';

const USAGE = `Usage: storm controller <command> [options]

Commands:
  init    --dir DIR --host NAME [--host NAME...]
          Writes the controller's CA (ca.pem, ca-key.pem), a server certificate for the given
          host names or addresses (server.pem, server-key.pem) and an admin token (admin-token)
          into DIR. Run again to re-issue the certificate (the CA and token are kept).
  run     --dir DIR [--listen HOST:PORT] [--db FILE|postgres://...] [--interval SECONDS]
          [--advertise URL] [--retention-hours H] [--id NAME]
          Serves the API and the status page over HTTPS and, while it leads, runs a round every
          interval: samples every member's CPU, then for each scaling group reconciles its members
          with the hosts (libvirt is the truth), decides by its policy and acts, then powers its
          servers on or off. Every decision is logged on stderr with its reason and numbers.
  report  --db FILE|postgres://... [--from TIME] [--to TIME] [--csv]
          CPU-seconds used per instance and per group over a time range.
  replay  --db FILE|postgres://... --group NAME [--interval SECONDS] [--to TIME]
          Replays what the controller recorded of a group (its load and its servers' CPU, from
          its first round) through the simulator's copy of the passes (the same policy
          functions), and compares the decisions with the live ones: each scale-out, scale-in and
          power change must come within one interval (--interval, default 3: the run's own).
          Servers' CPUs and memory are read from libvirt; one that does not answer is taken to be
          like the largest that does. Exit 0 when every decision matches, 1 when not.

Options of run:
  --dir DIR             what init wrote
  --listen HOST:PORT    where the API listens (default 127.0.0.1:8443)
  --db FILE|URL         the store: a SQLite file (default DIR/controller.db), or a PostgreSQL URL
                        shared by several controllers (one leads; another takes over within 15 s)
  --interval SECONDS    time between rounds (default 3: a load crossing is acted on within one
                        interval plus a round of ~2 s, the 5 s the controller aims at)
  --advertise URL       the API's address as members reach it; with it, each member gets its own
                        token in its seed (/etc/storm/controller.json) to report its load
  --retention-hours H   samples kept for the status page and reports (default 24; each member
                        costs ~220 KiB an hour at the default interval, measured by npm run bench)
  --id NAME             this controller's name among several (default HOST:PID)
  -h, --help            this text`;

function lineLogger(): Logger {
  const write = (level: string) => (message: string, fields?: Record<string, unknown>) =>
    process.stderr.write(`${new Date().toISOString()} ${level} ${message}${fields && Object.keys(fields).length ? ` ${JSON.stringify(fields)}` : ''}\n`);
  return { debug: () => {}, info: write('info'), warn: write('warn'), error: write('error') };
}

class UsageError extends Error {}

const OPTIONS = {
  dir: { type: 'string' }, host: { type: 'string', multiple: true }, listen: { type: 'string' }, db: { type: 'string' },
  interval: { type: 'string' }, advertise: { type: 'string' }, 'retention-hours': { type: 'string' }, id: { type: 'string' },
  from: { type: 'string' }, to: { type: 'string' }, csv: { type: 'boolean' }, group: { type: 'string' }, help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ args: string[]; allowPositionals: true; options: typeof OPTIONS }>>['values'];

function positive(text: string | undefined, fallback: number, what: string): number {
  const n = Number(text ?? fallback);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${what} must be a positive number`);
  return n;
}

function listenAddress(text: string | undefined): { host: string; port: number } {
  const m = /^(.*):(\d{1,5})$/.exec(text ?? '127.0.0.1:8443');
  const port = Number(m?.[2]);
  if (!m || !m[1] || port > 65_535) throw new UsageError(`--listen must be HOST:PORT, e.g. 0.0.0.0:8443 (got "${text}")`);
  return { host: m[1].replace(/^\[(.*)\]$/, '$1'), port };
}

function time(text: string | undefined, fallback: number, what: string): number {
  if (text === undefined) return fallback;
  const t = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(t)) throw new UsageError(`${what} must be an ISO time (2026-11-30T12:00:00Z) or epoch ms`);
  return t;
}

export async function runController(argv: string[]): Promise<number> {
  let values: Values;
  let command: string | undefined;
  try {
    const parsed = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
    values = parsed.values;
    command = parsed.positionals[0];
  } catch (err) {
    process.stderr.write(`storm controller: ${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (values.help || !command || !['init', 'run', 'report', 'replay'].includes(command)) {
    (values.help ? process.stdout : process.stderr).write(USAGE + '\n');
    return values.help ? 0 : 2;
  }
  try {
    if (command === 'init') return await init(values);
    if (command === 'report') return await report(values);
    if (command === 'replay') return await replayGroup(values);
    return await run(values);
  } catch (err) {
    process.stderr.write(`storm controller ${command}: ${(err as Error).message}\n${err instanceof UsageError ? `\n${USAGE}\n` : ''}`);
    return err instanceof UsageError ? 2 : 1;
  }
}

async function init(values: Values): Promise<number> {
  if (!values.dir || !values.host?.length) throw new UsageError('init needs --dir DIR and at least one --host NAME-OR-ADDRESS (how the provider and the members reach the controller)');
  const r = await initControllerDir(values.dir, values.host);
  process.stdout.write(
    `${r.createdCa ? 'Made a new CA' : 'Kept the CA'} in ${r.dir}; server certificate for ${r.hosts.join(', ')} valid until ${r.notAfter.toISOString().slice(0, 10)}.\n` +
    `Provider block:\n  controller {\n    url    = "https://${r.hosts[0]}:8443"\n    token  = trimspace(file("${join(r.dir, 'admin-token')}"))\n    ca_pem = file("${join(r.dir, 'ca.pem')}")\n  }\n`,
  );
  return 0;
}

async function report(values: Values): Promise<number> {
  if (!values.db) throw new UsageError('report needs --db (the store the controller runs with)');
  const store = await openStore(values.db);
  try {
    const to = time(values.to, Date.now(), '--to');
    const from = time(values.from, to - 24 * 3600_000, '--from');
    process.stdout.write(await accountingCsv(store, from, to));
    return 0;
  } finally {
    await store.close();
  }
}

async function replayGroup(values: Values): Promise<number> {
  if (!values.db || !values.group) throw new UsageError('replay needs --db (the store the controller runs with) and --group NAME');
  const intervalSeconds = positive(values.interval, 3, '--interval');
  const to = time(values.to, Date.now(), '--to');
  const store = await openStore(values.db);
  try {
    // Placement needs each server's CPUs and memory: libvirt's, or, for a server that does not
    // answer (powered off), the largest that does.
    const session = new HostSession();
    const group = await store.group(values.group);
    const capacities = new Map<string, Capacity>();
    for (const s of group ? serversOf(group, await store.servers()) : []) {
      const host = await session.observe(s.uri).catch(() => null);
      if (!host) continue;
      const record = await readServerRecord(s.uri).catch(() => null);
      capacities.set(s.id, { cpus: host.cpus, memoryMib: host.memoryMib, reservedMemoryMib: record?.reservedMemoryMib ?? HOST_RESERVE_MIB });
    }
    const largest = [...capacities.values()].sort((a, b) => b.memoryMib - a.memoryMib)[0];
    const recording = await recordingOf(store, values.group, {
      intervalSeconds,
      to,
      capacity: async (s) => {
        const c = capacities.get(s.id) ?? largest;
        if (!c) throw new RecordingError(`no server of group "${values.group}" answers libvirt: their CPUs and memory are needed for placement`);
        return c;
      },
    });
    const result = compareDecisions(recording.decisions, replay(recording), intervalSeconds, recording.rounds);
    process.stdout.write(replayReport(recording, result));
    return result.missing.length || result.extra.length ? 1 : 0;
  } finally {
    await store.close();
  }
}

async function run(values: Values): Promise<number> {
  if (!values.dir) throw new UsageError('run needs --dir DIR (what storm controller init wrote)');
  const interval = positive(values.interval, 3, '--interval');
  const retentionMs = positive(values['retention-hours'], 24, '--retention-hours') * 3600_000;
  const listen = listenAddress(values.listen);
  const id = values.id ?? `${hostname()}:${process.pid}`;
  const files = await readControllerDir(values.dir);
  const log = lineLogger();
  const store = await openStore(values.db ?? join(values.dir, 'controller.db'));
  const board = new StatusBoard(store, { id, intervalSeconds: interval });
  let api: ControllerApi;
  try {
    api = await ControllerApi.start({
      store, log, adminTokenSha256: sha256Hex(files.adminToken), tls: { certPem: files.certPem, keyPem: files.keyPem },
      host: listen.host, port: listen.port, now: Date.now,
      pages: { status: () => board.page(Date.now()), timeline: (span) => board.timeline(Date.now(), span) },
    });
  } catch (err) {
    await store.close();
    const e = err as NodeJS.ErrnoException;
    throw new Error(e.code === 'EADDRINUSE' ? `${listen.host}:${listen.port} is taken: is another controller running? (--listen)` : `cannot listen on ${listen.host}:${listen.port}: ${e.message}`);
  }
  const stop = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => stop.abort());
  log.info('controller started', { id, api: api.url, db: redactUrl(values.db ?? join(values.dir, 'controller.db')), interval });
  const report = values.advertise ? { url: values.advertise, caPem: files.caPem } : null;
  const rounds = new Rounds(store, log, interval, retentionMs, report, board, id, stop.signal);
  while (!stop.signal.aborted) {
    await rounds.once().catch((err: unknown) => log.error(`round failed: ${(err as Error).message}`));
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, interval * 1000);
      stop.signal.addEventListener('abort', () => { clearTimeout(timer); resolve(undefined); }, { once: true });
    });
  }
  await api.close();
  await store.close();
  log.info('controller stopped');
  return 0;
}

/** The rounds of one controller: it acts only while it holds the lead. Exported for bench/controller.ts, which runs the real rounds. */
export class Rounds {
  private readonly sampler = new CpuSampler();
  private readonly power = new PowerMemory();
  /** null until the first round: then whichever it is, is said. */
  private leading: boolean | null = null;
  private lastPrune = 0;

  constructor(
    private readonly store: ControllerStore,
    private readonly log: Logger,
    private readonly interval: number,
    private readonly retentionMs: number,
    private readonly report: { url: string; caPem: string } | null,
    private readonly board: StatusBoard,
    private readonly id: string,
    private readonly signal: AbortSignal,
  ) {}

  async once(): Promise<void> {
    const now = Date.now();
    // The lease outlives two rounds: a leader that misses one keeps it, a dead one loses it
    // within 2 intervals (at most 15 s with the default 5).
    const leads = await this.store.lead(this.id, Math.max(5, 2 * this.interval) * 1000, now);
    this.board.leader = leads;
    if (leads !== this.leading) {
      this.leading = leads;
      this.log.info(leads ? `${this.id} leads: running the rounds` : `${this.id} follows: another controller leads`);
    }
    if (!leads) return;
    const session = new HostSession();
    const groups = await this.store.groups();
    await this.sampler.sampleRound(this.store, session, groups, now).catch((err: unknown) => this.log.error(`sampling failed: ${(err as Error).message}`));
    const servers = await this.store.servers();
    const ctx = { session, log: this.log, signal: this.signal, warn: (summary: string, detail?: string) => this.log.warn(summary, { detail }), store: this.store, now: Date.now, report: this.report, freshMs: 3 * this.interval * 1000, servers };
    for (const group of groups) {
      if (this.signal.aborted) break;
      let unplaced: string | null = null;
      try {
        ({ unplaced } = await runGroupPass(ctx, group));
      } catch (err) {
        this.log.error(`pass over group ${group.name} failed: ${(err as Error).message}`, { group: group.name });
      }
      await runDnsPass(group, this.log).catch((err: unknown) => this.log.error(`dns pass for group ${group.name} failed: ${(err as Error).message}`, { group: group.name }));
      try {
        const result = await runPowerPass({ store: this.store, log: this.log, now: Date.now, memory: this.power, freshMs: 3 * this.interval * 1000 }, group, servers, unplaced);
        if (result) this.board.observed(group.name, result);
      } catch (err) {
        this.log.error(`power pass for group ${group.name} failed: ${(err as Error).message}`, { group: group.name });
      }
    }
    if (now - this.lastPrune > 60_000) {
      this.lastPrune = now;
      await this.store.pruneSamples(now - this.retentionMs);
    }
  }
}
