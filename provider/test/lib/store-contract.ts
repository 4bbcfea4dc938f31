// The contract every controller store keeps, as tests: the embedded SQLite store runs it here,
// a shared PostgreSQL store will run the same.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ControllerStore, GroupRecord } from '../../src/controller/store.ts';
import { DEFAULT_SCALING } from '../../src/policy/scaling.ts';

export const sampleGroup = (name: string): GroupRecord => ({
  name,
  policy: { ...DEFAULT_SCALING, min: 1, max: 4 },
  shape: { deployments: ['dep-mail@blade1@qemu+tcp://10.0.0.11/system'], memoryMib: 256, vcpus: 1, network: 'lan', variables: { site: 'a' }, files: [], services: [], placement: 'spread' },
  dnsName: 'mail.storm.internal',
  metric: 'cpu',
  power: null,
  deleting: false,
  lastScaleOutAt: null,
  lastScaleInAt: null,
});

export function storeContract(kind: string, open: () => Promise<ControllerStore>): void {
  test(`${kind} store: a group's policy is Terraform's to change, when it scaled is the controller's`, async () => {
    const store = await open();
    try {
      await store.putGroup(sampleGroup('mail'));
      await store.markScaled('mail', 'out', 1000);
      await store.putGroup({ ...sampleGroup('mail'), policy: { ...sampleGroup('mail').policy, max: 8 }, lastScaleOutAt: null });
      const g = await store.group('mail');
      assert.equal(g?.policy.max, 8);
      assert.equal(g?.lastScaleOutAt, 1000, 'a re-registration keeps the controller\'s history');
      assert.deepEqual((await store.groups()).map((x) => x.name), ['mail']);
      assert.equal(await store.group('nosuch'), null);
    } finally {
      await store.close();
    }
  });

  test(`${kind} store: members by index; a deleted group takes its members`, async () => {
    const store = await open();
    try {
      await store.putGroup(sampleGroup('web'));
      await store.putMember({ group: 'web', name: 'web-2', server: 'b2', index: 2, createdAt: 20, tokenSha256: null });
      await store.putMember({ group: 'web', name: 'web-0', server: 'b1', index: 0, createdAt: 10, tokenSha256: 'ab'.repeat(32) });
      assert.deepEqual((await store.members('web')).map((m) => m.name), ['web-0', 'web-2']);
      await store.removeMember('web', 'web-0');
      assert.deepEqual((await store.members('web')).map((m) => m.name), ['web-2']);
      await store.deleteGroup('web');
      assert.deepEqual(await store.members('web'), []);
    } finally {
      await store.close();
    }
  });

  test(`${kind} store: decisions newest first, by subject; samples by range; pruning; boot history`, async () => {
    const store = await open();
    try {
      for (let i = 0; i < 5; i++) await store.recordDecision({ at: i, kind: 'scale', subject: i % 2 ? 'a' : 'b', action: 'none', reason: `r${i}` });
      assert.deepEqual((await store.decisions({ limit: 2 })).map((d) => d.reason), ['r4', 'r3']);
      assert.deepEqual((await store.decisions({ subject: 'a' })).map((d) => d.reason), ['r3', 'r1']);
      await store.recordSamples([10, 20, 30, 40].map((at) => ({ at, subject: 'mx1', metric: 'cpu', value: at / 100 })));
      assert.deepEqual((await store.samples('mx1', 'cpu', 15, 35)).map((s) => s.value), [0.2, 0.3]);
      await store.recordSamples([{ at: 12, subject: 'mx2', metric: 'cpu', value: 1 }, { at: 50, subject: 'mx1', metric: 'cpu', value: 9 }]);
      assert.deepEqual(await store.sumSamples('cpu', 10, 40), [{ subject: 'mx1', total: 1, count: 4 }, { subject: 'mx2', total: 1, count: 1 }]);
      assert.equal(await store.pruneSamples(25), 3);
      assert.deepEqual((await store.samples('mx1', 'cpu', 0, 100)).map((s) => s.at), [30, 40, 50]);
      await store.recordPowerOn({ server: 'blade2', at: 1, bootSeconds: null });
      await store.recordPowerOn({ server: 'blade2', at: 1, bootSeconds: 42 });
      await store.recordPowerOn({ server: 'blade2', at: 2, bootSeconds: null });
      assert.deepEqual(await store.bootHistory('blade2'), [42], 'a power-on still booting has no time yet');
    } finally {
      await store.close();
    }
  });

  test(`${kind} store: deleting marks a group until it is registered again; members by name; servers`, async () => {
    const store = await open();
    try {
      await store.putGroup({ ...sampleGroup('dns'), power: { hostCpuHigh: 0.9, minServersOn: 1, emptyHoldSeconds: 60, maxConcurrentChanges: 1, defaultBootSeconds: 30 }, metric: 'queue' });
      await store.putMember({ group: 'dns', name: 'dns-0', server: 'b1', index: 0, createdAt: 1, tokenSha256: 'cd'.repeat(32) });
      await store.markDeleting('dns');
      assert.equal((await store.group('dns'))?.deleting, true);
      assert.equal((await store.group('dns'))?.power?.emptyHoldSeconds, 60);
      assert.equal((await store.group('dns'))?.metric, 'queue');
      await store.putGroup(sampleGroup('dns'));
      assert.equal((await store.group('dns'))?.deleting, false, 'applying the group again stops its drain');
      assert.equal((await store.member('dns-0'))?.tokenSha256, 'cd'.repeat(32));
      assert.equal(await store.member('nosuch'), null);
      const bmc = { address: '127.0.0.1', port: 9001, username: 'admin', password: 'pw' };
      await store.putServer({ id: 'b1@qemu:///system', name: 'b1', uri: 'qemu:///system', bmc, powerSensor: null, managed: false });
      await store.putServer({ id: 'b1@qemu:///system', name: 'b1', uri: 'qemu:///system', bmc: { ...bmc, port: 9002 }, powerSensor: 'Pwr', managed: true });
      assert.deepEqual(await store.servers(), [{ id: 'b1@qemu:///system', name: 'b1', uri: 'qemu:///system', bmc: { ...bmc, port: 9002 }, powerSensor: 'Pwr', managed: true }]);
      await store.deleteServer('b1@qemu:///system');
      assert.deepEqual(await store.servers(), []);
      await store.recordPowerOn({ server: 'b9', at: 5, bootSeconds: 3 });
      await store.recordPowerOn({ server: 'b9', at: 9, bootSeconds: null });
      assert.deepEqual(await store.lastPowerOn('b9'), { server: 'b9', at: 9, bootSeconds: null });
      assert.equal(await store.lastPowerOn('b8'), null);
    } finally {
      await store.close();
    }
  });

  test(`${kind} store: one leader at a time; a lease not renewed passes on`, async () => {
    const store = await open();
    try {
      assert.equal(await store.lead('a', 10_000, 1000), true);
      assert.equal(await store.lead('b', 10_000, 2000), false, 'b waits while a renews');
      assert.equal(await store.lead('a', 10_000, 5000), true);
      assert.equal(await store.lead('b', 10_000, 14_000), false);
      assert.equal(await store.lead('b', 10_000, 15_001), true, 'a stopped renewing: b leads');
      assert.equal(await store.lead('a', 10_000, 15_002), false);
    } finally {
      await store.close();
    }
  });
}
