// `storm controller`: the long-running third face of the executable. Each round it samples the
// guests' CPU (controller/sampler.ts), then takes every scaling group in its store and runs one
// pass over it (controller/group-pass.ts), with a fresh host session each round, so it never
// acts on an old observation. Stops cleanly on SIGTERM/SIGINT after
// the pass in progress; a kill at any other moment is what the passes are built to survive.
import { parseArgs } from 'node:util';
import type { Logger } from '../contract.ts';
import { HostSession } from '../host/session.ts';
import { runGroupPass } from './group-pass.ts';
import { CpuSampler } from './sampler.ts';
import { openSqliteStore } from './store-sqlite.ts';

const USAGE = `Usage: storm controller run --db FILE [--interval SECONDS]

Runs storm's controller: every interval, each scaling group in the store is reconciled with the
hosts (libvirt is the truth), its load read, and members added or removed by its policy. Every
decision is logged on stderr with its reason and numbers, and kept in the store.

Options:
  --db FILE           the controller's SQLite store (created if missing)
  --interval SECONDS  time between rounds (default 5)
  -h, --help          this text`;

function lineLogger(): Logger {
  const write = (level: string) => (message: string, fields?: Record<string, unknown>) =>
    process.stderr.write(`${new Date().toISOString()} ${level} ${message}${fields && Object.keys(fields).length ? ` ${JSON.stringify(fields)}` : ''}\n`);
  return { debug: () => {}, info: write('info'), warn: write('warn'), error: write('error') };
}

export async function runController(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { db: { type: 'string' }, interval: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  } catch (err) {
    process.stderr.write(`storm controller: ${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help || positionals[0] !== 'run') {
    process.stdout.write(USAGE + '\n');
    return values.help ? 0 : 2;
  }
  const interval = Number(values.interval ?? 5);
  if (!values.db || !Number.isFinite(interval) || interval <= 0) {
    process.stderr.write(`storm controller: ${values.db ? '--interval must be a positive number of seconds' : '--db FILE is required'}\n\n${USAGE}\n`);
    return 2;
  }
  const log = lineLogger();
  const store = await openSqliteStore(values.db);
  const stop = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => stop.abort());
  log.info('controller started', { db: values.db, interval });
  const sampler = new CpuSampler();
  while (!stop.signal.aborted) {
    const session = new HostSession();
    const groups = await store.groups();
    await sampler.sampleRound(store, session, groups, Date.now()).catch((err: unknown) => log.error(`sampling failed: ${(err as Error).message}`));
    for (const group of groups) {
      try {
        await runGroupPass({ session, log, signal: stop.signal, warn: (summary, detail) => log.warn(summary, { detail }), store, now: Date.now, report: null }, group);
      } catch (err) {
        log.error(`pass over group ${group.name} failed: ${(err as Error).message}`, { group: group.name });
      }
    }
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, interval * 1000);
      stop.signal.addEventListener('abort', () => { clearTimeout(timer); resolve(undefined); }, { once: true });
    });
  }
  await store.close();
  log.info('controller stopped');
  return 0;
}
