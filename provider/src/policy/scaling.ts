// When a scaling group grows or shrinks: the paper's rule (a guest at 90 % of its CPU gets
// another instance) with what users of autoscalers ask for so that it does not churn: the load
// must hold for a window, each direction has its own cooldown, shrinking waits longer than
// growing, and a member still booting is waited for. Pure: the controller and the simulator
// call it with what they observed and the time.

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
}

export const DEFAULT_SCALING: Omit<ScalingPolicy, 'min' | 'max'> = {
  guestCpuHigh: 0.9,
  guestCpuLow: 0.3,
  windowSeconds: 60,
  step: 1,
  cooldownOutSeconds: 60,
  cooldownInSeconds: 300,
};

export interface GroupMember {
  name: string;
  /** Epoch ms the member was created; the newest go first on scale-in. */
  createdAt: number;
  /** Booting: created but not reporting load yet. */
  ready: boolean;
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

export function decideScaling(p: ScalingPolicy, g: GroupObservation): ScalingDecision {
  const metric = g.metric ?? 'cpu';
  const count = g.members.length;
  // The bounds first: they hold whatever the load says.
  if (count < p.min) return { action: 'out', count: p.min - count, reason: `${count} member(s) < min ${p.min}` };
  if (count > p.max) {
    const newest = [...g.members].sort(newestFirst).slice(0, count - p.max);
    return { action: 'in', members: newest.map((m) => m.name), reason: `${count} member(s) > max ${p.max}` };
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
    return { action: 'out', count: Math.min(p.step, p.max - count), reason: peak };
  }
  const low = held(g.load, g.now, windowMs, (u) => u < p.guestCpuLow);
  if (low && count > p.min) {
    const v = says(metric, p.guestCpuLow);
    const quiet = `${metric} ${v(Math.max(...low))} < ${v(p.guestCpuLow)} for ${p.windowSeconds} s`;
    const lastChange = Math.max(g.lastScaleOutAt ?? -Infinity, g.lastScaleInAt ?? -Infinity);
    if (g.now - lastChange < p.cooldownInSeconds * 1000) {
      return { action: 'none', reason: `${quiet}; in scale-in cooldown (${Math.ceil((p.cooldownInSeconds * 1000 - (g.now - lastChange)) / 1000)} s left)` };
    }
    const newest = [...g.members].sort(newestFirst).slice(0, Math.min(p.step, count - p.min));
    return { action: 'in', members: newest.map((m) => m.name), reason: quiet };
  }
  return { action: 'none', reason: 'load within bounds' };
}
