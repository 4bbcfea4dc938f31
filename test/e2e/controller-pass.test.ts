// The controller's pass over a scaling group, on a real lab blade with real libvirt: the group
// grows to its minimum, grows on load held past its threshold, shrinks newest-first when quiet,
// and after a crash between making a member and writing it down (or a member removed behind
// its back) the next pass adopts or replaces it: no duplicate, nothing lost. Load comes through
// the store, where the sampler (guest CPU, tested last here) and appliances' own reports put it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Logger } from '../../provider/src/contract.ts';
import { GROUP_CPU, MEMBER_LABELS, runGroupPass, type PassContext } from '../../provider/src/controller/group-pass.ts';
import { CPU_SECONDS, CpuSampler, MEMBERS } from '../../provider/src/controller/sampler.ts';
import { openSqliteStore } from '../../provider/src/controller/store-sqlite.ts';
import type { ControllerStore, GroupRecord } from '../../provider/src/controller/store.ts';
import { HostSession } from '../../provider/src/host/session.ts';
import { DEFAULT_SCALING } from '../../provider/src/policy/scaling.ts';
import { bladeServerHcl, startLab, type Blade, type Lab } from '../lib/lab.ts';
import { localApplianceHcl, makeTestLayers, type TestLayers } from '../lib/images.ts';
import { TerraformDir, resources, virsh } from '../lib/terraform.ts';

let lab: Lab;
let blade: Blade;
let layers: TestLayers;
let store: ControllerStore;
let clock = Date.now();
const tf = new TerraformDir();
const dir = mkdtempSync(join(tmpdir(), 'storm-controller-'));
const lines: string[] = [];
const log: Logger = { debug: () => {}, info: (m) => lines.push(m), warn: (m, f) => lines.push(`${m} ${JSON.stringify(f ?? {})}`), error: (m) => lines.push(m) };
let group: GroupRecord;

const ctx = (): PassContext => ({ session: new HostSession(), log, signal: new AbortController().signal, warn: () => {}, store, now: () => clock, report: null });

async function members(): Promise<string[]> {
  const names = (await virsh(blade.libvirtUri, 'list', '--all', '--name')).stdout.split('\n').map((l) => l.trim()).filter((n) => n.startsWith('web-'));
  return names.sort();
}

/** The group's mean CPU held at `value` for the last `seconds`, as the sampler would record it. */
async function load(value: number, seconds: number): Promise<void> {
  await store.recordSamples(Array.from({ length: seconds / 5 + 1 }, (_, i) => ({ at: clock - seconds * 1000 + i * 5000, subject: 'web', metric: GROUP_CPU, value })));
}

async function pass(): Promise<string> {
  const current = (await store.group('web'))!;
  const r = await runGroupPass(ctx(), current);
  return `${r.decision.action}: ${r.decision.reason}`;
}

before(async () => {
  lab = await startLab({ blades: 1, initialPower: 'on' });
  blade = lab.blades[0]!;
  layers = makeTestLayers();
  tf.write(`${bladeServerHcl(blade, '  accelerator = "tcg"')}
${localApplianceHcl('web', 'storm_appliance_server.blade1.id', { name: 'web', version: '1', baseName: 'webos', base: layers.base, image: layers.appliance })}
resource "storm_deployment" "web" {
  appliance = storm_appliance.web.id
  name      = "web"
}

resource "storm_network" "lan" {
  server = storm_appliance_server.blade1.id
  name   = "lan"
  cidr   = "192.168.241.0/24"
}
`);
  await tf.init();
  const r = await tf.apply();
  assert.equal(r.exitCode, 0, r.output);
  const deployment = String(resources(await tf.state()).find((x) => x.type === 'storm_deployment')!.values.id);
  store = await openSqliteStore(join(dir, 'controller.db'));
  group = {
    name: 'web',
    policy: { ...DEFAULT_SCALING, min: 1, max: 3, windowSeconds: 30, cooldownOutSeconds: 0, cooldownInSeconds: 60 },
    shape: { deployments: [deployment], memoryMib: 64, vcpus: 1, network: 'lan', variables: {}, files: [{ path: '/etc/motd', content: 'I am ${member}\n', permissions: '0644' }], services: [], placement: 'spread' },
    dnsName: null,
    metric: 'cpu',
    power: null,
    deleting: false,
    lastScaleOutAt: null,
    lastScaleInAt: null,
  };
  await store.putGroup(group);
});

after(async () => {
  for (const m of await members().catch(() => [])) await virsh(blade.libvirtUri, 'destroy', m).then(() => virsh(blade.libvirtUri, 'undefine', m));
  await tf.destroy();
  tf.remove();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
  layers?.remove();
  await lab?.stop();
});

test('the group grows to its minimum; its members carry the group\'s mark and their own index', async () => {
  assert.equal(await pass(), 'out: 0 member(s) < min 1');
  assert.deepEqual(await members(), ['web-0']);
  const xml = (await virsh(blade.libvirtUri, 'dumpxml', 'web-0')).stdout;
  assert.match(xml, new RegExp(`<storm:${MEMBER_LABELS.group}>web</storm:${MEMBER_LABELS.group}>`));
  assert.match(xml, new RegExp(`<storm:${MEMBER_LABELS.index}>0</storm:${MEMBER_LABELS.index}>`));
  assert.match((await virsh(blade.libvirtUri, 'domstate', 'web-0')).stdout, /running/);
  assert.equal(await pass(), 'none: load within bounds', 'no load known: nothing to do');
});

test('load held ≥ 90 % for the window adds a member, logged with its numbers', async () => {
  clock += 10_000;
  await load(0.95, 40);
  assert.match(await pass(), /^out: cpu 95 %–95 % ≥ 90 % for 30 s$/);
  assert.deepEqual(await members(), ['web-0', 'web-1']);
  assert.ok(lines.some((l) => /^scale out web: cpu 95 %.* → web-1 on blade1$/.test(l)), lines.join('\n'));
  const [d] = await store.decisions({ subject: 'web', limit: 1 });
  assert.match(d!.reason, /→ web-1 on blade1/);
});

test('a member made but not written down (the controller died) is adopted, not duplicated', async () => {
  await store.removeMember('web', 'web-1');
  clock += 1000;
  // The load is still high: the pass adopts web-1, then adds web-2 (not a second web-1).
  assert.match(await pass(), /^out: /);
  assert.ok(lines.some((l) => l.startsWith('adopting a member the store did not know') && l.includes('web-1')), lines.join('\n'));
  assert.deepEqual(await members(), ['web-0', 'web-1', 'web-2']);
  assert.deepEqual((await store.members('web')).map((m) => m.name), ['web-0', 'web-1', 'web-2']);
});

test('quiet for the window, after the in-cooldown, removes the newest members fewer would not miss, down to min', async () => {
  clock += 120_000;
  await load(0.05, 40);
  // 3 members at 5 %: one carries it far below 0.7 × 90 % (scale_in_target), so two go at once.
  assert.match(await pass(), /^in: cpu 5 % < 30 % for 30 s: 1 member\(s\) carry it at ≤ 63 %$/);
  assert.deepEqual(await members(), ['web-0']);
  assert.deepEqual((await store.members('web')).map((m) => m.name), ['web-0']);
});

test('a member removed behind the controller\'s back is forgotten, and min brings one back', async () => {
  for (const m of await members()) await virsh(blade.libvirtUri, 'destroy', m).then(() => virsh(blade.libvirtUri, 'undefine', m));
  clock += 1000;
  assert.equal(await pass(), 'out: 0 member(s) < min 1');
  assert.deepEqual(await members(), ['web-0']);
  assert.ok(lines.some((l) => l.startsWith('forgetting a member no host has')));
});

test('the sampler records each member\'s CPU from libvirt\'s counter, the group\'s mean and the server\'s load', async () => {
  const sampler = new CpuSampler();
  const session = new HostSession();
  const groups = [(await store.group('web'))!];
  const first = await sampler.sampleRound(store, session, groups, Date.now());
  assert.deepEqual(first.filter((s) => s.subject === 'web' && s.metric === GROUP_CPU), [], 'one reading is no rate: the first round only sets the baseline');
  assert.deepEqual(first.filter((s) => s.metric === MEMBERS).map((s) => s.value), [1], 'the member count is kept every round (the timeline)');
  await new Promise((r) => setTimeout(r, 2000));
  const at = Date.now();
  const second = await sampler.sampleRound(store, session, groups, at);
  const byKey = new Map(second.map((s) => [`${s.subject} ${s.metric}`, s.value]));
  assert.ok((byKey.get(`web-0 ${CPU_SECONDS}`) ?? -1) >= 0, 'CPU-seconds for accounting');
  for (const k of ['web-0 cpu', `web ${GROUP_CPU}`, 'blade1 cpu']) {
    const v = byKey.get(k);
    assert.ok(v !== undefined && v >= 0 && v <= 1, `${k} = ${v} (${JSON.stringify(second)})`);
  }
  assert.equal((await store.samples('web', GROUP_CPU, at, at)).length, 1, 'kept in the store for the passes');
});
