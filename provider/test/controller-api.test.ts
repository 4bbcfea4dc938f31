// The controller's API over real HTTPS (its own CA from `storm controller init`'s code): the
// admin token guards registration, a member's token reports for that member only, and every
// refused request (no token, wrong token, too big, not JSON, bad field) leaves the store as it was.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControllerApi, MAX_BODY_BYTES } from '../src/controller/api.ts';
import { sha256Hex } from '../src/controller/group-pass.ts';
import { initControllerDir, readControllerDir, type ControllerDir } from '../src/controller/init.ts';
import type { GroupRegistration } from '../src/controller/registration.ts';
import { openSqliteStore } from '../src/controller/store-sqlite.ts';
import type { ControllerStore } from '../src/controller/store.ts';
import { ControllerRefusedError, ControllerUnreachableError, controllerRequest, type ControllerConnection } from '../src/drivers/controller-api.ts';
import { DEFAULT_SCALING } from '../src/policy/scaling.ts';

const dir = mkdtempSync(join(tmpdir(), 'storm-api-'));
let store: ControllerStore;
let api: ControllerApi;
let files: ControllerDir;
let admin: ControllerConnection;
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

const group: GroupRegistration = {
  policy: { ...DEFAULT_SCALING, min: 1, max: 3 },
  shape: { deployments: ['dep-web@blade1@qemu+tcp://127.0.0.11/system'], memoryMib: 64, vcpus: 1, network: 'lan', variables: {}, files: [{ path: '/etc/motd', content: 'hi ${member}\n', permissions: '0644' }], services: ['http'], placement: 'spread' },
  dnsName: 'web',
  metric: 'cpu',
  power: null,
};

/** A raw request, for what the client never sends. */
function raw(method: string, path: string, body: string | Buffer | null, token: string | null, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, api.url), { method, ca: files.caPem, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    if (body !== null) req.write(body);
    req.end();
  });
}

before(async () => {
  await initControllerDir(join(dir, 'ctl'), ['127.0.0.1', 'localhost']);
  files = await readControllerDir(join(dir, 'ctl'));
  store = await openSqliteStore(join(dir, 'controller.db'));
  api = await ControllerApi.start({
    store, log: quiet, adminTokenSha256: sha256Hex(files.adminToken), tls: { certPem: files.certPem, keyPem: files.keyPem },
    host: '127.0.0.1', port: 0, now: Date.now, pages: { status: async () => '<!doctype html><title>storm</title>', timeline: async (span) => `<svg data-from="${span.from ?? ''}" data-to="${span.to ?? ''}"/>` },
  });
  admin = { url: api.url, token: files.adminToken, caPem: files.caPem };
});

after(async () => {
  await api.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

test('API: groups are registered, read, updated and marked for draining with the admin token', async () => {
  const made = await controllerRequest<{ desired: number; name: string }>(admin, 'PUT', 'v1/groups/web', group);
  assert.equal(made.status, 201);
  assert.equal(made.body?.desired, 0);
  const again = await controllerRequest<{ policy: { max: number } }>(admin, 'PUT', 'v1/groups/web', { ...group, policy: { ...group.policy, max: 5 } });
  assert.equal(again.status, 200);
  assert.equal(again.body?.policy.max, 5);
  assert.equal((await controllerRequest(admin, 'GET', 'v1/groups/nosuch')).status, 404);
  const gone = await controllerRequest<{ deleting: boolean }>(admin, 'DELETE', 'v1/groups/web');
  assert.equal(gone.body?.deleting, true);
  assert.equal((await store.group('web'))?.deleting, true);
  await controllerRequest(admin, 'PUT', 'v1/groups/web', group);
  assert.equal((await store.group('web'))?.deleting, false, 'registering again stops the drain');
});

test('API: without the admin token nothing is read or changed (401)', async () => {
  const before = JSON.stringify(await store.groups());
  for (const token of [null, 'not-the-token', `${files.adminToken}x`]) {
    assert.equal((await raw('PUT', '/v1/groups/evil', JSON.stringify(group), token, { 'content-type': 'application/json' })).status, 401);
    assert.equal((await raw('GET', '/v1/groups/web', null, token)).status, 401);
  }
  await assert.rejects(controllerRequest({ ...admin, token: 'wrong-token-123' }, 'GET', 'v1/groups/web'), (err: Error) => err instanceof ControllerRefusedError && /refused the token/.test(err.message));
  assert.equal(JSON.stringify(await store.groups()), before);
});

test('API: bad bodies get 4xx naming the field, and the store is untouched', async () => {
  const before = JSON.stringify(await store.groups());
  const cases: [string | Buffer, number, RegExp][] = [
    ['{"policy":', 400, /not JSON/],
    ['[]', 400, /must be an object/],
    [JSON.stringify({ ...group, policy: { ...group.policy, min: 4, max: 2 } }), 400, /policy\.min \(4\) is above policy\.max/],
    [JSON.stringify({ ...group, policy: { ...group.policy, guestCpuLow: 0.95 } }), 400, /guestCpuLow/],
    [JSON.stringify({ ...group, shape: { ...group.shape, deployments: ['../../etc/passwd'] } }), 400, /shape\.deployments/],
    [JSON.stringify({ ...group, shape: { ...group.shape, files: [{ path: 'relative', content: '', permissions: '0644' }] } }), 400, /absolute/],
    [JSON.stringify({ ...group, shape: { ...group.shape, memoryMib: 'lots' } }), 400, /shape\.memoryMib/],
    [JSON.stringify({ ...group, dnsName: 'Bad Name!' }), 400, /dnsName/],
    [JSON.stringify({ ...group, shape: { ...group.shape, placement: 'random' } }), 400, /shape\.placement/],
    [Buffer.alloc(MAX_BODY_BYTES + 10, 0x20), 413, /over/],
  ];
  for (const [body, status, said] of cases) {
    const r = await raw('PUT', '/v1/groups/web', body, files.adminToken, { 'content-type': 'application/json' });
    assert.equal(r.status, status, `${String(body).slice(0, 60)} → ${r.text}`);
    assert.match(r.text, said);
  }
  assert.equal((await raw('PUT', '/v1/groups/Not_A_Name', JSON.stringify(group), files.adminToken)).status, 400);
  assert.equal(JSON.stringify(await store.groups()), before);
});

test('API: a member reports its own load with its own token, and only its own', async () => {
  await store.putMember({ group: 'web', name: 'web-0', server: 'blade1@qemu+tcp://127.0.0.11/system', index: 0, createdAt: 1, tokenSha256: sha256Hex('token-of-web-0') });
  await store.putMember({ group: 'web', name: 'web-1', server: 'blade1@qemu+tcp://127.0.0.11/system', index: 1, createdAt: 2, tokenSha256: sha256Hex('token-of-web-1') });
  const body = JSON.stringify({ metrics: { queue: 12, requests_per_second: 3.5 } });
  assert.equal((await raw('POST', '/v1/members/web-0/load', body, 'token-of-web-0')).status, 202);
  assert.equal((await raw('POST', '/v1/members/web-1/load', body, 'token-of-web-0')).status, 403, 'one member cannot report for another');
  assert.equal((await raw('POST', '/v1/members/web-0/load', body, null)).status, 401);
  assert.equal((await raw('POST', '/v1/members/web-0/load', body, files.adminToken)).status, 403, 'the admin token is no member\'s');
  assert.equal((await raw('POST', '/v1/members/nosuch/load', body, 'token-of-web-0')).status, 401);
  assert.equal((await raw('POST', '/v1/members/web-0/load', JSON.stringify({ metrics: { cpu: 1 } }), 'token-of-web-0')).status, 400, 'cpu is the controller\'s own');
  assert.equal((await raw('POST', '/v1/members/web-0/load', JSON.stringify({ metrics: { queue: -1 } }), 'token-of-web-0')).status, 400);
  assert.equal((await raw('POST', '/v1/members/web-0/load', '{', 'token-of-web-0')).status, 400);
  const queue = await store.samples('web-0', 'queue', 0, Date.now() + 1);
  assert.deepEqual(queue.map((s) => s.value), [12], 'only the accepted report was recorded');
  assert.deepEqual(await store.samples('web-1', 'queue', 0, Date.now() + 1), []);
});

test('API: servers register with their BMC; the status page needs no token', async () => {
  const id = 'blade2@qemu+tcp://127.0.0.12/system';
  const r = await controllerRequest(admin, 'PUT', `v1/servers/${encodeURIComponent(id)}`, { name: 'blade2', uri: 'qemu+tcp://127.0.0.12/system', bmc: { address: '127.0.0.1', port: 9002, username: 'admin', password: 'pw' }, powerSensor: null });
  assert.equal(r.status, 200);
  assert.equal((await store.servers())[0]?.bmc?.port, 9002);
  await assert.rejects(controllerRequest(admin, 'PUT', `v1/servers/${encodeURIComponent('other@x')}`, { name: 'blade2', uri: 'qemu:///system', bmc: null, powerSensor: null }), /not name@uri/);
  const page = await raw('GET', '/status', null, null);
  assert.equal(page.status, 200);
  assert.match(page.text, /<title>storm/);
});

test('API: the timeline of a span: ?from=&to= as ISO times or epoch ms; anything else is 400 saying what to give', async () => {
  assert.equal((await raw('GET', '/status/timeline.svg', null, null)).text, '<svg data-from="" data-to=""/>');
  const iso = await raw('GET', '/status/timeline.svg?from=2026-11-30T20:50:00Z&to=1900000000000', null, null);
  assert.equal(iso.status, 200);
  assert.equal(iso.text, `<svg data-from="${Date.parse('2026-11-30T20:50:00Z')}" data-to="1900000000000"/>`);
  const bad = await raw('GET', '/status/timeline.svg?from=yesterday', null, null);
  assert.equal(bad.status, 400);
  assert.match((JSON.parse(bad.text) as { error: string }).error, /from="yesterday" is not a time: give ISO 8601 .* or epoch milliseconds/);
  assert.equal((await raw('GET', '/status/timeline.svg?from=2000&to=1000', null, null)).status, 400);
});

test('API: a client that trusts another CA refuses the controller, and says what to set', async () => {
  await initControllerDir(join(dir, 'other'), ['127.0.0.1']);
  const other = await readControllerDir(join(dir, 'other'));
  await assert.rejects(controllerRequest({ ...admin, caPem: other.caPem }, 'GET', 'v1/groups/web'), (err: Error) => err instanceof ControllerUnreachableError && /ca_pem/.test(err.message));
  await assert.rejects(controllerRequest({ ...admin, url: 'https://127.0.0.1:1' }, 'GET', 'v1/groups/web'), (err: Error) => err instanceof ControllerUnreachableError && /ECONNREFUSED/.test(err.message));
});
