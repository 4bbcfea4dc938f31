// When a scaling group grows or shrinks: the paper's rule (a guest at 90 % of its CPU gets
// another instance) with what users of autoscalers ask for so that it does not churn: the load
// must hold for a window, each direction has its own cooldown, shrinking waits longer than
// growing, and a member still booting is waited for. Pure: the controller and the simulator
// call it with what they observed and the time.

import { SATURATED_SERVER_CPU } from './placement.ts';

export interface ScalingPolicy {
  min: number;
  max: number;
  /** Scale out when the group's guests use at least this share of their vCPUs (the paper's 0.9). */
  guestCpuHigh: number;
  /** Scale in when they use less than this. */
  guestCpuLow: number;
  /** How long (s) the load must stay past a threshold before anything is done. */
  windowSeconds: number;
  /** Members added or removed per decision. */
  step: number;
  /** After a scale-out, no other scale-out for this long (s): the new member takes load first. */
  cooldownOutSeconds: number;
  /** After any change, no scale-in for this long (s): shrinking is the costlier mistake. */
  cooldownInSeconds: number;
  /**
   * A server at least this busy (its guests' CPU over its CPUs) is saturated: its members get
   * less than they ask, so what they measure is what they were given, not their load; each
   * counts at least at `guestCpuHigh`, and no new member is placed there (policy/placement.ts).
   * Without it, members sharing a full server read below the mark and the group never grows off
   * it (seen in the simulator: 9 members on 8 cores at 89 %). 1 turns it off.
   */
  saturatedServerCpu?: number;
  /**
   * Proportional scale-out (Kubernetes' HPA rule): enough members that the group's mean would
   * fall to this share of the high mark (so it reads alike for CPU and a reported metric), at
   * least `step`. 0: `step` members per decision (the paper's one at a time). A mean read at
   * 100 % may hide more load, so a saturated group grows by the rule again after its cooldown.
   */
  scaleOutTarget?: number;
  /**
   * A load that held at 100 % (CPU, or a saturated server's members) says only that the group
   * wants more than it has, not how much: the group grows by this share of its size at least
   * (1: doubles, HPA's default scale-up bound). 0 turns it off.
   */
  saturatedGrowth?: number;
  /**
   * Proportional scale-in (HPA's rule downward, judged on the window's peak so noise does not
   * shrink the group): when fewer members would carry the window's highest mean at no more than
   * this share of the high mark, the surplus goes in one decision. Without it a group that grew
   * for a morning peak keeps every member through an afternoon at half the mark, spread over
   * servers that cannot be switched off (seen in the simulator: 26 members at 40 % on three
   * blades where two carry the load). 0: the low mark alone, `step` at a time (the paper's).
   * Absent (a policy stored or sent before the setting existed): 0, as it ran then; new
   * policies carry it (DEFAULT_SCALING, the schema's default).
   */
  scaleInTarget?: number;
}

export const DEFAULT_SCALING: Omit<ScalingPolicy, 'min' | 'max'> = {
  guestCpuHigh: 0.9,
  guestCpuLow: 0.3,
  windowSeconds: 30,
  step: 1,
  cooldownOutSeconds: 60,
  cooldownInSeconds: 300,
  saturatedServerCpu: SATURATED_SERVER_CPU,
  scaleOutTarget: 0.8,
  saturatedGrowth: 1,
  scaleInTarget: 0.7,
};

/** A member's CPU this round (0..1 of its vCPUs) and its server's (null: not measured). */
export interface MemberCpu {
  cpu: number;
  serverCpu: number | null;
}

/**
 * The group's load at one round, as scaling reads it: its members' mean CPU, a member on a
 * saturated server counted at least at the high mark (see `saturatedServerCpu`). Null without
 * members measured. The controller's sampler and the simulator record it alike.
 */
export function groupUtilization(members: readonly MemberCpu[], p: Pick<ScalingPolicy, 'guestCpuHigh' | 'saturatedServerCpu'>): number | null {
  if (!members.length) return null;
  const saturated = p.saturatedServerCpu ?? DEFAULT_SCALING.saturatedServerCpu!;
  const counted = members.map((m) => (saturated < 1 && m.serverCpu !== null && m.serverCpu >= saturated ? Math.max(m.cpu, p.guestCpuHigh) : m.cpu));
  return counted.reduce((a, b) => a + b, 0) / counted.length;
}

/** A policy's proportional scale-in target: absent is 0 (see `scaleInTarget`). */
export const scaleInTargetOf = (p: Pick<ScalingPolicy, 'scaleInTarget'>): number => p.scaleInTarget ?? 0;

/**
 * The group's load at or above which its servers are still wanted: no empty one goes off
 * (policy/power.ts groupDemand). The low mark, as long as a group shrinks only below it; with
 * proportional scale-in a group carrying its load on fewer members sits above the low mark all
 * day, and the server it emptied would never go (seen in the simulator: three blades on through an
 * afternoon two carried), so then the high mark: the load at which the group is about to grow.
 */
export function demandMark(p: Pick<ScalingPolicy, 'guestCpuHigh' | 'guestCpuLow' | 'scaleInTarget'>): number {
  return scaleInTargetOf(p) > 0 ? p.guestCpuHigh : p.guestCpuLow;
}

export interface GroupMember {
  name: string;
  /** Epoch ms the member was created; the newest go first on scale-in. */
  createdAt: number;
  /** Booting: created but not reporting load yet. */
  ready: boolean;
  /** The server it runs on, when known: scale-in then empties the least-used server first. */
  server?: string;
}

/** The group's mean utilization (0..1, over its ready members) at one moment. */
export interface GroupLoadSample {
  at: number;
  utilization: number;
}

export interface GroupObservation {
  members: readonly GroupMember[];
  /** Samples of the group's load, oldest first. */
  load: readonly GroupLoadSample[];
  lastScaleOutAt: number | null;
  lastScaleInAt: number | null;
  now: number;
  /** What `load` measures, for the reasons: 'cpu' (the default) or a reported metric's name. */
  metric?: string;
  /**
   * Instances (of every group) on each server host power may switch off. A scale-in takes
   * members from these servers first, the one holding the fewest first, so that it empties and
   * can go off; members elsewhere, and ties, go newest first.
   */
  drainable?: Readonly<Record<string, number>>;
}

export type ScalingDecision =
  | { action: 'none'; reason: string }
  | { action: 'out'; count: number; reason: string }
  | { action: 'in'; members: string[]; reason: string };

/**
 * A value against its mark, in the group's metric: CPU as a percentage (with a decimal when
 * rounding would make it read as the mark itself: "29.7 % < 30 %", not "30 % < 30 %"), a
 * reported metric as its number.
 */
function says(metric: string, mark: number): (x: number) => string {
  if (metric !== 'cpu') return (x) => String(Math.round(x * 100) / 100);
  return (x) => (Math.round(x * 100) === Math.round(mark * 100) && x !== mark ? `${(x * 100).toFixed(1)} %` : `${Math.round(x * 100)} %`);
}

/** Newest first; members made in one round go by name (web-10 after web-9). */
const newestFirst = (a: GroupMember, b: GroupMember) => b.createdAt - a.createdAt || b.name.localeCompare(a.name, 'en', { numeric: true });

/**
 * The `n` members a scale-in removes: from the drainable server holding the fewest instances
 * first (servers holding as many go by name, so one empties rather than each losing one), then
 * newest first.
 */
function leaving(g: GroupObservation, n: number): string[] {
  const on = (m: GroupMember) => (m.server !== undefined ? g.drainable?.[m.server] : undefined) ?? Infinity;
  const drained = (m: GroupMember) => (on(m) === Infinity ? '' : m.server!);
  return [...g.members].sort((a, b) => on(a) - on(b) || drained(a).localeCompare(drained(b)) || newestFirst(a, b)).slice(0, n).map((m) => m.name);
}

/**
 * The load has stayed past `test` for the whole window ending now: the latest run of samples
 * that pass began at least a window ago, and the latest sample is fresh (within the window;
 * without fresh samples nothing is known). Returns the run's values for the log, or null.
 */
function held(load: readonly GroupLoadSample[], now: number, windowMs: number, test: (u: number) => boolean): number[] | null {
  const latest = load[load.length - 1];
  if (!latest || now - latest.at > windowMs) return null;
  let first = load.length;
  while (first > 0 && test(load[first - 1]!.utilization)) first--;
  const run = load.slice(first);
  if (!run.length || now - run[0]!.at < windowMs) return null;
  return run.filter((s) => s.at >= now - windowMs).map((s) => s.utilization);
}

/** Members fewer ones would carry `peak` with at `scaleInTarget` of the high mark (0 when none, or the rule is off). */
function surplus(p: ScalingPolicy, count: number, peak: number): number {
  const target = scaleInTargetOf(p);
  if (!(target > 0)) return 0;
  return Math.max(0, count - Math.max(p.min, 1, Math.ceil((count * peak) / (target * p.guestCpuHigh) - 1e-9)));
}

/** Members a scale-out adds: `step`, or by the proportional rule from the window's lowest mean (the load that held). */
function outCount(p: ScalingPolicy, count: number, held: readonly number[], metric: string): number {
  const target = p.scaleOutTarget ?? DEFAULT_SCALING.scaleOutTarget;
  if (target === undefined || !(target > 0) || count === 0) return p.step;
  const least = Math.min(...held);
  const proportional = Math.ceil((count * least) / (target * p.guestCpuHigh) - 1e-9) - count;
  // Only a share of vCPUs reads as "full"; a reported metric has no ceiling to hide behind.
  const full = metric === 'cpu' && least >= 0.99 ? Math.ceil(count * (p.saturatedGrowth ?? DEFAULT_SCALING.saturatedGrowth!)) : 0;
  return Math.max(p.step, proportional, full);
}

export function decideScaling(p: ScalingPolicy, g: GroupObservation): ScalingDecision {
  const metric = g.metric ?? 'cpu';
  const count = g.members.length;
  // The bounds first: they hold whatever the load says.
  if (count < p.min) return { action: 'out', count: p.min - count, reason: `${count} member(s) < min ${p.min}` };
  if (count > p.max) {
    return { action: 'in', members: leaving(g, count - p.max), reason: `${count} member(s) > max ${p.max}` };
  }
  const windowMs = p.windowSeconds * 1000;
  const booting = g.members.filter((m) => !m.ready);
  const high = held(g.load, g.now, windowMs, (u) => u >= p.guestCpuHigh);
  if (high) {
    const v = says(metric, p.guestCpuHigh);
    const peak = `${metric} ${v(Math.min(...high))}–${v(Math.max(...high))} ≥ ${v(p.guestCpuHigh)} for ${p.windowSeconds} s`;
    if (count >= p.max) return { action: 'none', reason: `${peak}, but already at max ${p.max}` };
    if (booting.length) return { action: 'none', reason: `${peak}; waiting for ${booting.map((m) => m.name).join(', ')} to boot` };
    if (g.lastScaleOutAt !== null && g.now - g.lastScaleOutAt < p.cooldownOutSeconds * 1000) {
      return { action: 'none', reason: `${peak}; in scale-out cooldown (${Math.ceil((p.cooldownOutSeconds * 1000 - (g.now - g.lastScaleOutAt)) / 1000)} s left)` };
    }
    return { action: 'out', count: Math.min(outCount(p, count, high, metric), p.max - count), reason: peak };
  }
  const low = held(g.load, g.now, windowMs, (u) => u < p.guestCpuLow);
  // The whole window, to judge what fewer members would carry; not while members boot (they take load soon).
  const window = booting.length ? null : held(g.load, g.now, windowMs, () => true);
  const extra = window ? surplus(p, count, Math.max(...window)) : 0;
  if ((low || extra > 0) && count > p.min) {
    const n = Math.min(count - p.min, Math.max(low ? p.step : 0, extra));
    const target = scaleInTargetOf(p) * p.guestCpuHigh;
    const carry = `${count - n} member(s) carry it at ≤ ${says(metric, target)(target)}`;
    const quiet = low
      ? `${metric} ${says(metric, p.guestCpuLow)(Math.max(...low))} < ${says(metric, p.guestCpuLow)(p.guestCpuLow)} for ${p.windowSeconds} s${n > p.step ? `: ${carry}` : ''}`
      : `${metric} ≤ ${says(metric, target)(Math.max(...window!))} for ${p.windowSeconds} s: ${carry}`;
    const lastChange = Math.max(g.lastScaleOutAt ?? -Infinity, g.lastScaleInAt ?? -Infinity);
    if (g.now - lastChange < p.cooldownInSeconds * 1000) {
      return { action: 'none', reason: `${quiet}; in scale-in cooldown (${Math.ceil((p.cooldownInSeconds * 1000 - (g.now - lastChange)) / 1000)} s left)` };
    }
    return { action: 'in', members: leaving(g, n), reason: quiet };
  }
  return { action: 'none', reason: 'load within bounds' };
}
