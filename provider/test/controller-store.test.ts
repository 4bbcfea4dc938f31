// The controller's embedded store: the store contract, and a controller killed (SIGKILL) in
// the middle of writing rounds of samples leaves a file that opens, checks clean and holds
// only whole rounds.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { openSqliteStore } from '../src/controller/store-sqlite.ts';
import { storeContract } from './lib/store-contract.ts';

const dir = mkdtempSync(join(tmpdir(), 'storm-store-'));
let n = 0;
storeContract('sqlite', () => openSqliteStore(join(dir, `contract-${n++}.db`)));

const ROUND = 50;

test('sqlite store: SIGKILL in the middle of writing leaves whole rounds and a clean file', async () => {
  const file = join(dir, 'killed.db');
  const store = fileURLToPath(new URL('../src/controller/store-sqlite.ts', import.meta.url));
  const writer = spawn(process.execPath, ['--import', 'tsx', '--no-warnings', '--input-type=module', '-e', `
    const { openSqliteStore } = await import(${JSON.stringify(store)});
    const s = await openSqliteStore(${JSON.stringify(file)});
    for (let round = 0; ; round++) {
      await s.recordSamples(Array.from({ length: ${ROUND} }, (_, i) => ({ at: round, subject: 'mx' + i, metric: 'cpu', value: Math.random() })));
      if (round === 5) process.stdout.write('writing\\n');
    }
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => writer.stdout.once('data', () => resolve()));
  await sleep(200);
  writer.kill('SIGKILL');
  await new Promise((resolve) => writer.once('exit', resolve));
  const { DatabaseSync } = await import('node:sqlite');
  const db = new DatabaseSync(file);
  try {
    assert.equal((db.prepare('pragma integrity_check').get() as { integrity_check: string }).integrity_check, 'ok');
    const { count } = db.prepare('select count(*) as count from samples').get() as { count: number };
    assert.ok(count >= 6 * ROUND, `${count} samples`);
    assert.equal(count % ROUND, 0, `only whole rounds (${count} samples)`);
  } finally {
    db.close();
  }
});

after(() => rmSync(dir, { recursive: true, force: true }));
