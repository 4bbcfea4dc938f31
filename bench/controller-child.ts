// The controller's rounds in a process of their own, so that its peak memory (VmHWM) is the
// controller's and nothing else's: bench/controller.ts bundles this file with esbuild as the
// provider's build bundles storm (so no TypeScript loader sits in the process), runs it on the
// project's Node, and reads the one JSON line it prints.
//   node controller-child.mjs STORE ROUNDS
// Opens the store, then runs ROUNDS rounds back to back, each what `storm controller run` does
// every interval (Rounds.once: the lead, the sampler's round, each group's pass and power pass,
// pruning) followed by rendering the status page, timing each with process.cpuUsage() (user +
// system, every thread of the process: the libvirt binding's included) and the wall clock.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../provider/src/contract.ts';
import { Rounds } from '../provider/src/controller/main.ts';
import { StatusBoard } from '../provider/src/controller/status.ts';
import { openSqliteStore } from '../provider/src/controller/store-sqlite.ts';

export interface ChildMemory {
  /** VmHWM and VmRSS, KiB. */
  hwmKiB: number;
  rssKiB: number;
}

export interface ChildReport {
  /** The bundle loaded, the store not opened yet (node:sqlite and the libvirt binding load on first use). */
  started: ChildMemory;
  /** The store opened, the rounds' objects made, no round run yet. */
  opened: ChildMemory;
  /** After every round and page. */
  after: ChildMemory;
  /** process.memoryUsage() after them, bytes: V8's heap, and memory outside it (SQLite's and the binding's are not in either). */
  heap: { heapTotal: number; heapUsed: number; external: number };
  /** Per round: CPU (user + system) and wall, ms. */
  rounds: { cpuMs: number; wallMs: number }[];
  /** Per status page rendered after a round. */
  pages: { cpuMs: number; wallMs: number; bytes: number }[];
  /** Lines the controller logged, by level, and the first errors (there should be none). */
  logged: { info: number; warn: number; error: number; errors: string[]; warnings: string[] };
}

function memory(): ChildMemory {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { hwmKiB: kib('VmHWM'), rssKiB: kib('VmRSS') };
}

const cpuMs = (since: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
};

async function main(): Promise<void> {
  const [db, roundsText] = process.argv.slice(2);
  const count = Number(roundsText);
  if (!db || !Number.isInteger(count) || count < 1) throw new Error('usage: controller-child STORE ROUNDS');
  const started = memory();
  const store = await openSqliteStore(db);
  const logged: ChildReport['logged'] = { info: 0, warn: 0, error: 0, errors: [], warnings: [] };
  const log: Logger = {
    debug: () => {},
    info: () => { logged.info++; },
    warn: (message) => {
      logged.warn++;
      if (!logged.warnings.includes(message) && logged.warnings.length < 3) logged.warnings.push(message);
    },
    error: (message) => {
      logged.error++;
      if (logged.errors.length < 5) logged.errors.push(message);
    },
  };
  const board = new StatusBoard(store, { id: 'bench', intervalSeconds: 5 });
  const rounds = new Rounds(store, log, 5, 168 * 3600_000, null, board, 'bench', new AbortController().signal);
  const opened = memory();
  const report: ChildReport = { started, opened, after: opened, heap: { heapTotal: 0, heapUsed: 0, external: 0 }, rounds: [], pages: [], logged };
  for (let i = 0; i < count; i++) {
    let c = process.cpuUsage();
    let t = performance.now();
    await rounds.once();
    report.rounds.push({ cpuMs: cpuMs(c), wallMs: performance.now() - t });
    c = process.cpuUsage();
    t = performance.now();
    const html = await board.page(Date.now());
    report.pages.push({ cpuMs: cpuMs(c), wallMs: performance.now() - t, bytes: Buffer.byteLength(html) });
  }
  report.after = memory();
  const { heapTotal, heapUsed, external } = process.memoryUsage();
  report.heap = { heapTotal, heapUsed, external };
  await store.close();
  process.stdout.write(JSON.stringify(report) + '\n');
}

await main();
