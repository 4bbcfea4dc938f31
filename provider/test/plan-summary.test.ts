// The plan summary's pure core on hand-written plan fragments, shaped as `terraform show -json`
// prints them (test/e2e/plan-summary.test.ts runs it on real plans): grouping by server, the
// words for each replacement, capacity against the reserve, placement's expected choice, new
// layers, power, secrets, and input that is not a plan.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { planSummaryCommand } from '../src/cli/plan-summary.ts';
import { COMMENT_MARKER, headline, renderMarkdown } from '../src/plan/markdown.ts';
import { NotAPlanError, readPlanJson, type Json, type JsonObject } from '../src/plan/plan-json.ts';
import { summarizePlan } from '../src/plan/summary.ts';
import type { PlanSummary } from '../src/plan/types.ts';

const URI1 = 'qemu+tcp://10.0.0.11/system';
const URI2 = 'qemu+tcp://10.0.0.12/system';
const B1 = `blade1@${URI1}`;
const B2 = `blade2@${URI2}`;
const SHA = (c: string) => c.repeat(64);
const GIB = 1024;

type Actions = ('no-op' | 'create' | 'update' | 'delete')[];

interface Rc {
  address: string;
  type: string;
  name: string;
  index?: string | number;
  actions: Actions;
  before?: JsonObject | null;
  after?: JsonObject | null;
  afterUnknown?: Json;
  replacePaths?: (string | number)[][];
  reason?: string;
  afterSensitive?: Json;
  beforeSensitive?: Json;
}

function rc(r: Rc): Json {
  return {
    address: r.address,
    mode: 'managed',
    type: r.type,
    name: r.name,
    ...(r.index !== undefined ? { index: r.index } : {}),
    provider_name: 'registry.terraform.io/storm/storm',
    change: {
      actions: r.actions,
      before: r.before ?? null,
      after: r.after ?? null,
      after_unknown: r.afterUnknown ?? {},
      before_sensitive: r.beforeSensitive ?? {},
      after_sensitive: r.afterSensitive ?? {},
      ...(r.replacePaths ? { replace_paths: r.replacePaths } : {}),
    },
    ...(r.reason ? { action_reason: r.reason } : {}),
  };
}

function serverValues(name: string, uri: string, o: { memory?: number | null; cpus?: number | null; reserved?: number; power?: string; ipmi?: boolean } = {}): JsonObject {
  return {
    id: `${name}@${uri}`,
    name,
    libvirt_uri: uri,
    reserved_memory_mib: o.reserved ?? 128,
    memory_mib: o.memory === undefined ? 4 * GIB : o.memory,
    cpus: o.cpus === undefined ? 4 : o.cpus,
    power: o.power ?? 'on',
    ipmi: o.ipmi ? { address: '10.0.1.11', port: 623, username: 'admin', password: 'hunter2' } : null,
  };
}

const unchanged = (address: string, type: string, values: JsonObject, index?: string): Rc => ({ address, type, name: address.split('.')[1]!.replace(/\[.*$/, ''), index, actions: ['no-op'], before: values, after: values });

function applianceValues(server: string, name: string, version: string, o: { base?: string; image?: string; memory?: number } = {}): JsonObject {
  return {
    id: `app-${name}-${version}@${server}`,
    server,
    name,
    version,
    memory_mib: o.memory ?? 256,
    vcpus: 1,
    base: { name: 'debian-12', url: 'https://images.example/debian-12.qcow2', sha256: o.base ?? SHA('a') },
    image: { url: `https://images.example/${name}-${version}.qcow2`, sha256: o.image ?? SHA('b') },
    boot: null,
    size_bytes: 2 * GIB * 1024 * 1024,
  };
}

function instanceValues(name: string, server: string | null, memory: number, o: { state?: string; deployments?: string[]; vcpus?: number } = {}): JsonObject {
  return {
    id: server ? `inst-${name}@${server}` : null,
    name,
    server,
    deployments: o.deployments ?? [`dep-corp@${server}`],
    memory_mib: memory,
    vcpus: o.vcpus ?? 1,
    disk_size_mib: 2048,
    state: o.state ?? 'running',
  };
}

function planText(changes: Rc[], extra: JsonObject = {}): string {
  return JSON.stringify({ format_version: '1.2', terraform_version: '1.11.4', planned_values: { root_module: {} }, resource_changes: changes.map(rc), ...extra });
}

const summarize = (changes: Rc[], extra: JsonObject = {}, sizes = new Map<string, number>()): PlanSummary => summarizePlan(readPlanJson(planText(changes, extra)), { imageSizes: sizes });
const server = (s: PlanSummary, name: string) => s.servers.find((x) => x.name === name);

const twoServers = (o: Parameters<typeof serverValues>[2] = {}): Rc[] => [
  unchanged('storm_appliance_server.blade1', 'storm_appliance_server', serverValues('blade1', URI1, o)),
  unchanged('storm_appliance_server.blade2', 'storm_appliance_server', serverValues('blade2', URI2, o)),
];

describe('plan summary: changes by server, and why', () => {
  test('a version bump is a replacement that says it forces a new appliance layer; the deployment on it says it must follow', () => {
    const old = applianceValues(B1, 'mail', '1.0');
    const next = { ...applianceValues(B1, 'mail', '1.1', { image: SHA('c') }), id: null, size_bytes: null };
    const dep = { id: `dep-corp@${B1}`, appliance: old.id!, name: 'corp', image: null };
    const s = summarize(
      [
        ...twoServers(),
        { address: 'storm_appliance.mail["blade1"]', type: 'storm_appliance', name: 'mail', index: 'blade1', actions: ['delete', 'create'], before: old, after: next, afterUnknown: { id: true, size_bytes: true }, replacePaths: [['version'], ['image', 'sha256']], reason: 'replace_because_cannot_update' },
        { address: 'storm_deployment.corp["blade1"]', type: 'storm_deployment', name: 'corp', index: 'blade1', actions: ['delete', 'create'], before: dep, after: { ...dep, id: null, appliance: null }, afterUnknown: { id: true, appliance: true }, replacePaths: [['appliance']], reason: 'replace_because_cannot_update' },
      ],
      {
        configuration: {
          root_module: {
            resources: [
              { address: 'storm_deployment.corp', mode: 'managed', type: 'storm_deployment', name: 'corp', expressions: { appliance: { references: ['each.value.id', 'each.value'] } }, for_each_expression: { references: ['storm_appliance.mail'] } },
            ],
          },
        },
      },
    );
    const b1 = server(s, 'blade1');
    assert.ok(b1, 'both land on blade1: the deployment through its for_each');
    assert.deepEqual(b1.changes.map((c) => [c.kind, c.address]), [['replace', 'storm_appliance.mail["blade1"]'], ['replace', 'storm_deployment.corp["blade1"]']]);
    assert.deepEqual(b1.changes[0]!.details, ['version 1.0 → 1.1 forces a new appliance layer', 'a new appliance image (sha256 bbbbbbbbbbbb… → cccccccccccc…) forces a new appliance layer']);
    assert.match(b1.changes[1]!.details[0]!, /storm_appliance\.mail\["blade1"\] is replaced: a deployment layer cannot move to another appliance layer/);
    assert.equal(s.elsewhere.length, 0);
    assert.equal(headline(s), 'storm plan: 0 to create, 0 to change, 2 to replace, 0 to destroy on 1 server — fits');
  });

  test('an instance follows its replaced deployments: said so, placed again, and a disk known only after apply leaves the fit to memory', () => {
    const deps = [`dep-corp@${B1}`, `dep-corp@${B2}`];
    const inst = instanceValues('mx1', B1, 512, { deployments: deps });
    const dep = (server: string, key: string): Rc => ({
      address: `storm_deployment.corp["${key}"]`, type: 'storm_deployment', name: 'corp', index: key, actions: ['delete', 'create'],
      before: { id: `dep-corp@${server}`, appliance: `app-mail-1.0@${server}`, name: 'corp' }, after: { id: null, appliance: null, name: 'corp' },
      afterUnknown: { id: true, appliance: true }, replacePaths: [['appliance']],
    });
    const s = summarize(
      [
        ...twoServers(),
        dep(B1, 'blade1'),
        dep(B2, 'blade2'),
        { address: 'storm_instance.mx1', type: 'storm_instance', name: 'mx1', actions: ['delete', 'create'], before: inst, after: { ...inst, id: null, server: null, deployments: [null, null], disk_size_mib: null }, afterUnknown: { id: true, server: true, deployments: [true, true], disk_size_mib: true }, replacePaths: [['deployments']] },
      ],
      { configuration: { root_module: { resources: [{ address: 'storm_instance.mx1', mode: 'managed', type: 'storm_instance', name: 'mx1', expressions: { deployments: { references: ['storm_deployment.corp'] } } }] } } },
    );
    const line = server(s, 'blade1')!.changes.find((c) => c.address === 'storm_instance.mx1')!;
    assert.deepEqual(line.details, [
      'its deployments are made anew (storm_deployment.corp["blade1"] is replaced, storm_deployment.corp["blade2"] is replaced): an instance layer cannot move to another deployment layer',
      'no server given: placement is expected to choose blade1 of blade1, blade2',
    ]);
    assert.deepEqual(server(s, 'blade1')!.capacity.diskUnknown, ['storm_instance.mx1']);
    assert.equal(s.fit.verdict, 'fits', 'disk room is not part of the fit');
    assert.match(renderMarkdown(s), /\| 2048 → 0 \(−2048\) \+ 1 not known yet \|/);
  });

  test('Terraform\'s own reasons: tainted, -replace, removed from the configuration', () => {
    const inst = instanceValues('mx1', B1, 512);
    const s = summarize([
      ...twoServers(),
      { address: 'storm_instance.a', type: 'storm_instance', name: 'a', actions: ['delete', 'create'], before: inst, after: inst, reason: 'replace_because_tainted' },
      { address: 'storm_instance.b', type: 'storm_instance', name: 'b', actions: ['delete', 'create'], before: { ...inst, name: 'b' }, after: { ...inst, name: 'b' }, reason: 'replace_by_request' },
      { address: 'storm_instance.c', type: 'storm_instance', name: 'c', actions: ['delete'], before: { ...inst, name: 'c' }, after: null, reason: 'delete_because_no_resource_config' },
      { address: 'storm_instance.d', type: 'storm_instance', name: 'd', actions: ['delete', 'create'], before: { ...inst, name: 'd', disk_size_mib: 4096 }, after: { ...inst, name: 'd' }, replacePaths: [['disk_size_mib']], reason: 'replace_because_cannot_update' },
    ]);
    const lines = Object.fromEntries(server(s, 'blade1')!.changes.map((c) => [c.address, `${c.kind}: ${c.details.join('; ')}`]));
    assert.match(lines['storm_instance.a']!, /^replace: tainted/);
    assert.match(lines['storm_instance.b']!, /^replace: replacement requested \(terraform apply -replace\)/);
    assert.equal(lines['storm_instance.c'], 'destroy: removed from the configuration');
    assert.equal(lines['storm_instance.d'], 'replace: disk 4096 → 2048 MiB: a disk cannot shrink, so the instance is made anew (its data goes)');
    assert.deepEqual(s.counts, { create: 0, update: 0, replace: 3, destroy: 1, forget: 0 });
  });

  test('in-place updates list what changes, with what it means for a running instance', () => {
    const s = summarize([
      ...twoServers(),
      { address: 'storm_instance.mx1', type: 'storm_instance', name: 'mx1', actions: ['update'], before: instanceValues('mx1', B1, 512), after: { ...instanceValues('mx1', B1, 1024), ip: null }, afterUnknown: { ip: true } },
    ]);
    assert.deepEqual(server(s, 'blade1')!.changes, [{ address: 'storm_instance.mx1', kind: 'update', details: ['memory_mib 512 → 1024 (the running instance restarts)'] }]);
  });

  test('a forgotten instance is listed, and still counts on its server', () => {
    const inst = instanceValues('mx1', B1, 1024);
    const s = summarize([...twoServers(), { address: 'storm_instance.mx1', type: 'storm_instance', name: 'mx1', actions: ['forget' as 'delete'], before: inst, after: null }]);
    const b1 = server(s, 'blade1')!;
    assert.equal(b1.changes[0]!.kind, 'forget');
    assert.equal(b1.capacity.committedMemoryAfterMib, 1024);
  });
});

describe('plan summary: capacity against what a server may give', () => {
  test('memory grown past the free memory does not fit, in the placement\'s numbers (the 128 MiB reserve kept)', () => {
    const s = summarize([
      ...twoServers({ memory: 4096 }),
      unchanged('storm_instance.web', 'storm_instance', instanceValues('web', B1, 1024)),
      { address: 'storm_instance.mx1', type: 'storm_instance', name: 'mx1', actions: ['update'], before: instanceValues('mx1', B1, 512), after: instanceValues('mx1', B1, 3500) },
    ]);
    const c = server(s, 'blade1')!.capacity;
    assert.equal(c.committedMemoryBeforeMib, 1536);
    assert.equal(c.committedMemoryAfterMib, 4524);
    assert.equal(c.freeMemoryAfterMib, 4096 - 128 - 4524);
    assert.equal(c.fit.verdict, 'does-not-fit');
    assert.deepEqual(c.fit.problems, [
      'blade1 would be 556 MiB over: 4524 MiB committed, 4096 MiB of memory, 128 MiB of it reserved for the host',
      'storm_instance.mx1 needs 3500 MiB; blade1 has 2944 MiB free beside the rest, so the apply refuses it',
    ]);
    assert.equal(headline(s), 'storm plan: 0 to create, 1 to change, 0 to replace, 0 to destroy on 1 server — does not fit on blade1');
    const md = renderMarkdown(s);
    assert.match(md, /> \[!WARNING\]\n> - blade1 would be 556 MiB over/);
    assert.match(md, /\| \*\*blade1\*\* \| 1536 → 4524 \(\+2988\) of 4096 − 128 reserved: \*\*556 over\*\* \| 2 → 2 of 4 CPUs \|/);
  });

  test('exactly the usable memory fits; stopped instances hold their memory too', () => {
    const s = summarize([
      ...twoServers({ memory: 2048 + 128 }),
      unchanged('storm_instance.web', 'storm_instance', instanceValues('web', B1, 1024, { state: 'shutoff' })),
      { address: 'storm_instance.mx1', type: 'storm_instance', name: 'mx1', actions: ['create'], after: instanceValues('mx1', B1, 1024) },
    ]);
    const c = server(s, 'blade1')!.capacity;
    assert.equal(c.freeMemoryAfterMib, 0);
    assert.equal(c.fit.verdict, 'fits');
    assert.match(headline(s), /— fits$/);
  });

  test('a raised reserve shrinks what the server may give: over-committed without any instance changing', () => {
    const before = serverValues('blade1', URI1, { memory: 4096 });
    const s = summarize([
      { address: 'storm_appliance_server.blade1', type: 'storm_appliance_server', name: 'blade1', actions: ['update'], before, after: { ...before, reserved_memory_mib: 3584 } },
      unchanged('storm_instance.web', 'storm_instance', instanceValues('web', B1, 1024)),
    ]);
    const b1 = server(s, 'blade1')!;
    assert.equal(b1.capacity.fit.verdict, 'does-not-fit');
    assert.equal(b1.capacity.fit.problems[0], 'blade1 would be 512 MiB over: 1024 MiB committed, 4096 MiB of memory, 3584 MiB of it reserved for the host');
    assert.match(b1.changes[0]!.details[0]!, /^reserved_memory_mib 128 → 3584 \(memory kept for the host itself/);
  });

  test('an instance without a server: placement\'s choice is foreseen (the least loaded), its memory from its appliance', () => {
    const app1 = applianceValues(B1, 'mail', '1.0', { memory: 768 });
    const app2 = applianceValues(B2, 'mail', '1.0', { memory: 768 });
    const deps = [`dep-corp@${B1}`, `dep-corp@${B2}`];
    const s = summarize([
      ...twoServers(),
      unchanged('storm_appliance.mail["blade1"]', 'storm_appliance', app1, 'blade1'),
      unchanged('storm_appliance.mail["blade2"]', 'storm_appliance', app2, 'blade2'),
      unchanged('storm_deployment.corp["blade1"]', 'storm_deployment', { id: deps[0]!, appliance: app1.id!, name: 'corp' }, 'blade1'),
      unchanged('storm_deployment.corp["blade2"]', 'storm_deployment', { id: deps[1]!, appliance: app2.id!, name: 'corp' }, 'blade2'),
      unchanged('storm_instance.big', 'storm_instance', instanceValues('big', B1, 2048, { deployments: deps })),
      { address: 'storm_instance.mx', type: 'storm_instance', name: 'mx', actions: ['create'], after: { ...instanceValues('mx', null, 0, { deployments: deps }), memory_mib: null, vcpus: null, disk_size_mib: null }, afterUnknown: { server: true, memory_mib: true, vcpus: true, disk_size_mib: true, id: true } },
    ]);
    const b2 = server(s, 'blade2')!;
    assert.deepEqual(b2.changes.map((c) => c.address), ['storm_instance.mx']);
    assert.equal(b2.changes[0]!.details[0], 'no server given: placement is expected to choose blade2 of blade1, blade2');
    assert.equal(b2.capacity.committedMemoryAfterMib, 768, 'the appliance\'s memory_mib');
    assert.equal(b2.capacity.instanceDiskAfterMib, 2048, 'the appliance\'s size');
  });

  test('an instance that fits on no candidate says why for each', () => {
    const deps = [`dep-corp@${B1}`, `dep-corp@${B2}`];
    const s = summarize([
      unchanged('storm_appliance_server.blade1', 'storm_appliance_server', serverValues('blade1', URI1, { memory: 2048 })),
      { address: 'storm_appliance_server.blade2', type: 'storm_appliance_server', name: 'blade2', actions: ['update'], before: serverValues('blade2', URI2, { ipmi: true }), after: serverValues('blade2', URI2, { ipmi: true, power: 'off' }), afterSensitive: { ipmi: { password: true } }, beforeSensitive: { ipmi: { password: true } } },
      { address: 'storm_instance.mx', type: 'storm_instance', name: 'mx', actions: ['create'], after: { ...instanceValues('mx', null, 4096, { deployments: deps }) }, afterUnknown: { server: true } },
    ]);
    assert.deepEqual(s.elsewhere.map((l) => l.details), [['fits nowhere: no server fits 4096 MiB and 1 vCPU: blade1 has 1920 MiB free; blade2 is powered off by this plan']]);
    assert.equal(s.fit.verdict, 'does-not-fit');
  });

  test('a new server\'s capacity is known only once it is on: the fit is not known, and says so', () => {
    const values = { ...serverValues('blade1', URI1), cpus: null, memory_mib: null };
    const s = summarize([
      { address: 'storm_appliance_server.blade1', type: 'storm_appliance_server', name: 'blade1', actions: ['create'], after: values, afterUnknown: { cpus: true, memory_mib: true } },
      { address: 'storm_instance.mx', type: 'storm_instance', name: 'mx', actions: ['create'], after: instanceValues('mx', B1, 512) },
    ]);
    assert.equal(s.fit.verdict, 'unknown');
    assert.match(headline(s), /— fits as far as is known$/);
    assert.match(s.fit.problems[0]!, /^blade1: a new server/);
  });
});

describe('plan summary: layers and downloads', () => {
  test('a base an appliance that stays already stands on is not uploaded again; images are downloaded once for all servers', () => {
    const kept = applianceValues(B1, 'web', '2.0');
    const mail1 = { ...applianceValues(B1, 'mail', '1.0'), id: null };
    const mail2 = { ...applianceValues(B2, 'mail', '1.0'), id: null };
    const sizes = new Map([[SHA('a'), 300 * 1024 * 1024]]);
    const s = summarize(
      [
        ...twoServers(),
        unchanged('storm_appliance.web', 'storm_appliance', kept),
        { address: 'storm_appliance.mail["blade1"]', type: 'storm_appliance', name: 'mail', index: 'blade1', actions: ['create'], after: mail1, afterUnknown: { id: true } },
        { address: 'storm_appliance.mail["blade2"]', type: 'storm_appliance', name: 'mail', index: 'blade2', actions: ['create'], after: mail2, afterUnknown: { id: true } },
      ],
      {},
      sizes,
    );
    assert.deepEqual(server(s, 'blade1')!.layers.map((l) => `${l.kind} ${l.label}`), ['appliance mail 1.0'], 'the base is on blade1 already');
    assert.deepEqual(server(s, 'blade2')!.layers.map((l) => `${l.kind} ${l.label} ${l.sizeBytes}`), [`base debian-12 ${300 * 1024 * 1024}`, 'appliance mail 1.0 null']);
    assert.deepEqual(s.downloads.map((d) => [d.kinds.join('+'), d.servers.join(','), d.sizeBytes]), [['base', 'blade2', 300 * 1024 * 1024], ['appliance', 'blade1,blade2', null]]);
    const md = renderMarkdown(s);
    assert.match(md, /\| `debian-12\.qcow2` `aaaaaaaaaaaa` \| base debian-12 \| 300 MiB \| blade2 \|/);
    assert.match(md, /\| `mail-1\.0\.qcow2` `bbbbbbbbbbbb` \| appliance mail 1\.0 \| size unknown \| blade1, blade2 \|/);
    assert.match(md, /2 images, 300 MiB \+ 1 of unknown size/);
  });

  test('a direct-boot appliance\'s kernel and initrd are layers of their own, named once', () => {
    const boot = { kernel_url: 'https://images.example/vmlinuz', kernel_sha256: SHA('d'), initrd_url: 'https://images.example/initrd.gz', initrd_sha256: SHA('e'), cmdline: null };
    const mail = { ...applianceValues(B1, 'mail', '1.0'), id: null, boot };
    const md = renderMarkdown(summarize([...twoServers(), { address: 'storm_appliance.mail', type: 'storm_appliance', name: 'mail', actions: ['create'], after: mail, afterUnknown: { id: true } }]));
    assert.match(md, /\| `vmlinuz` `dddddddddddd` \| kernel of mail 1\.0 \| size unknown \| blade1 \|/);
    assert.match(md, /\| `initrd\.gz` `eeeeeeeeeeee` \| initrd of mail 1\.0 \| size unknown \| blade1 \|/);
  });
});

describe('plan summary: power', () => {
  const withBmc = (power: string) => serverValues('blade2', URI2, { ipmi: true, power });
  const sensitive = { ipmi: { password: true } };

  test('on → off, on → controller, and a new server', () => {
    const s = summarize([
      { address: 'storm_appliance_server.blade1', type: 'storm_appliance_server', name: 'blade1', actions: ['update'], before: { ...withBmc('on'), id: B1, name: 'blade1', libvirt_uri: URI1 }, after: { ...withBmc('controller'), id: B1, name: 'blade1', libvirt_uri: URI1 }, beforeSensitive: sensitive, afterSensitive: sensitive },
      { address: 'storm_appliance_server.blade2', type: 'storm_appliance_server', name: 'blade2', actions: ['update'], before: withBmc('on'), after: withBmc('off'), beforeSensitive: sensitive, afterSensitive: sensitive },
      { address: 'storm_appliance_server.blade3', type: 'storm_appliance_server', name: 'blade3', actions: ['create'], after: { ...serverValues('blade3', 'qemu+tcp://10.0.0.13/system', { ipmi: true }), cpus: null, memory_mib: null }, afterUnknown: { cpus: true, memory_mib: true }, afterSensitive: sensitive },
    ]);
    assert.deepEqual(s.servers.map((x) => [x.name, x.power]), [
      ['blade1', { from: 'on', to: 'controller', note: 'handed to the storm controller, which powers it on and off by load' }],
      ['blade2', { from: 'on', to: 'off', note: 'powered off through its BMC' }],
      ['blade3', { from: null, to: 'on', note: 'a new server: powered on through its BMC if it is off' }],
    ]);
    const md = renderMarkdown(s);
    assert.match(md, /#### Power\n\n- \*\*blade1\*\*: on → controller \(handed to the storm controller/);
    assert.match(md, /- \*\*blade2\*\*: on → off \(powered off through its BMC\)/);
    assert.match(md, /\| on → \*\*off\*\* \|/);
  });

  test('powering off a server that will run an instance is a warning: the apply refuses it', () => {
    const s = summarize([
      { address: 'storm_appliance_server.blade2', type: 'storm_appliance_server', name: 'blade2', actions: ['update'], before: withBmc('on'), after: withBmc('off'), beforeSensitive: sensitive, afterSensitive: sensitive },
      unchanged('storm_instance.mx', 'storm_instance', instanceValues('mx', B2, 512)),
    ]);
    assert.deepEqual(s.warnings, ['blade2 is powered off while storm_instance.mx would run on it: storm refuses to power off a server that runs domains, so the apply fails there']);
    assert.match(renderMarkdown(s), /> \[!WARNING\]\n> - blade2 is powered off while storm_instance\.mx would run/);
  });

  test('power changed outside Terraform says so; a BMC password is never shown', () => {
    const s = summarize(
      [{ address: 'storm_appliance_server.blade2', type: 'storm_appliance_server', name: 'blade2', actions: ['update'], before: withBmc('off'), after: { ...withBmc('on'), ipmi: { address: '10.0.1.11', port: 623, username: 'admin', password: 'correct horse' } }, beforeSensitive: sensitive, afterSensitive: sensitive }],
      { resource_drift: [rc({ address: 'storm_appliance_server.blade2', type: 'storm_appliance_server', name: 'blade2', actions: ['update'], before: withBmc('on'), after: withBmc('off') })] },
    );
    assert.deepEqual(server(s, 'blade2')!.power, { from: 'off', to: 'on', note: 'it was on at the last apply: changed outside Terraform; powered on through its BMC; the apply waits until libvirt answers' });
    const md = renderMarkdown(s);
    assert.doesNotMatch(md, /hunter2|correct horse/);
    assert.match(md, /ipmi changes/);
  });
});

describe('plan summary: Markdown', () => {
  const many = (n: number): Rc[] => [...twoServers(), ...Array.from({ length: n }, (_, i): Rc => ({ address: `storm_instance.mx[${i}]`, type: 'storm_instance', name: 'mx', index: i, actions: ['create'], after: instanceValues(`mx${i}`, i % 2 ? B2 : B1, 64) }))];

  test('the same plan in another order gives the same bytes, sorted by server and address', () => {
    const changes = many(12);
    const a = renderMarkdown(summarize(changes));
    const b = renderMarkdown(summarize([...changes].reverse()));
    assert.equal(a, b);
    assert.ok(a.startsWith(`${COMMENT_MARKER}\n### storm plan: 12 to create,`));
    assert.ok(a.indexOf('`storm_instance.mx[2]`') < a.indexOf('`storm_instance.mx[10]`'), 'numeric order');
    assert.ok(a.indexOf('**blade1**') < a.indexOf('**blade2**'));
  });

  test('a long list folds into <details>; a short one does not', () => {
    assert.match(renderMarkdown(summarize(many(16))), /<details>\n<summary>All 16 changes, by server<\/summary>\n\n\*\*blade1\*\*/);
    assert.doesNotMatch(renderMarkdown(summarize(many(4))), /<details>/);
    assert.match(renderMarkdown(summarize(many(4)), { foldAbove: 2 }), /<details>/);
  });

  test('a plan without changes says so', () => {
    const s = summarize(twoServers());
    assert.equal(headline(s), 'storm plan: no changes');
    assert.equal(renderMarkdown(s), `${COMMENT_MARKER}\n### storm plan: no changes\n`);
  });

  test('text from the configuration cannot inject Markdown or HTML', () => {
    const before = applianceValues(B1, 'mail', '1.0');
    const s = summarize([...twoServers(), { address: 'storm_appliance.mail', type: 'storm_appliance', name: 'mail', actions: ['delete', 'create'], before, after: { ...before, version: '1.0|<img src=x>' }, replacePaths: [['version']] }]);
    assert.match(renderMarkdown(s), /version 1\.0 → 1\.0\\\|\\<img src=x\\>/);
  });
});

describe('not a plan', () => {
  const problem = (text: string): string => {
    try {
      readPlanJson(text);
    } catch (e) {
      assert.ok(e instanceof NotAPlanError);
      return `${e.problem} ${e.fix}`;
    }
    assert.fail('accepted');
  };

  test('a state, another format version, something else, the binary plan file', () => {
    assert.match(problem(JSON.stringify({ format_version: '1.0', terraform_version: '1.11.4', values: { root_module: {} } })), /is a Terraform state .* not a plan\. Give it the JSON of a saved plan: terraform plan -out=tfplan && terraform show -json tfplan/);
    assert.match(problem(JSON.stringify({ format_version: '1.0' })), /Terraform state/);
    assert.match(problem(JSON.stringify({ format_version: '2.0', planned_values: {} })), /format_version is 2\.0; this storm reads 1\.x .* Update storm/);
    assert.match(problem('{"hello": 1}'), /no format_version/);
    assert.match(problem('not json'), /not JSON/);
    assert.match(problem('PK\u0003\u0004...'), /saved plan file itself .* terraform show -json tfplan/);
    assert.match(problem(JSON.stringify({ format_version: '1.2', planned_values: {}, resource_changes: [{ address: 'x' }] })), /resource_changes\[0\] is not a resource change/);
  });
});

describe('storm plan-summary', () => {
  let dir: string;
  const io = (stdin = '') => {
    let out = '';
    let err = '';
    return { io: { stdout: { write: (t: string) => (out += t) }, stderr: { write: (t: string) => (err += t) }, stdin: async () => stdin, stdinIsTty: false, cwd: dir }, out: () => out, err: () => err };
  };
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'storm-plan-summary-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('a plan file: exit 0 and the Markdown on stdout; local images get their sizes', async () => {
    const image = path.join(dir, 'mail.qcow2');
    await writeFile(image, Buffer.alloc(3 * 1024 * 1024));
    const app = { ...applianceValues(B1, 'mail', '1.0'), image: { url: `file://${image}`, sha256: SHA('b') }, id: null };
    await writeFile(path.join(dir, 'plan.json'), planText([...twoServers(), { address: 'storm_appliance.mail', type: 'storm_appliance', name: 'mail', actions: ['create'], after: app, afterUnknown: { id: true } }]));
    const c = io();
    assert.equal(await planSummaryCommand(['plan.json'], c.io), 0, c.err());
    assert.equal(c.err(), '');
    assert.match(c.out(), /\| `mail\.qcow2` `bbbbbbbbbbbb` \| appliance mail 1\.0 \| 3 MiB \| blade1 \|/);
    assert.match(c.out(), /\| `debian-12\.qcow2` `aaaaaaaaaaaa` \| base debian-12 \| size unknown \| blade1 \|/);
  });

  test('from standard input', async () => {
    const c = io(planText(twoServers()));
    assert.equal(await planSummaryCommand([], c.io), 0);
    assert.match(c.out(), /no changes/);
  });

  test('a state instead of a plan: exit 1, the file, what is wrong, the fix', async () => {
    await writeFile(path.join(dir, 'state.json'), JSON.stringify({ format_version: '1.0', values: {} }));
    const c = io();
    assert.equal(await planSummaryCommand(['state.json'], c.io), 1);
    assert.equal(c.out(), '');
    assert.equal(c.err(), 'storm plan-summary: state.json: This is a Terraform state (`terraform show -json` without a plan file), not a plan.\n  Give it the JSON of a saved plan: terraform plan -out=tfplan && terraform show -json tfplan > plan.json.\n');
  });

  test('no such file, bad options: exit 2', async () => {
    const c = io();
    assert.equal(await planSummaryCommand(['missing.json'], c.io), 2);
    assert.match(c.err(), /^storm plan-summary: missing\.json: no such file\.\n  Make it with: terraform plan -out=tfplan && terraform show -json tfplan > missing\.json\n$/);
    assert.equal(await planSummaryCommand(['--fold-above', 'many', 'x.json'], io().io), 2);
    assert.equal(await planSummaryCommand(['a.json', 'b.json'], io().io), 2);
  });
});

describe('download sizes a channel told the plan', () => {
  test('data.storm_appliance image_size_bytes, by sha256, from the prior state and planned values (child modules too)', async () => {
    const { channelImageSizes } = await import('../src/plan/layers.ts');
    const sha = (c: string) => c.repeat(64);
    const sizes = channelImageSizes({
      format_version: '1.2',
      prior_state: { values: { root_module: { resources: [{ address: 'data.storm_appliance.a', mode: 'data', type: 'storm_appliance', name: 'a', values: { image_sha256: sha('a'), image_size_bytes: 1234 } }] } } },
      planned_values: {
        root_module: {
          child_modules: [{ resources: [{ address: 'module.m.data.storm_appliance.b', mode: 'data', type: 'storm_appliance', name: 'b', values: { image_sha256: sha('b'), image_size_bytes: null } }] }],
        },
      },
    });
    assert.deepEqual([...sizes], [[sha('a'), 1234]]);
  });
});
