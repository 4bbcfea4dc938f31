// The policies the simulator compares. storm's is the controller's own composition of the same
// pure functions it calls (policy/scaling.ts decideScaling, policy/placement.ts place,
// policy/power.ts decidePower and groupDemand), round by round as its group and power passes
// do: scale each group and place its new members on powered servers, then decide each group's
// servers' power. The others differ only where their anchors differ.
import { place, placedCores, shiftedCpu, type PlacementMode } from '../policy/placement.ts';
import { decidePower, DEFAULT_POWER, emptySinceAfter, groupDemand, type PowerPolicy, type ServerPowerView } from '../policy/power.ts';
import { decideScaling, DEFAULT_SCALING, demandMark, groupUtilization, type ScalingPolicy } from '../policy/scaling.ts';
import { serverLoad, type ClusterControl, type ClusterPolicy, type ClusterView, type ServerView } from './engine.ts';
import type { LoadTrace } from './traces.ts';

export interface GroupBounds {
  /** Members kept whatever the load; default 1. */
  min?: number;
  /** Members never exceeded; default 64. */
  max?: number;
}

/**
 * One scaling pass over every group, as the controller's group pass: returns each group's
 * unplaced member, if any. `drain`: the policy switches servers off, so a scale-in empties one
 * first (the controller does so for a group with host power); otherwise newest first.
 */
export function scaleGroups(control: ClusterControl, policy: ScalingPolicy, mode: PlacementMode, drain = false): Map<string, string | null> {
  const unplaced = new Map<string, string | null>();
  for (const g of control.view().groups) {
    // Counted afresh for each group, as each group pass lists its servers' domains.
    const drainable = drain ? Object.fromEntries(control.view().servers.filter((s) => s.power === 'on').map((s) => [s.spec.name, s.instances])) : undefined;
    unplaced.set(g.name, null);
    // A fixed VM is a group of exactly one: made once, never scaled.
    if (g.kind === 'vm' && g.members.length === 1) continue;
    const d = decideScaling(g.kind === 'vm' ? { ...policy, min: 1, max: 1 } : policy, {
      members: g.members.map((m) => ({ name: m.name, createdAt: m.createdAt, ready: m.ready, server: m.server })),
      ...(drainable ? { drainable } : {}),
      load: g.load,
      lastScaleOutAt: g.lastScaleOutAt,
      lastScaleInAt: g.lastScaleInAt,
      now: control.now,
    });
    if (d.action === 'out') {
      // Each placement counts the members placed before it in this pass (placedCores).
      const added = new Map<string, number>();
      const load = g.load.at(-1)?.utilization ?? 0;
      for (let n = 0; n < d.count; n++) {
        const shift = placedCores(added, load, g.vcpus);
        const candidates = control.view().servers.filter((s) => s.power === 'on').map((s) => {
          const observed = serverLoad(s);
          return { ...observed, cpu: shiftedCpu(observed.cpu, shift.get(s.spec.name), s.spec.cores) };
        });
        const where = candidates.length ? place({ memoryMib: g.memoryMib, vcpus: g.vcpus }, candidates, mode, policy.saturatedServerCpu) : { error: 'no server is on' };
        if ('error' in where) {
          // A scale-out that placed some members asks for no server: they take load first (see the controller's group pass).
          if (n === 0) unplaced.set(g.name, `a member of ${g.name}`);
          break;
        }
        control.act({ kind: 'create', group: g.name, server: where.server });
        added.set(where.server, (added.get(where.server) ?? 0) + 1);
      }
    } else if (d.action === 'in') {
      for (const name of d.members) control.act({ kind: 'remove', instance: name });
    }
  }
  return unplaced;
}

/** What the controller's power pass remembers between rounds: since when each server has been empty. */
export class EmptySince {
  private readonly since = new Map<string, number>();

  /** Updates from what is observed now (as the controller's power pass does); returns the server's empty-since (null unless on and empty). */
  observe(s: ServerView, now: number): number | null {
    const name = s.spec.name;
    // Guests are counted on a server that is on, as libvirt answers only then.
    const empty = emptySinceAfter(this.since.get(name) ?? null, s.power, s.power === 'on' ? s.instances : null, now);
    if (empty === null) this.since.delete(name);
    else this.since.set(name, empty);
    return s.power === 'on' ? empty : null;
  }
}

/**
 * One power pass per scaling group, as the controller's: observe, decide (decidePower), act.
 * Fixed VMs belong to no group; they get one pass together (storm's host power is a group's,
 * so this is what it would do for a fleet of instances handed the same policy).
 */
export function powerServers(control: ClusterControl, policy: PowerPolicy, scaling: ScalingPolicy, unplaced: Map<string, string | null>, empty: EmptySince): void {
  const groups = control.view().groups;
  const vmUnplaced = groups.filter((g) => g.kind === 'vm').map((g) => unplaced.get(g.name)).find(Boolean) ?? null;
  const passes = [
    ...groups.filter((g) => g.kind === 'group').map((g) => ({ name: g.name, unplaced: unplaced.get(g.name) ?? null, demand: groupDemand(g.name, g.load.at(-1)?.utilization ?? null, demandMark(scaling), g.members.length) })),
    ...(groups.some((g) => g.kind === 'vm') ? [{ name: 'vms', unplaced: vmUnplaced, demand: null }] : []),
  ];
  const holdMs = policy.emptyHoldSeconds * 1000;
  let seen: ClusterView | null = null;
  let servers: ServerPowerView[] = [];
  for (const pass of passes) {
    const view = control.view();
    // The servers as observed: once per change, not once per pass.
    if (view !== seen) {
      seen = view;
      servers = view.servers.map((s) => {
        let peak: number | null = null;
        for (const x of s.cpuHistory) if (x.at >= control.now - holdMs) peak = Math.max(peak ?? 0, x.utilization);
        return {
          server: s.spec.name,
          power: s.power,
          canPower: true,
          cpu: s.power === 'on' ? s.cpu : null,
          cpuPeak: s.power === 'on' ? peak : null,
          emptySince: empty.observe(s, control.now),
          bootHistorySeconds: s.bootHistorySeconds,
        };
      });
    }
    const d = decidePower(policy, { servers, unplaced: pass.unplaced, now: control.now, demand: pass.demand });
    if (d.action !== 'none') control.act({ kind: 'power', server: d.server, to: d.action });
  }
}

export interface StormPolicyOptions extends GroupBounds {
  scaling?: Partial<Omit<ScalingPolicy, 'min' | 'max'>>;
  power?: Partial<PowerPolicy>;
  placement?: PlacementMode;
}

/** A group's scaling: storm's defaults, the given changes, the bounds. Every policy compared but the paper's scales groups alike. */
export const scalingOf = (o: StormPolicyOptions): ScalingPolicy => ({ ...DEFAULT_SCALING, ...o.scaling, min: o.min ?? 1, max: o.max ?? 64 });

/** How every policy compared reads a group's load: as the controller's sampler does, for `scaling`. */
export const groupSampleOf = (scaling: ScalingPolicy): ClusterPolicy['groupSample'] => (members) => groupUtilization(members, scaling);

/** storm as shipped: the controller's defaults (scaling, host power, spread placement). */
export function stormPolicy(options: StormPolicyOptions = {}): ClusterPolicy {
  const scaling = scalingOf(options);
  const power: PowerPolicy = { ...DEFAULT_POWER, ...options.power };
  const mode = options.placement ?? 'spread';
  const empty = new EmptySince();
  return {
    name: 'storm',
    description: `storm's controller: a member more at ${scaling.guestCpuHigh * 100} % guest CPU held ${scaling.windowSeconds} s, ${mode} placement, a server on when the powered ones are at ${power.hostCpuHigh * 100} %, off after ${power.emptyHoldSeconds} s empty while the group is below ${demandMark(scaling) === scaling.guestCpuHigh ? 'its high mark' : 'its low mark'}`,
    initialPower: (_s, i) => (i < power.minServersOn ? 'on' : 'off'),
    groupSample: groupSampleOf(scaling),
    round(control) {
      const unplaced = scaleGroups(control, scaling, mode, true);
      powerServers(control, power, scaling, unplaced, empty);
    },
  };
}

/**
 * What a user without storm runs: every server on, each group provisioned once for its trace's
 * peak (members enough to carry it at 90 % of their vCPUs), each VM made once, dealt round-robin
 * over the servers; nothing scales, moves or powers off. No storm decision is in it: the
 * baseline the others are measured against.
 */
export function staticPeakPolicy(trace: LoadTrace): ClusterPolicy {
  let made = false;
  return {
    name: 'static-peak',
    description: 'no storm: every server on, each group sized once for its peak at 90 %, each VM made once, round-robin',
    initialPower: () => 'on',
    round(control) {
      if (made) return;
      made = true;
      const servers = control.view().servers;
      let next = 0;
      for (const w of trace.workloads) {
        const count = w.kind === 'vm' ? 1 : Math.max(1, Math.ceil(Math.max(0, ...w.demand) / (0.9 * w.vcpus) - 1e-9));
        for (let n = 0; n < count; n++) control.act({ kind: 'create', group: w.name, server: servers[next++ % servers.length]!.spec.name });
      }
    },
  };
}

/** Every server on all the time; groups scale as storm's do. The baseline of no power management. */
export function alwaysOnPolicy(options: GroupBounds = {}): ClusterPolicy {
  const scaling = scalingOf(options);
  return {
    name: 'always-on',
    description: 'every server on all the time; groups scale as storm\'s do, spread placement',
    initialPower: () => 'on',
    groupSample: groupSampleOf(scaling),
    round(control) {
      scaleGroups(control, scaling, 'spread');
    },
  };
}

/** The paper's scaling: one member at a time, a member's CPU time read as it is, any server with room takes one. */
export const PAPER_SCALING: Partial<ScalingPolicy> = { scaleOutTarget: 0, scaleInTarget: 0, saturatedGrowth: 0, saturatedServerCpu: 1 };

/** The paper's STORM: one member at a time, spread to the least-loaded blade, power one on when the powered ones reach 90 %, never power off. */
export function paperPolicy(options: GroupBounds = {}): ClusterPolicy {
  const scaling = scalingOf({ ...options, scaling: PAPER_SCALING });
  const power: PowerPolicy = { ...DEFAULT_POWER, hostCpuHigh: 0.9, minServersOn: 1, emptyHoldSeconds: Number.POSITIVE_INFINITY };
  const empty = new EmptySince();
  return {
    name: 'paper',
    description: 'the paper\'s STORM: a member more at 90 % guest CPU, one at a time, least-loaded placement, a blade on when the powered ones reach 90 %, never off',
    initialPower: (_s, i) => (i === 0 ? 'on' : 'off'),
    groupSample: groupSampleOf(scaling),
    round(control) {
      const unplaced = scaleGroups(control, scaling, 'spread');
      powerServers(control, power, scaling, unplaced, empty);
    },
  };
}
