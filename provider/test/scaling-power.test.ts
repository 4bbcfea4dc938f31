// The controller's decisions are pure policy, like placement: when a group grows or shrinks,
// when a server is powered on or off, how busy a guest is. Tested here without any daemon,
// with the paper's thresholds and the guards against churn.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { guestUtilization, serverUtilization } from '../src/policy/cpu.ts';
import { place, placedCores, shiftedCpu, type ServerLoad } from '../src/policy/placement.ts';
import { bootLeadSeconds, decidePower, DEFAULT_POWER, emptySinceAfter, groupDemand, type ServerPowerView } from '../src/policy/power.ts';
import { decideScaling, DEFAULT_SCALING, demandMark, groupUtilization, type GroupLoadSample, type GroupMember, type ScalingPolicy } from '../src/policy/scaling.ts';

const S = 1000;
// The cases below were worked out with a 60 s window.
const policy: ScalingPolicy = { ...DEFAULT_SCALING, min: 1, max: 4, windowSeconds: 60 };
const member = (name: string, createdAt = 0, ready = true): GroupMember => ({ name, createdAt, ready });
/** One sample every 5 s from `from` to `to` (s), at `utilization`. */
const samples = (from: number, to: number, utilization: number): GroupLoadSample[] =>
  Array.from({ length: Math.floor((to - from) / 5) + 1 }, (_, i) => ({ at: (from + i * 5) * S, utilization }));

test('cpu: a guest\'s utilization is its CPU time over elapsed time and vCPUs; a restart gives no reading', () => {
  assert.equal(guestUtilization({ at: 0, cpuTimeNs: 0 }, { at: 1000, cpuTimeNs: 1.8e9 }, 2), 0.9);
  assert.equal(guestUtilization({ at: 0, cpuTimeNs: 0 }, { at: 1000, cpuTimeNs: 5e9 }, 2), 1, 'clamped');
  assert.equal(guestUtilization({ at: 0, cpuTimeNs: 9e9 }, { at: 1000, cpuTimeNs: 1e9 }, 2), null, 'counter went back');
  assert.equal(guestUtilization({ at: 1000, cpuTimeNs: 0 }, { at: 1000, cpuTimeNs: 1 }, 2), null, 'no time passed');
  assert.equal(serverUtilization([0.9 * 2, 0.5 * 1], 4), 0.575);
});

test('scaling: the paper\'s rule: load ≥ 90 % held for the window adds a member, with its numbers', () => {
  const d = decideScaling(policy, { members: [member('mx1')], load: [...samples(0, 30, 0.2), ...samples(35, 100, 0.94)], lastScaleOutAt: null, lastScaleInAt: null, now: 100 * S });
  assert.equal(d.action, 'out');
  assert.match(d.reason, /cpu 94 %–94 % ≥ 90 % for 60 s/);
});

test('scaling: a spike shorter than the window, or a dip inside it, adds nothing', () => {
  const short = decideScaling(policy, { members: [member('mx1')], load: [...samples(0, 60, 0.2), ...samples(65, 100, 0.99)], lastScaleOutAt: null, lastScaleInAt: null, now: 100 * S });
  assert.equal(short.action, 'none');
  const dip = decideScaling(policy, { members: [member('mx1')], load: [...samples(0, 50, 0.95), { at: 55 * S, utilization: 0.5 }, ...samples(60, 100, 0.95)], lastScaleOutAt: null, lastScaleInAt: null, now: 100 * S });
  assert.equal(dip.action, 'none');
});

test('scaling: stale samples decide nothing', () => {
  const d = decideScaling(policy, { members: [member('mx1')], load: samples(0, 100, 0.99), lastScaleOutAt: null, lastScaleInAt: null, now: 500 * S });
  assert.equal(d.action, 'none');
});

test('scaling: a booting member, the out cooldown and max hold a scale-out back, and say why', () => {
  const hot = samples(0, 100, 0.95);
  const booting = decideScaling(policy, { members: [member('mx1'), member('mx2', 90 * S, false)], load: hot, lastScaleOutAt: 90 * S, lastScaleInAt: null, now: 100 * S });
  assert.deepEqual([booting.action, /waiting for mx2 to boot/.test(booting.reason)], ['none', true]);
  const cooling = decideScaling(policy, { members: [member('mx1'), member('mx2', 70 * S)], load: hot, lastScaleOutAt: 70 * S, lastScaleInAt: null, now: 100 * S });
  assert.deepEqual([cooling.action, /cooldown \(30 s left\)/.test(cooling.reason)], ['none', true]);
  const full = decideScaling(policy, { members: ['a', 'b', 'c', 'd'].map((n) => member(n)), load: hot, lastScaleOutAt: null, lastScaleInAt: null, now: 100 * S });
  assert.deepEqual([full.action, /already at max 4/.test(full.reason)], ['none', true]);
});

test('scaling: quiet for the window removes the newest member, after the longer in-cooldown, never below min', () => {
  // The paper's rule alone: one member below the low mark (proportional scale-in off).
  const policy: ScalingPolicy = { ...DEFAULT_SCALING, min: 1, max: 4, windowSeconds: 60, scaleInTarget: 0 };
  const quiet = samples(0, 400, 0.05);
  const members = [member('mx1', 0), member('mx3', 20 * S), member('mx2', 10 * S)];
  const early = decideScaling(policy, { members, load: quiet, lastScaleOutAt: 200 * S, lastScaleInAt: null, now: 400 * S });
  assert.deepEqual([early.action, /scale-in cooldown \(100 s left\)/.test(early.reason)], ['none', true]);
  const d = decideScaling(policy, { members, load: quiet, lastScaleOutAt: 50 * S, lastScaleInAt: null, now: 400 * S });
  assert.deepEqual(d, { action: 'in', members: ['mx3'], reason: 'cpu 5 % < 30 % for 60 s' });
  const atMin = decideScaling(policy, { members: [member('mx1')], load: quiet, lastScaleOutAt: null, lastScaleInAt: null, now: 400 * S });
  assert.equal(atMin.action, 'none');
});

test('scaling: proportional scale-in removes at once what fewer members carry at the target, judged on the window\'s peak', () => {
  const p: ScalingPolicy = { ...DEFAULT_SCALING, min: 1, max: 32, windowSeconds: 60, cooldownInSeconds: 0 };
  const sixteen = Array.from({ length: 16 }, (_, i) => member(`mx${i}`, i * S));
  // 16 members at 40 %: 6.4 vCPUs of load; at 0.7 × 90 % = 63 % each, 11 carry it (6.4 / 0.63 = 10.2).
  const d = decideScaling(p, { members: sixteen, load: samples(0, 400, 0.4), lastScaleOutAt: null, lastScaleInAt: null, now: 400 * S });
  assert.deepEqual(d, { action: 'in', members: ['mx15', 'mx14', 'mx13', 'mx12', 'mx11'], reason: 'cpu ≤ 40 % for 60 s: 11 member(s) carry it at ≤ 63 %' });
  // One sample at 62 % in the window: 16 × 0.62 / 0.63 → 16, nothing goes.
  const peak = decideScaling(p, { members: sixteen, load: [...samples(0, 370, 0.4), { at: 375 * S, utilization: 0.62 }, ...samples(380, 400, 0.4)], lastScaleOutAt: null, lastScaleInAt: null, now: 400 * S });
  assert.equal(peak.action, 'none');
  // A member booting will take load soon: no scale-in yet.
  const booting = decideScaling(p, { members: [...sixteen.slice(0, 15), member('mx15', 390 * S, false)], load: samples(0, 400, 0.4), lastScaleOutAt: null, lastScaleInAt: null, now: 400 * S });
  assert.equal(booting.action, 'none');
  // Below the low mark both rules agree; the larger count wins, never below min, and the reason says it.
  const quiet = decideScaling({ ...p, min: 2 }, { members: sixteen, load: samples(0, 400, 0.01), lastScaleOutAt: null, lastScaleInAt: null, now: 400 * S });
  assert.deepEqual([quiet.action, quiet.action === 'in' && quiet.members.length, quiet.reason], ['in', 14, 'cpu 1 % < 30 % for 60 s: 2 member(s) carry it at ≤ 63 %']);
  // 0: the low mark alone.
  assert.equal(decideScaling({ ...p, scaleInTarget: 0 }, { members: sixteen, load: samples(0, 400, 0.4), lastScaleOutAt: null, lastScaleInAt: null, now: 400 * S }).action, 'none');
});

test('scaling: a scale-in takes members from the server host power may switch off that holds the fewest instances, so it empties; newest first otherwise', () => {
  const p: ScalingPolicy = { ...DEFAULT_SCALING, min: 1, max: 8, cooldownInSeconds: 0 };
  const on = (name: string, createdAt: number, server: string): GroupMember => ({ ...member(name, createdAt * S), server });
  const members = [on('a', 1, 'b1'), on('b', 2, 'b2'), on('c', 3, 'b1'), on('d', 4, 'b2'), on('e', 5, 'b1')];
  // b2 holds 3 instances (another group's too), b1 4: b2's members go first, its newest first.
  const d = decideScaling(p, { members, load: samples(0, 400, 0.2), lastScaleOutAt: null, lastScaleInAt: null, now: 400 * S, drainable: { b1: 4, b2: 3 } });
  assert.deepEqual(d.action === 'in' && d.members, ['d', 'b', 'e']);
  // b1 alone can be switched off: its members go first, though it holds more.
  const b1 = decideScaling(p, { members, load: samples(0, 400, 0.2), lastScaleOutAt: null, lastScaleInAt: null, now: 400 * S, drainable: { b1: 4 } });
  assert.deepEqual(b1.action === 'in' && b1.members, ['e', 'c', 'a']);
  // Servers holding as many: one empties (by name) rather than each losing one.
  const tie = [on('a', 1, 'b1'), on('b', 2, 'b2'), on('c', 3, 'b1'), on('d', 4, 'b2')];
  const even = decideScaling({ ...p, scaleInTarget: 0, step: 2 }, { members: tie, load: samples(0, 400, 0.2), lastScaleOutAt: null, lastScaleInAt: null, now: 400 * S, drainable: { b1: 2, b2: 2 } });
  assert.deepEqual(even.action === 'in' && even.members, ['c', 'a']);
  // None can: newest first (the order a paper-era controller used).
  const blind = decideScaling(p, { members, load: samples(0, 400, 0.2), lastScaleOutAt: null, lastScaleInAt: null, now: 400 * S });
  assert.deepEqual(blind.action === 'in' && blind.members, ['e', 'd', 'c']);
});

test('scaling: an empty server stays on while the group may grow: above its low mark, or its high mark under proportional scale-in', () => {
  assert.equal(demandMark({ guestCpuHigh: 0.9, guestCpuLow: 0.3, scaleInTarget: 0 }), 0.3);
  assert.equal(demandMark({ guestCpuHigh: 0.9, guestCpuLow: 0.3, scaleInTarget: 0.7 }), 0.9);
  assert.equal(demandMark({ guestCpuHigh: 0.9, guestCpuLow: 0.3, scaleInTarget: DEFAULT_SCALING.scaleInTarget }), 0.9, 'the default is on');
  assert.equal(demandMark({ guestCpuHigh: 0.9, guestCpuLow: 0.3 }), 0.3, 'absent (a policy from before the setting): off, as it ran then');
});

test('scaling: min and max hold whatever the load', () => {
  assert.deepEqual(decideScaling({ ...policy, min: 2 }, { members: [], load: [], lastScaleOutAt: null, lastScaleInAt: null, now: 0 }), { action: 'out', count: 2, reason: '0 member(s) < min 2' });
  const over = decideScaling({ ...policy, max: 1 }, { members: [member('a', 1), member('b', 2)], load: [], lastScaleOutAt: null, lastScaleInAt: null, now: 0 });
  assert.deepEqual(over, { action: 'in', members: ['b'], reason: '2 member(s) > max 1' });
});

const server = (name: string, power: ServerPowerView['power'], cpu: number | null, extra: Partial<ServerPowerView> = {}): ServerPowerView => ({
  server: name, power, canPower: true, cpu, emptySince: null, bootHistorySeconds: [], ...extra,
});

test('power: every powered server ≥ 90 % powers on the one that boots fastest, with the numbers', () => {
  const d = decidePower(DEFAULT_POWER, { servers: [server('blade1', 'on', 0.95), server('blade2', 'off', null, { bootHistorySeconds: [80, 90, 85] }), server('blade3', 'off', null, { bootHistorySeconds: [30] })], unplaced: null, now: 0 });
  assert.deepEqual(d, { action: 'on', server: 'blade3', reason: 'every powered server ≥ 90 % (blade1 95 %) → power on blade3 (boots in ~30 s)' });
});

test('power: one busy server among calm ones powers nothing on; a booting one counts as room', () => {
  assert.equal(decidePower(DEFAULT_POWER, { servers: [server('a', 'on', 0.95), server('b', 'on', 0.4), server('c', 'off', null)], unplaced: null, now: 0 }).action, 'none');
  const booting = decidePower({ ...DEFAULT_POWER, maxConcurrentChanges: 2 }, { servers: [server('a', 'on', 0.95), server('b', 'booting', null), server('c', 'off', null)], unplaced: null, now: 0 });
  assert.equal(booting.action, 'none');
});

test('power: an instance that fits nowhere powers a server on; a silent BMC is said', () => {
  assert.equal(decidePower(DEFAULT_POWER, { servers: [server('a', 'on', 0.2), server('b', 'off', null)], unplaced: 'mx3', now: 0 }).action, 'on');
  const none = decidePower(DEFAULT_POWER, { servers: [server('a', 'on', 0.2), server('b', 'off', null, { canPower: false })], unplaced: 'mx3', now: 0 });
  assert.deepEqual(none, { action: 'none', reason: 'mx3 fits on no powered server, but no server is left to power on (b: BMC not answering)' });
});

test('power: an empty server goes off after the hold, beyond the minimum, only if storm can power it on again', () => {
  const now = 1000 * S;
  const servers = [server('a', 'on', 0.3), server('b', 'on', 0, { emptySince: now - 700 * S })];
  assert.deepEqual(decidePower(DEFAULT_POWER, { servers, unplaced: null, now }), { action: 'off', server: 'b', reason: 'b empty for 700 s ≥ 600 s → power off' });
  assert.equal(decidePower(DEFAULT_POWER, { servers: [servers[0]!, { ...servers[1]!, emptySince: now - 100 * S }], unplaced: null, now }).action, 'none', 'not held long enough');
  assert.equal(decidePower(DEFAULT_POWER, { servers: [servers[0]!, { ...servers[1]!, canPower: false }], unplaced: null, now }).action, 'none', 'could not power it on again');
  assert.equal(decidePower({ ...DEFAULT_POWER, minServersOn: 2 }, { servers, unplaced: null, now }).action, 'none', 'minimum');
  assert.equal(decidePower(DEFAULT_POWER, { servers: [server('a', 'on', 0.95), servers[1]!], unplaced: null, now }).action, 'none', 'the other is busy: it would be needed at once');
  assert.equal(decidePower(DEFAULT_POWER, { servers: [server('a', 'on', 0.79, { cpuPeak: 0.91 }), servers[1]!], unplaced: null, now }).action, 'none', 'the other was busy within the hold: no churn at the mark');
  assert.equal(decidePower(DEFAULT_POWER, { servers: [server('a', 'on', 0.5, { cpuPeak: 0.6 }), servers[1]!], unplaced: null, now }).action, 'off');
  // The last powered server never goes, whatever the minimum (0 behaves as 1).
  assert.equal(decidePower({ ...DEFAULT_POWER, minServersOn: 0 }, { servers: [servers[1]!], unplaced: null, now }).action, 'none', 'no other server stays on');
  // One calm server is not enough: every other must be (seen in the simulator: a blade switched off beside one at 97 % and on again 2.4 min later).
  assert.equal(decidePower(DEFAULT_POWER, { servers: [server('a', 'on', 0.97), server('c', 'on', 0.5, { cpuPeak: 0.6 }), servers[1]!], unplaced: null, now }).action, 'none', 'one of the others is busy');
  const kept = decidePower(DEFAULT_POWER, { servers: [server('a', 'on', 0.5, { cpuPeak: 0.6 }), servers[1]!], unplaced: null, now, demand: 'web\'s load is at or above 90 %, where it may grow again' });
  assert.equal(kept.action, 'none', 'the group still wants room: no churn');
  assert.match(kept.reason, /kept on: web's load is at or above 90 %/);
});

test('power: at most N changes at once; below the minimum powers on', () => {
  const d = decidePower(DEFAULT_POWER, { servers: [server('a', 'booting', null), server('b', 'off', null)], unplaced: 'x', now: 0 });
  assert.match(d.reason, /a booting: at most 1 power change/);
  assert.equal(decidePower({ ...DEFAULT_POWER, minServersOn: 1 }, { servers: [server('a', 'off', null)], unplaced: null, now: 0 }).action, 'on');
});

test('power: boot lead time is the median of the last five power-ons', () => {
  assert.equal(bootLeadSeconds([], 120), 120);
  assert.equal(bootLeadSeconds([500, 10, 20, 30, 40, 1000], 120), 30, "the oldest (500) is forgotten; one slow boot (1000) does not move it");
  assert.equal(bootLeadSeconds([10, 30], 120), 20);
});

const load = (name: string, committed: number): ServerLoad => ({ server: name, cpus: 8, memoryMib: 4096 + 128, reservedMemoryMib: 128, committedMemoryMib: committed, committedVcpus: 0 });

test('placement: spread picks the least-loaded server, consolidate the fullest that fits', () => {
  const servers = [load('a', 1024), load('b', 3072), load('c', 3584)];
  assert.deepEqual(place({ memoryMib: 512, vcpus: 1 }, servers), { server: 'a' });
  assert.deepEqual(place({ memoryMib: 512, vcpus: 1 }, servers, 'consolidate'), { server: 'c' });
  assert.deepEqual(place({ memoryMib: 1024, vcpus: 1 }, servers, 'consolidate'), { server: 'b' }, 'c has no room');
});

test('scaling reasons speak the group\'s metric, and never read "30 % < 30 %"', () => {
  const p = { ...DEFAULT_SCALING, min: 1, max: 3, windowSeconds: 10, cooldownInSeconds: 0 };
  const members = [{ name: 'web-0', createdAt: 0, ready: true }, { name: 'web-1', createdAt: 1, ready: true }];
  const load = (u: number) => [0, 5_000, 10_000].map((at) => ({ at, utilization: u }));
  const quiet = decideScaling(p, { members, load: load(0.297), lastScaleOutAt: null, lastScaleInAt: null, now: 10_000 });
  assert.equal(quiet.reason, 'cpu 29.7 % < 30 % for 10 s');
  const queue = decideScaling({ ...p, guestCpuHigh: 100, guestCpuLow: 10 }, { members, load: load(250), lastScaleOutAt: null, lastScaleInAt: null, now: 10_000, metric: 'queue' });
  assert.equal(queue.reason, 'queue 250–250 ≥ 100 for 10 s');
});

test('power: a server\'s empty-since starts when it runs nothing, holds while it stays so, and starts again after it was seen off', () => {
  assert.equal(emptySinceAfter(null, 'on', 0, 1000), 1000, 'seen empty: the hold starts');
  assert.equal(emptySinceAfter(1000, 'on', 0, 5000), 1000, 'still empty: the hold goes on');
  assert.equal(emptySinceAfter(1000, 'on', 2, 5000), null, 'runs guests: not empty');
  assert.equal(emptySinceAfter(1000, 'booting', null, 5000), 1000, 'guests not countable: unchanged');
  assert.equal(emptySinceAfter(1000, 'off', null, 5000), null, 'seen off: dropped');
  assert.equal(emptySinceAfter(null, 'on', 0, 9000), 9000, 'on again: a new hold from now');
});

test('scaling: a member on a saturated server counts at least at the high mark; 1 turns it off', () => {
  const p = { guestCpuHigh: 0.9, saturatedServerCpu: DEFAULT_SCALING.saturatedServerCpu! };
  assert.equal(p.saturatedServerCpu, 0.9);
  // 9 members on 8 cores read 89 % each: starved, not calm.
  assert.equal(groupUtilization([{ cpu: 0.89, serverCpu: 1 }, { cpu: 0.5, serverCpu: 0.6 }], p), (0.9 + 0.5) / 2);
  assert.equal(groupUtilization([{ cpu: 0.89, serverCpu: 0.89 }, { cpu: 0.89, serverCpu: null }], p), 0.89, 'below the bar, or not measured: as measured');
  assert.equal(groupUtilization([{ cpu: 0.89, serverCpu: 1 }], { ...p, saturatedServerCpu: 1 }), 0.89);
  assert.equal(groupUtilization([{ cpu: 0.97, serverCpu: 1 }], p), 0.97, 'never lowered');
  assert.equal(groupUtilization([], p), null);
});

test('scaling: proportional scale-out adds enough members for the mean to fall to 80 % of the mark; a full reading doubles', () => {
  const big: ScalingPolicy = { ...DEFAULT_SCALING, min: 1, max: 64 };
  const at = (u: number, n: number, p = big) => decideScaling(p, { members: Array.from({ length: n }, (_, i) => member(`m${i}`)), load: samples(0, 100, u), lastScaleOutAt: null, lastScaleInAt: null, now: 100 * S });
  // 4 members at 90 %: 3.6 members' worth, at 72 % each → 5.
  assert.deepEqual([at(0.9, 4).action, (at(0.9, 4) as { count: number }).count], ['out', 1]);
  // 4 at 95 %: 3.8 / 0.72 = 5.3 → 6.
  assert.equal((at(0.95, 4) as { count: number }).count, 2);
  // 4 at 100 %: the load behind it is unknown: double.
  assert.equal((at(1, 4) as { count: number }).count, 4);
  assert.equal((at(1, 4, { ...big, saturatedGrowth: 0 }) as { count: number }).count, 2, 'without doubling: 4 / 0.72 = 5.6 → 6');
  assert.equal((at(1, 4, { ...big, scaleOutTarget: 0 }) as { count: number }).count, 1, '0: the paper\'s one at a time (step)');
  assert.equal((at(1, 4, { ...big, max: 6 }) as { count: number }).count, 2, 'never past max');
  // A reported metric reads against its own mark: 4 members at a queue of 250 with the mark at 100.
  const queue = decideScaling({ ...big, guestCpuHigh: 100, guestCpuLow: 10 }, { members: ['a', 'b', 'c', 'd'].map((n) => member(n)), load: samples(0, 100, 250), lastScaleOutAt: null, lastScaleInAt: null, now: 100 * S, metric: 'queue' });
  assert.equal((queue as { count: number }).count, 9, '4 × 250 / 80 = 12.5 → 13');
});

test('placement: a saturated server takes no new instance; with none else, the error says so (host power\'s cue)', () => {
  const load = (server: string, committedMemoryMib: number, cpu?: number | null): ServerLoad => ({ server, cpus: 8, memoryMib: 32768, reservedMemoryMib: 128, committedMemoryMib, committedVcpus: 0, ...(cpu === undefined ? {} : { cpu }) });
  // blade1 has more memory free, but its CPU is full.
  assert.deepEqual(place({ memoryMib: 512, vcpus: 1 }, [load('blade1', 1024, 0.97), load('blade2', 8192, 0.4)]), { server: 'blade2' });
  assert.deepEqual(place({ memoryMib: 512, vcpus: 1 }, [load('blade1', 1024, null), load('blade2', 8192, 0.4)]), { server: 'blade1' }, 'not measured: no bar');
  const none = place({ memoryMib: 512, vcpus: 1 }, [load('blade1', 1024, 0.97)]);
  assert.ok('error' in none && /blade1 at 97 % CPU/.test(none.error), JSON.stringify(none));
  assert.deepEqual(place({ memoryMib: 512, vcpus: 1 }, [load('blade1', 1024, 1)], 'spread', 1), { server: 'blade1' }, '1 turns it off, even for a server at 100 %');
});

test('placement: the members of one scale-out count the ones placed before them, so they do not all land on a server that only looked idle', () => {
  const load = (server: string, committedMemoryMib: number, cpu: number | null): ServerLoad => ({ server, cpus: 8, memoryMib: 32768, reservedMemoryMib: 128, committedMemoryMib, committedVcpus: 0, cpu });
  // Members at 90 % of 1 vCPU: each keeps 0.9 of a core busy where it lands.
  const added = new Map([['blade1', 2]]);
  assert.deepEqual(placedCores(added, 0.9, 1), new Map([['blade1', 1.8]]));
  assert.deepEqual(placedCores(new Map([['b', 1]]), 1.4, 2), new Map([['b', 2]]), 'a share is at most the member\'s vCPUs');
  // blade1 measured 70 %: with two placed (1.8 of 8 cores) it is at 92.5 %, saturated; blade2, fuller in memory, takes the third.
  const cpu = shiftedCpu(0.7, placedCores(added, 0.9, 1).get('blade1'), 8);
  assert.ok(Math.abs(cpu! - 0.925) < 1e-9, String(cpu));
  assert.deepEqual(place({ memoryMib: 512, vcpus: 1 }, [load('blade1', 1024, cpu), load('blade2', 8192, 0.5)]), { server: 'blade2' });
  assert.equal(shiftedCpu(null, 4, 8), 0.5, 'not measured yet (just booted): counted from what this scale-out put there');
  assert.equal(shiftedCpu(null, undefined, 8), null, 'nothing put there: stays not measured (no bar)');
  assert.equal(shiftedCpu(0.5, undefined, 8), 0.5);
});

test('power: a group whose load was not measured lately keeps its servers on; with no member it asks nothing', () => {
  assert.equal(groupDemand('web', null, 0.3, 2), 'web\'s load was not measured lately');
  assert.equal(groupDemand('web', null, 0.3, 0), null);
  assert.equal(groupDemand('web', 0.29, 0.3, 2), null);
  assert.equal(groupDemand('web', 0.3, 0.3, 2), 'web\'s load is at or above 30 %, where it may grow again');
  const empty: ServerPowerView = { server: 'b2', power: 'on', canPower: true, cpu: 0, cpuPeak: 0, emptySince: 0, bootHistorySeconds: [] };
  const busy: ServerPowerView = { server: 'b1', power: 'on', canPower: true, cpu: null, cpuPeak: null, emptySince: null, bootHistorySeconds: [] };
  const d = decidePower({ ...DEFAULT_POWER, emptyHoldSeconds: 20 }, { servers: [busy, empty], unplaced: null, now: 60_000, demand: groupDemand('web', null, 0.3, 2) });
  assert.deepEqual(d, { action: 'none', reason: 'b2 is empty but kept on: web\'s load was not measured lately' });
});
