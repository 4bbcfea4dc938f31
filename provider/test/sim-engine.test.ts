// The simulator against cases small enough to compute by hand: one server and a constant load
// (energy, overload and unserved demand to the joule), the lower bound on a step, and storm's
// policy — the controller's own decideScaling/decidePower — powering a second server on the
// round its first is saturated, the boot drawn at peak until it can host.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lowerBound } from '../src/sim/bound.ts';
import { simulate, SIM_EPOCH_MS } from '../src/sim/engine.ts';
import { consolidatingPolicy, dpmBandPolicy } from '../src/sim/anchors.ts';
import { alwaysOnPolicy, paperPolicy, staticPeakPolicy, stormPolicy } from '../src/sim/policies.ts';
import { scenarios } from '../src/sim/scenarios.ts';
import type { ServerSpec } from '../src/sim/servers.ts';
import type { LoadTrace } from '../src/sim/traces.ts';

const server = (name: string, cores = 1): ServerSpec => ({ name, cores, memoryMib: 4096, reservedMemoryMib: 128, idleWatts: 100, peakWatts: 200, offWatts: 10, bootSeconds: 60, stopSeconds: 10 });
const trace = (stepSeconds: number, demand: number[]): LoadTrace => ({ name: 'hand', description: 'a hand-made trace', stepSeconds, seed: 0, workloads: [{ name: 'mail', kind: 'group', vcpus: 1, memoryMib: 256, demand }] });
const close = (actual: number, expected: number, what: string) => assert.ok(Math.abs(actual - expected) < 1e-9, `${what}: ${actual} ≠ ${expected}`);

test('one server, a constant load: energy, overload and unserved demand by hand', () => {
  // Round 0 (t = 0): no member yet, 0.45 cores asked and not served, the server idle (100 W);
  // the policy makes the first member (ready at 30 s). Rounds 1–9: it carries 0.45 cores: 145 W.
  const r = simulate(trace(60, Array(10).fill(0.45)), [server('blade1')], alwaysOnPolicy(), { roundSeconds: 60, instanceBootSeconds: 30 });
  close(r.energyKwh, (100 * 60 + 9 * 145 * 60) / 3.6e6, 'energy');
  close(r.overloadShare, 60 / 600, 'overload share');
  close(r.unservedCpuSeconds, 0.45 * 60, 'unserved CPU-seconds');
  assert.equal(r.creations, 1);
  assert.equal(r.removals, 0);
  assert.equal(r.powerOns, 0);
  assert.deepEqual(r.timeline.instances[0]!.points.slice(0, 2), [{ at: SIM_EPOCH_MS, value: 0 }, { at: SIM_EPOCH_MS + 60_000, value: 1 }]);
});

test('the lower bound on a step: the fewest servers at 90 %, the work\'s own power, one boot ahead of the step', () => {
  const b = lowerBound(trace(60, [0.5, 0.5, 3, 3]), [{ ...server('a', 2) }, { ...server('b', 2) }]);
  assert.deepEqual(b.serversOn, [1, 1, 2, 2]);
  assert.equal(b.boots, 1);
  // Before: one server at 0.5/2 (125 W) and one off (10 W); after: two carrying 3 of 4 cores (350 W);
  // the boot: 60 s at peak instead of off.
  close(b.energyKwh, (2 * 135 * 60 + 2 * 350 * 60 + (200 - 10) * 60) / 3.6e6, 'bound energy');
});

test('storm\'s policy powers the second server on the round the first is saturated; it draws peak until booted', () => {
  const demand = [0.2, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5];
  const r = simulate(trace(60, demand), [server('blade1'), server('blade2')], stormPolicy({ max: 4 }), { roundSeconds: 10, instanceBootSeconds: 30 });
  const blade2 = r.timeline.watts.find((w) => w.server === 'blade2')!.points;
  const at = (s: number) => blade2.find((p) => p.at === SIM_EPOCH_MS + s * 1000)!.value;
  assert.equal(at(60), 10, 'off while blade1 has room');
  // At t = 60 the member (ready since 30 s) gets blade1's whole core: 100 % ≥ 90 %, power on.
  assert.equal(at(70), 200, 'booting: peak power');
  assert.equal(at(110), 200, 'still booting at 110 s (60 s boot from 60 s)');
  assert.equal(at(120), 100, 'booted at 120 s, idle');
  assert.equal(r.powerOns, 1);
  assert.deepEqual(r.refused, []);
});

test('deterministic: the same trace and policy give the same figures and timeline', () => {
  const [paper] = scenarios();
  const a = simulate(paper!.trace, paper!.servers, stormPolicy());
  const b = simulate(paper!.trace, paper!.servers, stormPolicy());
  assert.deepEqual(a, b);
});

test('every policy runs every scenario without asking the engine for the impossible, and always-on draws at least every server\'s idle power', () => {
  for (const sc of scenarios()) {
    for (const p of [alwaysOnPolicy(), paperPolicy(), dpmBandPolicy(), consolidatingPolicy(), stormPolicy()]) {
      const r = simulate(sc.trace, sc.servers, p);
      assert.deepEqual(r.refused, [], `${sc.trace.name} / ${p.name}`);
      assert.ok(r.energyKwh > 0 && r.overloadShare >= 0 && r.overloadShare <= 1, `${sc.trace.name} / ${p.name}`);
      if (p.name === 'always-on') {
        const idle = sc.servers.reduce((a, s) => a + s.idleWatts, 0) * r.seconds / 3.6e6;
        assert.ok(r.energyKwh >= idle, `always-on ${r.energyKwh} kWh ≥ idle ${idle} kWh`);
      }
    }
  }
});

test('the static baseline: every server on, the group sized once for its peak at 90 %, dealt round-robin, never changed', () => {
  // Peak 2 cores of 1-vCPU members at 90 % → 3 members (2 / 0.9 = 2.2), on a, b, a.
  // Round 0: none ready, 0.5 asked and not served; a idle (100 W), b idle (100 W). Rounds 1–3:
  // members ready at 30 s carry the demand spread evenly (a: 2 of 3 shares, b: 1).
  const r = simulate(trace(60, [0.5, 0.5, 2, 2]), [server('a', 2), server('b', 2)], staticPeakPolicy(trace(60, [0.5, 0.5, 2, 2])), { roundSeconds: 60, instanceBootSeconds: 30 });
  assert.equal(r.creations, 3);
  assert.deepEqual([r.removals, r.powerOns], [0, 0]);
  const w = (cores: number, of: number) => 100 + (100 * cores) / of;
  close(r.energyKwh, (2 * 100 * 60 + (w((2 / 3) * 0.5, 2) + w((1 / 3) * 0.5, 2)) * 60 + 2 * (w((2 / 3) * 2, 2) + w((1 / 3) * 2, 2)) * 60) / 3.6e6, 'energy');
  close(r.unservedCpuSeconds, 0.5 * 60, 'unserved CPU-seconds');
});
