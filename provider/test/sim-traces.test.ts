// The energy simulator's load traces: the same seed must give the same load on every run (or
// policies' energy cannot be compared), each trace must have the shape it claims (the paper's
// sharp step, the office day's morning peak), and the PlanetLab-like fleet must match the
// published statistics for more than one lucky seed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRandom, deriveSeed, normal, normalQuantile, permutation } from '../src/sim/random.ts';
import {
  autocorrelation,
  dailyMailTrace,
  DEFAULT_TRACE_SEED,
  officeMailShape,
  paperStepTrace,
  PLANETLAB_TARGETS,
  planetLabLikeTrace,
  quantileOfSorted,
  traceStatistics,
  type LoadTrace,
} from '../src/sim/traces.ts';

const draws = (seed: number, n: number) => {
  const r = createRandom(seed);
  return Array.from({ length: n }, () => r.nextUint32());
};

test('random: a seed gives one stream, pinned so a change of platform or code shows', () => {
  assert.deepEqual(draws(1, 4), draws(1, 4));
  assert.notDeepEqual(draws(1, 4), draws(2, 4));
  // What Vigna's reference xoshiro128starstar.c gives, seeded by splitmix32 the same way
  // (checked once with gcc). If these move, every trace moves with them.
  assert.deepEqual(draws(DEFAULT_TRACE_SEED, 3), [569229300, 2581810686, 987682652]);
  assert.deepEqual(draws(1, 3), [2442144158, 3238099751, 3819917871]);
  const r = createRandom(7);
  const u = Array.from({ length: 20000 }, () => r.uniform());
  assert.ok(u.every((x) => x >= 0 && x < 1));
  const mean = u.reduce((s, x) => s + x, 0) / u.length;
  assert.ok(Math.abs(mean - 0.5) < 0.01, `uniform mean ${mean}`);
  const z = Array.from({ length: 20000 }, () => normal(r));
  const zMean = z.reduce((s, x) => s + x, 0) / z.length;
  const zSd = Math.sqrt(z.reduce((s, x) => s + (x - zMean) ** 2, 0) / z.length);
  assert.ok(Math.abs(zMean) < 0.03 && Math.abs(zSd - 1) < 0.03, `normal ${zMean} ± ${zSd}`);
  assert.notEqual(deriveSeed(1, 0), deriveSeed(1, 1));
  assert.notEqual(deriveSeed(1, 0), deriveSeed(2, 0));
  assert.deepEqual([...permutation(createRandom(3), 50)].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i));
});

test('random: the normal quantile agrees with the tables', () => {
  for (const [p, z] of [[0.5, 0], [0.975, 1.959964], [0.95, 1.644854], [0.99, 2.326348], [0.01, -2.326348], [1e-6, -4.753424]] as const) {
    assert.ok(Math.abs(normalQuantile(p) - z) < 1e-6, `Φ⁻¹(${p}) = ${normalQuantile(p)}, want ${z}`);
  }
  assert.throws(() => normalQuantile(0), RangeError);
  assert.throws(() => normalQuantile(1), RangeError);
});

const generators: [string, (seed?: number) => LoadTrace][] = [
  ['paper-step', (seed) => paperStepTrace({ seed })],
  ['daily-mail', (seed) => dailyMailTrace({ seed })],
  ['planetlab-like', (seed) => planetLabLikeTrace({ seed })],
];

test('traces: the same seed gives identical traces, another seed another, the default seed is the documented one', () => {
  for (const [name, make] of generators) {
    const a = make();
    assert.equal(a.name, name);
    assert.equal(a.seed, DEFAULT_TRACE_SEED);
    assert.deepEqual(make(DEFAULT_TRACE_SEED), a, name);
    assert.deepEqual(make(5), make(5), name);
    assert.notDeepEqual(make(5).workloads.map((w) => w.demand), a.workloads.map((w) => w.demand), name);
    assert.ok(a.description.length > 40 && !a.description.includes('\n'), `${name}: one sentence`);
  }
});

test('traces: lengths, steps and ranges: group demand in cores ≥ 0, VM utilization in 0..1', () => {
  const paper = paperStepTrace();
  assert.equal(paper.stepSeconds, 5);
  assert.equal(paper.workloads.length, 1);
  assert.equal(paper.workloads[0]!.demand.length, (300 + 1500 + 600) / 5);
  assert.equal(paperStepTrace({ onAtSeconds: 100, holdSeconds: 200, idleAfterSeconds: 100 }).workloads[0]!.demand.length, 80);

  const day = dailyMailTrace();
  assert.equal(day.stepSeconds, 60);
  assert.equal(day.workloads[0]!.demand.length, 1440);
  const week = dailyMailTrace({ days: 3, groups: 3 });
  assert.deepEqual(week.workloads.map((w) => [w.name, w.demand.length]), [['mail-1', 4320], ['mail-2', 4320], ['mail-3', 4320]]);

  const fleet = planetLabLikeTrace();
  assert.equal(fleet.stepSeconds, 300);
  assert.equal(fleet.workloads.length, 200);
  assert.ok(fleet.workloads.every((w) => w.demand.length === 288 && w.vcpus === 1 && w.memoryMib >= 512 && w.memoryMib <= 2048));
  assert.equal(new Set(fleet.workloads.map((w) => w.name)).size, 200);
  const small = planetLabLikeTrace({ vms: 10, days: 2 });
  assert.deepEqual([small.workloads.length, small.workloads[0]!.demand.length], [10, 576]);

  for (const t of [paper, day, week]) {
    for (const w of t.workloads) {
      assert.equal(w.kind, 'group');
      assert.ok(w.demand.every((x) => Number.isFinite(x) && x >= 0), `${t.name}/${w.name}`);
    }
  }
  for (const w of fleet.workloads) {
    assert.equal(w.kind, 'vm');
    assert.ok(w.demand.every((x) => Number.isFinite(x) && x >= 0 && x <= 1), w.name);
  }
});

test('paper-step: idle, switched on sharply at 300 s to ~3.2 cores (four instances at the 90 % mark), off at 1800 s', () => {
  for (const seed of [DEFAULT_TRACE_SEED, 1, 2]) {
    const t = paperStepTrace({ seed });
    const d = t.workloads[0]!.demand;
    const at = (s: number) => d[s / t.stepSeconds]!;
    const span = (from: number, to: number) => d.slice(from / t.stepSeconds, to / t.stepSeconds);
    assert.ok(span(0, 300).every((x) => x < 0.1), 'idle before');
    assert.ok(at(300) > 2.8, 'on at 300 s, no ramp');
    assert.ok(span(300, 1800).every((x) => x > 2.8 && x < 3.6), 'held');
    assert.ok(span(1800, 2400).every((x) => x < 0.1), 'idle after');
    const held = span(300, 1800);
    const mean = held.reduce((s, x) => s + x, 0) / held.length;
    assert.equal(Math.ceil(mean / 0.9), 4, `mean ${mean} cores needs four 1-vCPU instances at 90 %`);
    assert.ok(Math.max(...held) - Math.min(...held) > 0.05, 'there is noise');
  }
});

test('daily-mail: night low, the maximum in the morning (09:00–11:00), a smaller after-lunch wave, 6–8 instances at the peak', () => {
  assert.ok(officeMailShape(3) < 0.1 && Math.abs(officeMailShape(9.75) - 1) < 0.01);
  assert.ok(officeMailShape(12.5) < officeMailShape(14.25) && officeMailShape(14.25) < 0.8, 'lunch dip, then a smaller wave');
  for (const seed of [DEFAULT_TRACE_SEED, 1, 2, 3, 4, 5]) {
    const t = dailyMailTrace({ seed });
    const d = t.workloads[0]!.demand;
    const hour = (i: number) => (i * t.stepSeconds) / 3600;
    const max = Math.max(...d);
    const peakHour = hour(d.indexOf(max));
    assert.ok(peakHour >= 9 && peakHour <= 11, `seed ${seed}: peak at ${peakHour.toFixed(2)} h`);
    const night = d.filter((_, i) => hour(i) >= 1 && hour(i) < 5);
    assert.ok(Math.max(...night) < 0.2 * max, `seed ${seed}: night`);
    const afternoon = Math.max(...d.filter((_, i) => hour(i) >= 13 && hour(i) < 16));
    const lunch = d.filter((_, i) => hour(i) >= 12 && hour(i) < 12.5);
    assert.ok(afternoon < 0.9 * max && afternoon > Math.max(...lunch) * 0.95, `seed ${seed}: after-lunch wave`);
    const evening = d.filter((_, i) => hour(i) >= 19 && hour(i) < 20);
    assert.ok(Math.max(...evening) < 0.5 * afternoon, `seed ${seed}: evening decline`);
    const instances = Math.ceil(max / 0.9);
    assert.ok(instances >= 6 && instances <= 8, `seed ${seed}: ${max.toFixed(2)} cores needs ${instances} instances`);
  }
  const two = dailyMailTrace({ days: 2 }).workloads[0]!.demand;
  const secondPeak = two.indexOf(Math.max(...two.slice(1440))) - 1440;
  assert.ok(secondPeak / 60 >= 9 && secondPeak / 60 <= 11, 'each day has its morning');
});

test('planetlab-like: pooled mean ≈ 12 %, median ≈ 6 %, p95 ≈ 50 %, p99 ≈ 79 % for the default seed and two others', () => {
  for (const seed of [DEFAULT_TRACE_SEED, 1, 2]) {
    const s = traceStatistics(planetLabLikeTrace({ seed })).vm!;
    assert.equal(s.count, 200 * 288);
    const near = (got: number, want: number, tolerance: number, what: string) =>
      assert.ok(Math.abs(got - want) <= tolerance, `seed ${seed}: ${what} ${(got * 100).toFixed(2)} %, want ${(want * 100).toFixed(0)} % ± ${(tolerance * 100).toFixed(1)}`);
    near(s.mean, PLANETLAB_TARGETS.mean, 0.1 * PLANETLAB_TARGETS.mean, 'mean');
    near(s.median, PLANETLAB_TARGETS.median, 0.02, 'median');
    near(s.p95, PLANETLAB_TARGETS.p95, 0.1 * PLANETLAB_TARGETS.p95, 'p95');
    near(s.p99, PLANETLAB_TARGETS.p99, 0.1 * PLANETLAB_TARGETS.p99, 'p99');
  }
});

test('planetlab-like: a busy VM stays busy (lag-1 autocorrelation), and VMs differ', () => {
  const fleet = planetLabLikeTrace();
  const ac = fleet.workloads.map((w) => autocorrelation(w.demand, 1));
  const meanAc = ac.reduce((s, x) => s + x, 0) / ac.length;
  assert.ok(meanAc > 0.5, `mean lag-1 autocorrelation ${meanAc}`);
  const means = fleet.workloads.map((w) => w.demand.reduce((s, x) => s + x, 0) / w.demand.length).sort((a, b) => a - b);
  assert.ok(quantileOfSorted(means, 0.1) < 0.03 && quantileOfSorted(means, 0.9) > 0.25, `VM means from ${means[0]} to ${means[means.length - 1]}`);
  assert.ok(new Set(fleet.workloads.map((w) => w.memoryMib)).size > 1, 'memory is drawn per VM');
});

test('planetlab-like: a 200-VM day is generated well under 100 ms', () => {
  planetLabLikeTrace({ seed: 99 });
  const t0 = performance.now();
  planetLabLikeTrace();
  const ms = performance.now() - t0;
  assert.ok(ms < 100, `${ms.toFixed(1)} ms`);
});

test('traceStatistics: per kind, interpolated quantiles, kinds never pooled', () => {
  const trace: LoadTrace = {
    name: 't',
    description: 'a test trace',
    stepSeconds: 1,
    seed: 0,
    workloads: [
      { name: 'g', kind: 'group', vcpus: 1, memoryMib: 512, demand: [4, 1, 3, 2] },
      { name: 'v', kind: 'vm', vcpus: 1, memoryMib: 512, demand: [0.5] },
    ],
  };
  const s = traceStatistics(trace);
  assert.deepEqual(s.group, { count: 4, mean: 2.5, median: 2.5, p95: 1 + 3 * 0.95, p99: 1 + 3 * 0.99, max: 4 });
  assert.deepEqual(s.vm, { count: 1, mean: 0.5, median: 0.5, p95: 0.5, p99: 0.5, max: 0.5 });
  assert.deepEqual(traceStatistics({ ...trace, workloads: [trace.workloads[1]!] }), { vm: s.vm });
  assert.equal(autocorrelation([1, 1, 1]), 0);
  assert.ok(autocorrelation([1, 2, 1, 2, 1, 2]) < 0);
});
