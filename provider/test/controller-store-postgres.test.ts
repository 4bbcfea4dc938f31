// The controller's shared store against a real PostgreSQL (a throwaway cluster, test/lib/postgres.ts):
// the store contract the SQLite store keeps, a leader SIGKILLed and another controller taking
// over, a writer SIGKILLed mid-round leaving whole rounds, and the operator's errors (server
// down, login refused, a database not its own) said plainly.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Client } from 'pg';
import { startPostgres, type Postgres } from '../../test/lib/postgres.ts';
import { openStore } from '../src/controller/open-store.ts';
import { redactUrl } from '../src/controller/redact.ts';
import { openPostgresStore, PostgresStoreError } from '../src/controller/store-postgres.ts';
import { sampleGroup, storeContract } from './lib/store-contract.ts';

const STORE_MODULE = fileURLToPath(new URL('../src/controller/store-postgres.ts', import.meta.url));

let server: Postgres | undefined;
const dir = mkdtempSync(join(tmpdir(), 'storm-store-pg-'));

before(async () => {
  server = await startPostgres();
});

after(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function serverUrl(): string {
  if (!server) throw new Error('PostgreSQL did not start (see the before hook)');
  return server.url;
}

/** The server's URL, changed (its port, password, database, parameters). */
function urlWith(change: (u: URL) => void): string {
  const u = new URL(serverUrl());
  change(u);
  return u.toString();
}

async function admin<T>(work: (c: Client) => Promise<T>, url = serverUrl()): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/**
 * A fresh, empty schema as the URL's search_path: each test starts from nothing, as a new
 * controller would (a schema is made in milliseconds, a database in a few hundred).
 */
let schemas = 0;
async function freshSchema(): Promise<string> {
  const name = `t${schemas++}`;
  await admin((c) => c.query(`create schema ${name}`));
  return urlWith((u) => u.searchParams.set('options', `-c search_path=${name}`));
}

async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const address = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  assert.ok(address && typeof address !== 'string');
  return address.port;
}

/** The message an operator reads: names the server, never its password, says what to check. */
function plain(password: string, said: RegExp, check: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof PostgresStoreError, String(err));
    assert.match(err.message, said);
    assert.match(err.message, check);
    assert.match(err.message, /PostgreSQL store postgres:\/\/storm@127\.0\.0\.1:\d+\//, 'the URL, without the password');
    assert.ok(!err.message.includes(password), 'no password in the message');
    assert.ok(!/\n\s+at /.test(err.message), 'no stack in the message');
    return true;
  };
}

/** A controller-like process: tries to lead every second, prints 'leads' or 'follows' and the time. */
function controller(url: string, holder: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', '--no-warnings', '--input-type=module', '-e', `
    const { openPostgresStore } = await import(${JSON.stringify(STORE_MODULE)});
    const store = await openPostgresStore(${JSON.stringify(url)});
    for (;;) {
      const leads = await store.lead(${JSON.stringify(holder)}, 10_000, Date.now());
      process.stdout.write((leads ? 'leads ' : 'follows ') + Date.now() + '\\n');
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  const waiters: { state: string; resolve: (at: number) => void }[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    const [state, at] = line.split(' ');
    for (const w of waiters.filter((x) => x.state === state)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(Number(at));
    }
  });
  return {
    child,
    holder,
    /** When it next prints `state` (its own clock, ms). */
    next(state: 'leads' | 'follows', timeoutMs: number): Promise<number> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${holder} did not print '${state}' within ${timeoutMs / 1000} s`)), timeoutMs);
        waiters.push({ state, resolve: (at) => { clearTimeout(timer); resolve(at); } });
      });
    },
  };
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

const ROUND = 200;

// At once, each in its own schema: the takeover waits out a 10 s lease, the rest runs meanwhile.
describe('PostgreSQL store', { concurrency: true }, () => {
  storeContract('postgres', async () => openPostgresStore(await freshSchema()));

  test('postgres store: two controllers open an empty store at once; the tables are made once, the store shared', async () => {
    const url = await freshSchema();
    const [a, b] = await Promise.all([openPostgresStore(url), openPostgresStore(url)]);
    try {
      await a.putGroup(sampleGroup('mail'));
      assert.deepEqual((await b.groups()).map((g) => g.name), ['mail']);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('postgres store: another version, or tables of the same names that are not a store, are refused', async () => {
    const url = await freshSchema();
    await (await openPostgresStore(url)).close();
    await admin((c) => c.query('update storm_schema set version = 99'), url);
    await assert.rejects(openPostgresStore(url), (err: Error) => {
      assert.ok(err instanceof PostgresStoreError);
      assert.match(err.message, /store of version 99, this controller reads version 1/);
      return true;
    });
    const other = await freshSchema();
    await admin((c) => c.query('create table servers (id int)'), other);
    await assert.rejects(openPostgresStore(other), /already has tables named servers but is not a storm controller store/);
  });

  test('openStore: a postgres:// or postgresql:// URL opens PostgreSQL, anything else an SQLite file', async () => {
    const url = await freshSchema();
    const pg = await openStore(url.replace(/^postgres:/, 'postgresql:'));
    await pg.putGroup(sampleGroup('web'));
    await pg.close();
    assert.equal((await admin((c) => c.query('select name from groups'), url)).rows[0]?.name, 'web');
    const file = join(dir, 'controller.db');
    const sqlite = await openStore(file);
    await sqlite.close();
    assert.ok(existsSync(file), 'an SQLite file where no URL is given');
  });

  test('postgres store: a server that is down, a refused login, a missing database are said plainly', async () => {
    const password = new URL(serverUrl()).password;
    const port = await closedPort();
    await assert.rejects(openPostgresStore(urlWith((u) => void (u.port = String(port)))), plain(password, /nothing accepts connections there/, /Check that PostgreSQL runs and listens/));
    await assert.rejects(openPostgresStore(urlWith((u) => void (u.password = 'wrong-secret'))), plain('wrong-secret', /refused the login \(password authentication failed for user "storm"\)/, /Check the user and password/));
    await assert.rejects(openPostgresStore(urlWith((u) => void (u.pathname = '/nosuch'))), plain(password, /the database does not exist/, /createdb/));
    assert.equal(redactUrl('postgres://storm:pw@db:5432/storm?password=pw2&sslmode=require'), 'postgres://storm@db:5432/storm?sslmode=require');
    assert.equal(redactUrl('postgres://storm:p#w/d@db/storm'), 'postgres://storm@db/storm', 'a password the URL parser cannot read');
  });

  test('postgres store: two controllers, one leads; SIGKILL the leader and the other leads within 15 s', async (t) => {
    const url = await freshSchema();
    const both = [controller(url, 'controller-a'), controller(url, 'controller-b')];
    try {
      // Started together: whichever takes the lease first is the leader, the other must follow.
      const first = await Promise.race(both.map(async (c) => (await c.next('leads', 20_000), c)));
      const other = both.find((c) => c !== first)!;
      await other.next('follows', 20_000);
      // Right after a renewal: the whole lease is left to run out, the slowest takeover there is.
      await first.next('leads', 5_000);
      const killedAt = Date.now();
      await kill(first.child);
      const ledAt = await other.next('leads', 15_000);
      const takeover = ledAt - killedAt;
      t.diagnostic(`takeover: ${other.holder} led ${(takeover / 1000).toFixed(1)} s after ${first.holder}'s SIGKILL (lease 10 s, renewed every 1 s)`);
      assert.ok(takeover < 15_000, `${takeover} ms`);
      assert.ok(takeover > 5_000, `the lease held while it ran (${takeover} ms)`);
    } finally {
      await Promise.all(both.map((c) => kill(c.child)));
    }
  });

  test('postgres store: SIGKILL in the middle of writing leaves whole rounds', async () => {
    const url = await freshSchema();
    const writer = spawn(process.execPath, ['--import', 'tsx', '--no-warnings', '--input-type=module', '-e', `
      const { openPostgresStore } = await import(${JSON.stringify(STORE_MODULE)});
      const s = await openPostgresStore(${JSON.stringify(url)});
      for (let round = 0; ; round++) {
        await s.recordSamples(Array.from({ length: ${ROUND} }, (_, i) => ({ at: round, subject: 'mx' + i, metric: 'cpu', value: Math.random() })));
        if (round === 5) process.stdout.write('writing\\n');
      }
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        writer.stdout.once('data', () => resolve());
        writer.once('exit', (code) => reject(new Error(`the writer ended before writing (exit ${code})`)));
      });
      await sleep(200);
    } finally {
      await kill(writer);
    }
    const { rows: [counts] } = await admin((c) => c.query<{ rounds: number; samples: number; partial: number }>(
      `select count(*)::int as rounds, coalesce(sum(n), 0)::int as samples, count(*) filter (where n <> ${ROUND})::int as partial
       from (select at, count(*) as n from samples group by at) as r`), url);
    assert.ok(counts && counts.rounds >= 6, `${counts?.rounds} rounds`);
    assert.equal(counts.partial, 0, `only whole rounds (${counts.samples} samples in ${counts.rounds} rounds)`);
  });
});

// Last: it stops the server the other tests use.
test('postgres store: the server stopping under a running controller is said plainly, not a crash', async () => {
  const url = await freshSchema();
  const store = await openPostgresStore(url);
  try {
    assert.equal(await store.lead('a', 10_000, Date.now()), true);
    await server?.stop();
    await sleep(100); // the pool hears its idle connections close; that must not end the process
    await assert.rejects(store.groups(), plain(new URL(url).password, /nothing accepts connections there|connection/, /Check /));
  } finally {
    await store.close();
  }
});
