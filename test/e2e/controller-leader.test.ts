// Two real `storm controller run` processes on one PostgreSQL store (Debian's, started here):
// both serve the API, one leads the rounds; SIGKILL the leader and the other leads within 15 s.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { readControllerDir } from '../../provider/src/controller/init.ts';
import { controllerRequest } from '../../provider/src/drivers/controller-api.ts';
import { startPostgres, type Postgres } from '../lib/postgres.ts';
import { REPO_DIR } from '../lib/terraform.ts';

const STORM = join(REPO_DIR, 'build', 'bin', 'storm');
const work = mkdtempSync(join(tmpdir(), 'storm-leader-'));
let pg: Postgres;
const controllers = new Map<string, { child: ChildProcess; log: string[]; url: string }>();

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

async function start(id: string): Promise<void> {
  const port = await freePort();
  const child = spawn(STORM, ['controller', 'run', '--dir', join(work, 'ctl'), '--db', pg.url, '--listen', `127.0.0.1:${port}`, '--interval', '2', '--id', id], { stdio: ['ignore', 'ignore', 'pipe'] });
  const log: string[] = [];
  child.stderr!.on('data', (d: Buffer) => log.push(...d.toString().split('\n').filter(Boolean)));
  process.once('exit', () => child.kill('SIGKILL'));
  controllers.set(id, { child, log, url: `https://127.0.0.1:${port}` });
}

const leads = (id: string) => controllers.get(id)!.log.some((l) => l.includes(`${id} leads`));

before(async () => {
  pg = await startPostgres();
  execFileSync(STORM, ['controller', 'init', '--dir', join(work, 'ctl'), '--host', '127.0.0.1']);
  await start('ctl-a');
  await start('ctl-b');
});

after(async () => {
  for (const c of controllers.values()) c.child.kill('SIGKILL');
  await pg?.stop();
  rmSync(work, { recursive: true, force: true });
});

test('one of two controllers leads, both answer the API; the leader killed, the other leads within 15 s', async () => {
  const deadline = Date.now() + 20_000;
  while (!leads('ctl-a') && !leads('ctl-b')) {
    assert.ok(Date.now() < deadline, [...controllers.values()].flatMap((c) => c.log).join('\n'));
    await sleep(200);
  }
  await sleep(3000);
  const leader = leads('ctl-a') ? 'ctl-a' : 'ctl-b';
  const follower = leader === 'ctl-a' ? 'ctl-b' : 'ctl-a';
  assert.equal(leads(follower), false, 'only one leads');
  assert.ok(controllers.get(follower)!.log.some((l) => l.includes(`${follower} follows`)), controllers.get(follower)!.log.join('\n'));
  const files = await readControllerDir(join(work, 'ctl'));
  for (const c of controllers.values()) {
    const r = await controllerRequest({ url: c.url, token: files.adminToken, caPem: files.caPem }, 'GET', 'v1/groups');
    assert.equal(r.status, 200, 'every controller serves the API');
  }
  const killedAt = Date.now();
  controllers.get(leader)!.child.kill('SIGKILL');
  while (!leads(follower)) {
    assert.ok(Date.now() - killedAt < 15_000, `${follower} did not take over within 15 s:\n${controllers.get(follower)!.log.join('\n')}`);
    await sleep(100);
  }
  console.log(`# takeover: ${follower} leads ${((Date.now() - killedAt) / 1000).toFixed(1)} s after ${leader}'s SIGKILL (interval 2 s, lease 5 s)`);
});
