import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UNKNOWN } from '../src/protocol/cty/index.ts';
import { planBlock } from '../src/schema/plan.ts';
import { validateBlock } from '../src/schema/validate.ts';
import { applianceServer } from '../src/resources/appliance-server.ts';

const block = applianceServer.schema.block;
const config = {
  id: null, name: 'blade-1', libvirt_uri: 'qemu:///system', reserved_memory_mib: null, pool_path: null,
  power: null, boot_timeout_seconds: null, cpus: null, memory_mib: null, available_memory_mib: null, hypervisor: null, hostname: null, ipmi: null,
};

test('create: defaults fill unset optional attributes and computed ones are unknown', () => {
  const { planned, requiresReplace } = planBlock(block, null, config);
  assert.equal(planned.reserved_memory_mib, 128);
  assert.equal(planned.power, 'on');
  assert.equal(planned.pool_path, '/var/lib/libvirt/storm');
  assert.equal(planned.cpus, UNKNOWN);
  assert.deepEqual(requiresReplace, []);
});

test('update: computed values keep their prior value, forceNew changes are listed', async () => {
  const prior = { ...planBlock(block, null, config).planned, id: 'blade-1', cpus: 8, memory_mib: 4096, available_memory_mib: 3968 };
  const { planned, requiresReplace } = planBlock(block, prior, { ...config, libvirt_uri: 'qemu+ssh://root@h/system', reserved_memory_mib: 256 });
  assert.equal(planned.cpus, 8);
  assert.deepEqual(requiresReplace, [[{ attribute: 'libvirt_uri' }]]);
  const refined = (await applianceServer.refinePlan!(prior, planned, config)).planned;
  assert.equal(refined.available_memory_mib, 4096 - 256, 'derived value recomputed in the plan');
});

test('unknown config values are planned as unknown and not validated yet', () => {
  const { planned } = planBlock(block, null, { ...config, name: UNKNOWN });
  assert.equal(planned.name, UNKNOWN);
  assert.deepEqual(validateBlock(block, { ...config, name: UNKNOWN }), []);
});

test('validation names the nested attribute path', () => {
  const diags = validateBlock(block, { ...config, ipmi: { address: 'h', port: 70000, username: 'u', password: 'p' } });
  assert.equal(diags.length, 1);
  assert.deepEqual(diags[0]!.path, [{ attribute: 'ipmi' }, { attribute: 'port' }]);
  assert.match(diags[0]!.detail!, /whole number from 1 to 65535, not 70000/);
});

test('libvirt URIs: the forms users write pass, the rest say what works', () => {
  for (const ok of ['qemu:///system', 'qemu+ssh://root@host/system', 'qemu+tls://host.example/system', 'qemu+tcp://127.0.0.11:16509/system', 'qemu+ssh://u@h/system?keyfile=/k']) {
    assert.deepEqual(validateBlock(block, { ...config, libvirt_uri: ok }), [], ok);
  }
  for (const bad of ['qemu:/system', 'test:///default', 'http://host/system', 'qemu:///session', 'qemu+ssh://host']) {
    const [d] = validateBlock(block, { ...config, libvirt_uri: bad });
    assert.ok(d, bad);
    assert.match(d.detail!, /qemu:\/\/\/system/);
  }
});

test('cross-attribute rule: power off needs ipmi', () => {
  const [d] = applianceServer.validate!({ ...config, power: 'off' });
  assert.deepEqual(d!.path, [{ attribute: 'power' }]);
});
