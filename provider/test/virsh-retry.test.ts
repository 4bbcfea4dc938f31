// Transient libvirt refusals are retried with backoff and a bound; permanent ones fail at once;
// a broken connection is retried only for commands that change nothing. The real virsh is
// exercised by every e2e suite; here a stand-in on PATH plays the refusals, which a real
// libvirtd produces only under races (e.g. pool-refresh during an upload).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LibvirtError, LibvirtUnreachableError } from '../src/drivers/errors.ts';
import { RETRY, virsh } from '../src/drivers/virsh.ts';

let dir: string;
const savedPath = process.env.PATH;
const savedDelay = RETRY.firstDelayMs;

/** A virsh that fails `failures` times with `message`, then prints "ok"; it counts its calls. */
function fakeVirsh(failures: number, message: string): void {
  writeFileSync(join(dir, 'calls'), '');
  writeFileSync(
    join(dir, 'virsh'),
    `#!/bin/sh\necho x >> '${join(dir, 'calls')}'\nn=$(wc -l < '${join(dir, 'calls')}')\nif [ "$n" -le ${failures} ]; then echo "error: ${message}" >&2; exit 1; fi\necho ok\n`,
  );
  chmodSync(join(dir, 'virsh'), 0o755);
}
const calls = () => readFileSync(join(dir, 'calls'), 'utf8').split('\n').filter(Boolean).length;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'storm-virsh-'));
  process.env.PATH = `${dir}:${savedPath}`;
  RETRY.firstDelayMs = 1;
});
after(() => {
  process.env.PATH = savedPath;
  RETRY.firstDelayMs = savedDelay;
  rmSync(dir, { recursive: true, force: true });
});

test('"asynchronous jobs running" is retried until it passes', async () => {
  fakeVirsh(2, "internal error: pool 'storm' has asynchronous jobs running.");
  assert.equal(await virsh('qemu:///system', 'pool-refresh storm'), 'ok');
  assert.equal(calls(), 3);
});

test('a transient refusal that persists fails after the bound, saying so', async () => {
  fakeVirsh(99, "internal error: pool 'storm' has asynchronous jobs running.");
  await assert.rejects(virsh('qemu:///system', 'pool-refresh storm'), (err: Error) => err instanceof LibvirtError && /after 6 attempts/.test(err.message));
  assert.equal(calls(), RETRY.attempts);
});

test('a broken connection is retried for a read, not for a write (which reports the server unreachable)', async () => {
  fakeVirsh(1, 'End of file while reading data: Input/output error');
  assert.equal(await virsh('qemu:///system', 'vol-dumpxml --pool storm base-x'), 'ok');
  assert.equal(calls(), 2);
  fakeVirsh(1, 'End of file while reading data: Input/output error');
  // The server went away under a change: reported as unreachable, not as a refusal.
  await assert.rejects(virsh('qemu:///system', 'vol-create-as storm x 1024'), (err: unknown) => err instanceof LibvirtUnreachableError && /connection broke during vol-create-as/.test(err.message));
  assert.equal(calls(), 1, 'a create that may have happened is not sent again');
});

test('a permanent failure is not retried', async () => {
  fakeVirsh(99, "Storage volume not found: no storage vol with matching name 'x'");
  await assert.rejects(virsh('qemu:///system', 'vol-dumpxml --pool storm x'), LibvirtError);
  assert.equal(calls(), 1);
});
