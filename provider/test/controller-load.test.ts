// A group's load series, the way the pass reads it: the sampler's group CPU as it is, or a metric
// the members report on their own schedules — then the group's value at each report is the mean
// of every member's latest report up to that moment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { groupLoad } from '../src/controller/group-pass.ts';
import { servicesOf } from '../src/controller/dns-pass.ts';
import { openSqliteStore } from '../src/controller/store-sqlite.ts';
import type { GroupRecord, MemberRecord } from '../src/controller/store.ts';
import { DEFAULT_SCALING } from '../src/policy/scaling.ts';

const group = (metric: string): GroupRecord => ({
  name: 'mx', policy: { ...DEFAULT_SCALING, min: 1, max: 3 }, dnsName: null, metric, power: null, deleting: false, lastScaleOutAt: null, lastScaleInAt: null,
  shape: { deployments: ['dep-mx@b1@qemu:///system'], memoryMib: 64, vcpus: 1, network: 'lan', variables: {}, files: [], services: [], placement: 'spread' },
});
const member = (name: string, index: number): MemberRecord => ({ group: 'mx', name, server: 'b1@qemu:///system', index, createdAt: index, tokenSha256: null });

test('a reported metric: the mean of each member\'s latest report at each moment', async () => {
  const store = await openSqliteStore(join(mkdtempSync(join(tmpdir(), 'storm-load-')), 'c.db'));
  try {
    await store.recordSamples([
      { at: 1000, subject: 'mx-0', metric: 'queue', value: 10 },
      { at: 2000, subject: 'mx-1', metric: 'queue', value: 30 },
      { at: 3000, subject: 'mx-0', metric: 'queue', value: 50 },
      { at: 3000, subject: 'mx-0', metric: 'cpu', value: 0.99 },
    ]);
    const load = await groupLoad(store, group('queue'), [member('mx-0', 0), member('mx-1', 1)], 0, 5000);
    assert.deepEqual(load, [{ at: 1000, utilization: 10 }, { at: 2000, utilization: 20 }, { at: 3000, utilization: 40 }]);
    await store.recordSamples([{ at: 4000, subject: 'mx', metric: 'cpu', value: 0.5 }]);
    assert.deepEqual(await groupLoad(store, group('cpu'), [], 0, 5000), [{ at: 4000, utilization: 0.5 }], 'cpu is the sampler\'s group mean');
  } finally {
    await store.close();
  }
});

test('what an appliance provides becomes SRV records, and mail makes an MX', () => {
  assert.deepEqual(servicesOf(['smtp', 'imap', 'webserv', 'frobnicator']), {
    srv: [{ service: 'smtp', protocol: 'tcp', port: 25 }, { service: 'imap', protocol: 'tcp', port: 143 }, { service: 'http', protocol: 'tcp', port: 80 }],
    mx: true,
  });
  assert.deepEqual(servicesOf(['http', 'www']), { srv: [{ service: 'http', protocol: 'tcp', port: 80 }], mx: false });
});
