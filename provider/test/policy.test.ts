// Placement and committed load are pure policy: the provider, the controller and the
// simulator decide alike, so they are tested here without any daemon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { committedLoad, type ObservedDomain, type ServerObservation } from '../src/policy/load.ts';
import { freeMemoryMib, overCommittedMib, place, type ServerLoad } from '../src/policy/placement.ts';

const server = (name: string, memoryMib: number, committedMemoryMib = 0, extra: Partial<ServerLoad> = {}): ServerLoad => ({
  server: `${name}@qemu+tcp://10.0.0.1/system`,
  cpus: 4,
  memoryMib,
  reservedMemoryMib: 128,
  committedMemoryMib,
  committedVcpus: 0,
  ...extra,
});

const domain = (name: string, state: ObservedDomain['state'], storm: boolean, memoryMib = 512, vcpus = 1): ObservedDomain => ({ name, state, storm, memoryMib, vcpus });

test('placement: the server with the smallest share of usable memory committed wins', () => {
  const a = server('a', 4096, 2048);
  const b = server('b', 8192, 2048);
  assert.deepEqual(place({ memoryMib: 512, vcpus: 1 }, [a, b]), { server: b.server });
});

test('placement: the 128 MiB reserve is never given away', () => {
  const exact = server('a', 1024 + 128, 0);
  assert.deepEqual(place({ memoryMib: 1024, vcpus: 1 }, [exact]), { server: exact.server });
  const decision = place({ memoryMib: 1025, vcpus: 1 }, [exact]);
  assert.ok('error' in decision);
  assert.match(decision.error, /1024 MiB free \(1152 MiB, 128 reserved, 0 committed\)/);
});

test('placement: more vCPUs than the host has CPUs does not fit; fewer may share them', () => {
  const a = server('a', 8192, 0, { cpus: 2, committedVcpus: 8 });
  assert.ok('error' in place({ memoryMib: 256, vcpus: 4 }, [a]));
  assert.deepEqual(place({ memoryMib: 256, vcpus: 2 }, [a]), { server: a.server });
});

test('placement: ties go to fewer committed vCPUs, then to the name, so plans repeat', () => {
  const a = server('a', 4096, 1024, { committedVcpus: 3 });
  const b = server('b', 4096, 1024, { committedVcpus: 1 });
  const c = server('c', 4096, 1024, { committedVcpus: 1 });
  assert.deepEqual(place({ memoryMib: 256, vcpus: 1 }, [c, a, b]), { server: b.server });
  assert.deepEqual(place({ memoryMib: 256, vcpus: 1 }, [c, b]), place({ memoryMib: 256, vcpus: 1 }, [b, c]));
});

test('placement: no candidates, and the refusal names every server with its numbers', () => {
  assert.ok('error' in place({ memoryMib: 1, vcpus: 1 }, []));
  const d = place({ memoryMib: 4096, vcpus: 1 }, [server('a', 2048, 0), server('b', 1024, 512)]);
  assert.ok('error' in d);
  assert.match(d.error, /a@.*1920 MiB free/);
  assert.match(d.error, /b@.*384 MiB free/);
  assert.equal(freeMemoryMib(server('x', 1024, 512)), 384);
});

const observed = (domains: ObservedDomain[]): ServerObservation => ({ server: 's@qemu:///system', cpus: 4, memoryMib: 8192, reservedMemoryMib: 128, domains });

test('load: running, paused and storm-stopped domains count; a foreign stopped domain does not', () => {
  const load = committedLoad(observed([domain('r', 'running', false, 1000, 2), domain('p', 'paused', true, 200), domain('s', 'shutoff', true, 300), domain('f', 'shutoff', false, 4000, 4)]), [], 0);
  assert.equal(load.committedMemoryMib, 1500);
  assert.equal(load.committedVcpus, 4);
});

test('load: a pending placement counts once, whether or not its domain shows yet', () => {
  const pending = [{ name: 'new', server: 's@qemu:///system', memoryMib: 700, vcpus: 1 }];
  const before = committedLoad(observed([domain('old', 'running', true, 100)]), pending, 0);
  const after = committedLoad(observed([domain('old', 'running', true, 100), domain('new', 'running', true, 700)]), pending, 0);
  assert.equal(before.committedMemoryMib, 800);
  assert.equal(after.committedMemoryMib, 800);
});

test('load: pending placements on other servers are not counted here', () => {
  const load = committedLoad(observed([]), [{ name: 'x', server: 'other@qemu:///system', memoryMib: 700, vcpus: 1 }], 0);
  assert.equal(load.committedMemoryMib, 0);
});

test('load and placement together: successive decisions see the ones before them', () => {
  const pending: { name: string; server: string; memoryMib: number; vcpus: number }[] = [];
  const hosts = ['a', 'b'].map((n) => ({ server: `${n}@qemu:///system`, cpus: 4, memoryMib: 2048 + 128, reservedMemoryMib: 128, domains: [] as ObservedDomain[] }));
  const placed: string[] = [];
  for (let i = 0; i < 4; i++) {
    const d = place({ memoryMib: 1024, vcpus: 1 }, hosts.map((h) => committedLoad(h, pending, 0)));
    assert.ok('server' in d, `instance ${i} fits`);
    pending.push({ name: `i${i}`, server: d.server, memoryMib: 1024, vcpus: 1 });
    placed.push(d.server.split('@')[0]!);
  }
  assert.deepEqual(placed.sort(), ['a', 'a', 'b', 'b']);
  assert.ok('error' in place({ memoryMib: 1024, vcpus: 1 }, hosts.map((h) => committedLoad(h, pending, 0))), 'a fifth does not fit');
});

test('load: a stopped reservation counts until its lease runs out, then its holder is presumed dead', () => {
  const reservation = { ...domain('r', 'shutoff', true, 900), reservedUntil: 1000 };
  assert.equal(committedLoad(observed([reservation]), [], 999).committedMemoryMib, 900);
  assert.equal(committedLoad(observed([reservation]), [], 1000).committedMemoryMib, 0);
  // A running domain holds its memory whatever its metadata says.
  assert.equal(committedLoad(observed([{ ...reservation, state: 'running' }]), [], 5000).committedMemoryMib, 900);
});

// The cross-process protocol of host/placement.ts, modelled on the pure policy: each process
// decides on what it reads, records its reservation on the host, reads again and steps back if
// the server is over-committed. Every interleaving of two processes placing two instances each
// on one server that holds three: the server never keeps more than it holds.
test('reserve then check: no interleaving of two processes over-commits a server', () => {
  type Step = 'decide' | 'reserve' | 'check';
  const capacity = { server: 's@qemu:///system', cpus: 4, memoryMib: 3 * 1024 + 128, reservedMemoryMib: 128 };
  interface Proc { name: string; todo: number; step: Step; placed: number }
  let explored = 0;
  const walk = (host: ObservedDomain[], procs: Proc[]): void => {
    const live = procs.filter((p) => p.todo > 0);
    if (!live.length) {
      explored++;
      const kept = host.reduce((sum, d) => sum + d.memoryMib, 0);
      assert.ok(kept <= capacity.memoryMib - capacity.reservedMemoryMib, `over-committed: ${host.map((d) => d.name).join(',')}`);
      assert.equal(procs.reduce((n, p) => n + p.placed, 0), host.length);
      return;
    }
    for (const p of live) {
      const name = `${p.name}${p.todo}`;
      const next = procs.map((q) => ({ ...q }));
      const me = next.find((q) => q.name === p.name)!;
      let h = host;
      if (p.step === 'decide') {
        const d = place({ memoryMib: 1024, vcpus: 1 }, [committedLoad({ ...capacity, domains: host }, [], 0)]);
        if ('error' in d) me.todo--;
        else me.step = 'reserve';
      } else if (p.step === 'reserve') {
        h = [...host, { ...domain(name, 'shutoff', true, 1024), reservedUntil: 1 }];
        me.step = 'check';
      } else {
        const over = overCommittedMib(committedLoad({ ...capacity, domains: host }, [], 0));
        if (over > 0) h = host.filter((d) => d.name !== name); // steps back; here it then gives up (bounded)
        else me.placed++;
        me.todo--;
        me.step = 'decide';
      }
      walk(h, next);
    }
  };
  walk([], [{ name: 'a', todo: 2, step: 'decide', placed: 0 }, { name: 'b', todo: 2, step: 'decide', placed: 0 }]);
  assert.ok(explored > 100, `explored ${explored} interleavings`);
});
