// The simulated cluster and its clock. Time is simulated: a round every `roundSeconds` (the
// controller's interval), the trace's demand held between its samples. Each round, in order:
// power and boot transitions that are due happen; every group's demand is spread over its ready
// members and every server's CPU shared among what it runs (a busy host gives each guest less
// than it asks: a guest then measures less than its demand, as CPU time does for real); the
// samples a controller would take are recorded; the round's energy, overload and timeline are
// counted; then the policy observes and acts through `ClusterControl`, as a controller pass
// does. The policies are plugged in (policies.ts); the decisions are theirs, the physics here.
import type { GroupLoadSample, MemberCpu } from '../policy/scaling.ts';
import type { ServerLoad } from '../policy/placement.ts';
import type { LoadTrace, TraceWorkload } from './traces.ts';
import { watts, type PowerState, type ServerSpec } from './servers.ts';

/** A guest is overwhelmed at 90 % of its CPU (the paper's mark): time past it is overload. */
export const OVERLOAD_MARK = 0.9;
/** Simulated time starts at this epoch (ms): a trace's t = 0 is 00:00 UTC of 2026-01-05, a Monday. */
export const SIM_EPOCH_MS = Date.UTC(2026, 0, 5);
/** Server CPU samples kept for policies that look back (a DPM-like power-off window is 40 min). */
const HISTORY_MS = 60 * 60_000;

export interface SimOptions {
  /** Seconds between policy rounds (the controller's interval); default the trace's step, at most 15 s. */
  roundSeconds?: number;
  /** An instance's boot until it takes load, s; default 30. */
  instanceBootSeconds?: number;
  /** Timeline points kept per series at most (thinned evenly); default 2000. */
  timelinePoints?: number;
}

export interface MemberView {
  name: string;
  server: string;
  createdAt: number;
  ready: boolean;
  /** CPU it got in the last round, 0..1 of its vCPUs. */
  cpu: number;
}

export interface GroupView {
  name: string;
  /** 'group': a scaling group; 'vm': one fixed VM, kept at exactly one instance. */
  kind: 'group' | 'vm';
  vcpus: number;
  memoryMib: number;
  members: readonly MemberView[];
  /** The group's mean utilization over its ready members, one sample per round, oldest first (the last hour). */
  load: readonly GroupLoadSample[];
  lastScaleOutAt: number | null;
  lastScaleInAt: number | null;
}

export interface ServerView {
  spec: ServerSpec;
  power: PowerState;
  /** CPU utilization in the last round (0 unless on). */
  cpu: number;
  /** Its CPU each round while on, oldest first (the last hour). */
  cpuHistory: readonly GroupLoadSample[];
  /** Instances on it, booting ones included. */
  instances: number;
  committedMemoryMib: number;
  committedVcpus: number;
  /** Seconds each past power-on took, oldest first. */
  bootHistorySeconds: readonly number[];
}

export interface ClusterView {
  now: number;
  servers: readonly ServerView[];
  groups: readonly GroupView[];
}

/** `replacement`: part of moving a member (made elsewhere, then the old removed), not a scaling step: no cooldown starts. */
export type Action =
  | { kind: 'create'; group: string; server: string; replacement?: boolean }
  | { kind: 'remove'; instance: string; replacement?: boolean }
  | { kind: 'power'; server: string; to: 'on' | 'off' }
  | { kind: 'migrate'; instance: string; to: string };

export type ActionResult = { ok: true; instance?: string } | { ok: false; error: string };

/** What a policy's round is given: the cluster as observed now, and its hands. */
export interface ClusterControl {
  readonly now: number;
  view(): ClusterView;
  act(action: Action): ActionResult;
}

export interface ClusterPolicy {
  /** Short name for tables: 'storm', 'always-on', … */
  name: string;
  /** One sentence: what it does and where it comes from. */
  description: string;
  /** Power of each server at t = 0. */
  initialPower(server: ServerSpec, index: number): 'on' | 'off';
  /** One round: observe and act. */
  round(control: ClusterControl): void;
  /**
   * The group's load sample from its ready members' CPU and their servers' (what the
   * controller's sampler records); default their mean.
   */
  groupSample?(members: readonly MemberCpu[]): number | null;
}

export interface SeriesPoint { at: number; value: number }

export interface SimResult {
  trace: string;
  policy: string;
  seconds: number;
  energyKwh: number;
  /** Per server, kWh. */
  serverEnergyKwh: Record<string, number>;
  /**
   * Share of workload-time (0..1) overloaded: a group's members at or past the overload mark, or
   * any workload asking for CPU it is not given (no member ready, or a saturated host). A VM
   * busy on its own vCPUs is its load, not the policy's doing: only a VM not given its CPU counts.
   */
  overloadShare: number;
  /** CPU-seconds asked for and not given (no member, or a saturated host). */
  unservedCpuSeconds: number;
  powerOns: number;
  powerCyclesPerServerDay: number;
  creations: number;
  removals: number;
  migrations: number;
  timeline: { watts: { server: string; points: SeriesPoint[] }[]; total: SeriesPoint[]; instances: { group: string; points: SeriesPoint[] }[] };
  /** Actions the engine refused (a policy asking for the impossible), first few. */
  refused: string[];
}

interface SimServer {
  spec: ServerSpec;
  power: PowerState;
  /** When the current boot or shutdown completes (ms). */
  until: number;
  poweredOnAt: number;
  cpu: number;
  cpuHistory: GroupLoadSample[];
  bootHistorySeconds: number[];
  energyJ: number;
}

interface SimInstance {
  name: string;
  group: string;
  server: string;
  createdAt: number;
  readyAt: number;
  vcpus: number;
  memoryMib: number;
  /** Cores asked for and given in the last round. */
  wanted: number;
  given: number;
}

interface SimGroup {
  workload: TraceWorkload;
  load: GroupLoadSample[];
  lastScaleOutAt: number | null;
  lastScaleInAt: number | null;
  nextIndex: number;
  overloadSeconds: number;
}

/** Cluster state and the rules of physics; `run` drives it over a trace. */
class Cluster {
  readonly servers: SimServer[];
  readonly groups: SimGroup[];
  readonly instances: SimInstance[] = [];
  now = SIM_EPOCH_MS;
  creations = 0;
  removals = 0;
  migrations = 0;
  powerOns = 0;
  unservedCpuSeconds = 0;
  readonly refused: string[] = [];

  private readonly groupSample: ClusterPolicy['groupSample'];

  constructor(specs: readonly ServerSpec[], trace: LoadTrace, policy: ClusterPolicy, private readonly instanceBootMs: number) {
    this.groupSample = policy.groupSample?.bind(policy);
    this.servers = specs.map((spec, i) => ({ spec, power: policy.initialPower(spec, i), until: 0, poweredOnAt: this.now, cpu: 0, cpuHistory: [], bootHistorySeconds: [], energyJ: 0 }));
    this.groups = trace.workloads.map((workload) => ({ workload, load: [], lastScaleOutAt: null, lastScaleInAt: null, nextIndex: 0, overloadSeconds: 0 }));
  }

  /** Boots and shutdowns that are due complete; instances whose boot is done become ready. */
  transitions(): void {
    for (const s of this.servers) {
      if (s.power === 'booting' && s.until <= this.now) {
        s.power = 'on';
        s.bootHistorySeconds.push((s.until - s.poweredOnAt) / 1000);
      } else if (s.power === 'stopping' && s.until <= this.now) {
        s.power = 'off';
      }
    }
  }

  /** Instances by group and by server, for this round's sums. */
  private index(): { byGroup: Map<string, SimInstance[]>; byServer: Map<string, SimInstance[]> } {
    const byGroup = new Map<string, SimInstance[]>();
    const byServer = new Map<string, SimInstance[]>();
    for (const i of this.instances) {
      (byGroup.get(i.group) ?? byGroup.set(i.group, []).get(i.group)!).push(i);
      (byServer.get(i.server) ?? byServer.set(i.server, []).get(i.server)!).push(i);
    }
    return { byGroup, byServer };
  }

  /** Demand spread over ready members, then each server's cores shared among what it runs. */
  share(demandOf: (g: SimGroup) => number, roundSeconds: number): void {
    const { byGroup, byServer } = this.index();
    for (const i of this.instances) i.wanted = 0;
    for (const g of this.groups) {
      const ready = (byGroup.get(g.workload.name) ?? []).filter((i) => i.readyAt <= this.now);
      const demand = demandOf(g);
      // Each ready member gets an equal share (round-robin DNS), at most its vCPUs.
      for (const i of ready) i.wanted = Math.min(i.vcpus, demand / ready.length);
    }
    for (const s of this.servers) {
      const here = byServer.get(s.spec.name) ?? [];
      const wanted = here.reduce((a, i) => a + i.wanted, 0);
      const scale = wanted > s.spec.cores ? s.spec.cores / wanted : 1;
      for (const i of here) i.given = i.wanted * scale;
      s.cpu = s.power === 'on' ? Math.min(1, wanted * scale / s.spec.cores) : 0;
      if (s.power === 'on') s.cpuHistory.push({ at: this.now, utilization: s.cpu });
      while (s.cpuHistory.length && s.cpuHistory[0]!.at < this.now - HISTORY_MS) s.cpuHistory.shift();
    }
    const cpuOf = new Map(this.servers.map((s) => [s.spec.name, s.cpu]));
    for (const g of this.groups) {
      const demand = demandOf(g);
      const ready = (byGroup.get(g.workload.name) ?? []).filter((i) => i.readyAt <= this.now);
      const given = ready.reduce((a, i) => a + i.given, 0);
      this.unservedCpuSeconds += Math.max(0, demand - given) * roundSeconds;
      if (ready.length) {
        const cpus = ready.map((i) => ({ cpu: i.given / i.vcpus, serverCpu: cpuOf.get(i.server) ?? null }));
        const utilization = cpus.reduce((a, m) => a + m.cpu, 0) / cpus.length;
        g.load.push({ at: this.now, utilization: this.groupSample?.(cpus) ?? utilization });
        while (g.load.length && g.load[0]!.at < this.now - HISTORY_MS) g.load.shift();
        const hot = g.workload.kind === 'group' && utilization >= OVERLOAD_MARK;
        if (hot || given < demand * 0.99) g.overloadSeconds += roundSeconds;
      } else if (demand > 0) {
        g.overloadSeconds += roundSeconds;
      }
    }
  }

  /** Energy of the round that starts now, at the draw it starts with. */
  account(roundSeconds: number): number {
    let total = 0;
    for (const s of this.servers) {
      const w = watts(s.spec, s.power, s.cpu);
      s.energyJ += w * roundSeconds;
      total += w;
    }
    return total;
  }

  /** The view policies observe; made once per change (a policy reads it many times a round). */
  private cached: ClusterView | null = null;

  view(): ClusterView {
    this.cached ??= this.makeView();
    return this.cached;
  }

  /** Drops the cached view: the clock moved or something changed. */
  changed(): void {
    this.cached = null;
  }

  private makeView(): ClusterView {
    const { byGroup, byServer } = this.index();
    return {
      now: this.now,
      servers: this.servers.map((s) => {
        const here = byServer.get(s.spec.name) ?? [];
        return {
          spec: s.spec,
          power: s.power,
          cpu: s.cpu,
          cpuHistory: s.cpuHistory,
          instances: here.length,
          committedMemoryMib: here.reduce((a, i) => a + i.memoryMib, 0),
          committedVcpus: here.reduce((a, i) => a + i.vcpus, 0),
          bootHistorySeconds: s.bootHistorySeconds,
        };
      }),
      groups: this.groups.map((g) => ({
        name: g.workload.name,
        kind: g.workload.kind,
        vcpus: g.workload.vcpus,
        memoryMib: g.workload.memoryMib,
        members: (byGroup.get(g.workload.name) ?? []).map((i) => ({ name: i.name, server: i.server, createdAt: i.createdAt, ready: i.readyAt <= this.now, cpu: i.given / i.vcpus })),
        load: g.load,
        lastScaleOutAt: g.lastScaleOutAt,
        lastScaleInAt: g.lastScaleInAt,
      })),
    };
  }

  act(a: Action): ActionResult {
    this.changed();
    const r = this.apply(a);
    if (!r.ok && this.refused.length < 10) this.refused.push(`${new Date(this.now).toISOString()} ${JSON.stringify(a)}: ${r.error}`);
    return r;
  }

  private apply(a: Action): ActionResult {
    const server = (name: string) => this.servers.find((s) => s.spec.name === name);
    switch (a.kind) {
      case 'create': {
        const g = this.groups.find((x) => x.workload.name === a.group);
        const s = server(a.server);
        if (!g || !s) return { ok: false, error: 'no such group or server' };
        if (s.power !== 'on') return { ok: false, error: `${a.server} is ${s.power}` };
        const name = `${a.group}-${g.nextIndex++}`;
        this.instances.push({ name, group: a.group, server: a.server, createdAt: this.now, readyAt: this.now + this.instanceBootMs, vcpus: g.workload.vcpus, memoryMib: g.workload.memoryMib, wanted: 0, given: 0 });
        if (!a.replacement) g.lastScaleOutAt = this.now;
        this.creations++;
        return { ok: true, instance: name };
      }
      case 'remove': {
        const at = this.instances.findIndex((i) => i.name === a.instance);
        if (at < 0) return { ok: false, error: 'no such instance' };
        const [gone] = this.instances.splice(at, 1);
        const g = this.groups.find((x) => x.workload.name === gone!.group)!;
        if (!a.replacement) g.lastScaleInAt = this.now;
        this.removals++;
        return { ok: true };
      }
      case 'migrate': {
        const i = this.instances.find((x) => x.name === a.instance);
        const s = server(a.to);
        if (!i || !s) return { ok: false, error: 'no such instance or server' };
        if (s.power !== 'on') return { ok: false, error: `${a.to} is ${s.power}` };
        i.server = a.to;
        this.migrations++;
        return { ok: true };
      }
      case 'power': {
        const s = server(a.server);
        if (!s) return { ok: false, error: 'no such server' };
        if (a.to === 'on') {
          if (s.power !== 'off') return { ok: false, error: `${a.server} is ${s.power}` };
          s.power = 'booting';
          s.poweredOnAt = this.now;
          s.until = this.now + s.spec.bootSeconds * 1000;
          this.powerOns++;
          return { ok: true };
        }
        if (s.power !== 'on') return { ok: false, error: `${a.server} is ${s.power}` };
        if (this.instances.some((i) => i.server === a.server)) return { ok: false, error: `${a.server} still hosts instances` };
        s.power = 'stopping';
        s.until = this.now + s.spec.stopSeconds * 1000;
        s.cpu = 0;
        return { ok: true };
      }
    }
  }
}

/** Every `keep`-th point of a series, and its last. */
function thin(points: SeriesPoint[], max: number): SeriesPoint[] {
  if (points.length <= max) return points;
  const keep = Math.ceil(points.length / max);
  return points.filter((_, i) => i % keep === 0 || i === points.length - 1);
}

/** Runs `policy` over `trace` on `servers`. Deterministic: the same inputs give the same result. */
export function simulate(trace: LoadTrace, servers: readonly ServerSpec[], policy: ClusterPolicy, options: SimOptions = {}): SimResult {
  const roundSeconds = options.roundSeconds ?? Math.min(trace.stepSeconds, 15);
  if (!(roundSeconds > 0)) throw new Error('roundSeconds must be positive');
  const cluster = new Cluster(servers, trace, policy, (options.instanceBootSeconds ?? 30) * 1000);
  const samples = Math.max(...trace.workloads.map((w) => w.demand.length));
  const seconds = samples * trace.stepSeconds;
  const rounds = Math.floor(seconds / roundSeconds);
  // A group's demand is in cores; a VM's is its utilization of its vCPUs.
  const demandOf = (g: SimGroup) => (g.workload.demand[Math.min(g.workload.demand.length - 1, Math.floor((cluster.now - SIM_EPOCH_MS) / 1000 / trace.stepSeconds))] ?? 0) * (g.workload.kind === 'vm' ? g.workload.vcpus : 1);
  const wattsSeries = servers.map(() => [] as SeriesPoint[]);
  const total: SeriesPoint[] = [];
  // One series per scaling group; fixed VMs, however many, are one series of how many run.
  const series = [...cluster.groups.filter((g) => g.workload.kind === 'group').map((g) => g.workload.name), ...(cluster.groups.some((g) => g.workload.kind === 'vm') ? ['vms'] : [])];
  const seriesOf = (g: SimGroup) => (g.workload.kind === 'vm' ? 'vms' : g.workload.name);
  const instances = series.map(() => [] as SeriesPoint[]);
  const control: ClusterControl = {
    get now() { return cluster.now; },
    view: () => cluster.view(),
    act: (a) => cluster.act(a),
  };
  for (let r = 0; r < rounds; r++) {
    cluster.now = SIM_EPOCH_MS + r * roundSeconds * 1000;
    cluster.changed();
    cluster.transitions();
    cluster.share(demandOf, roundSeconds);
    cluster.changed();
    const drawn = cluster.account(roundSeconds);
    cluster.servers.forEach((s, i) => wattsSeries[i]!.push({ at: cluster.now, value: watts(s.spec, s.power, s.cpu) }));
    total.push({ at: cluster.now, value: drawn });
    const members = new Map<string, number>();
    for (const g of cluster.groups) members.set(seriesOf(g), members.get(seriesOf(g)) ?? 0);
    const kinds = new Map(cluster.groups.map((g) => [g.workload.name, seriesOf(g)]));
    for (const x of cluster.instances) members.set(kinds.get(x.group)!, members.get(kinds.get(x.group)!)! + 1);
    series.forEach((name, i) => instances[i]!.push({ at: cluster.now, value: members.get(name) ?? 0 }));
    policy.round(control);
  }
  const max = options.timelinePoints ?? 2000;
  const energyJ = cluster.servers.reduce((a, s) => a + s.energyJ, 0);
  const groupSeconds = cluster.groups.length * rounds * roundSeconds;
  return {
    trace: trace.name,
    policy: policy.name,
    seconds: rounds * roundSeconds,
    energyKwh: energyJ / 3.6e6,
    serverEnergyKwh: Object.fromEntries(cluster.servers.map((s) => [s.spec.name, s.energyJ / 3.6e6])),
    overloadShare: groupSeconds ? cluster.groups.reduce((a, g) => a + g.overloadSeconds, 0) / groupSeconds : 0,
    unservedCpuSeconds: cluster.unservedCpuSeconds,
    powerOns: cluster.powerOns,
    powerCyclesPerServerDay: cluster.powerOns / servers.length / (rounds * roundSeconds / 86_400),
    creations: cluster.creations,
    removals: cluster.removals,
    migrations: cluster.migrations,
    timeline: {
      watts: servers.map((s, i) => ({ server: s.name, points: thin(wattsSeries[i]!, max) })),
      total: thin(total, max),
      instances: series.map((name, i) => ({ group: name, points: thin(instances[i]!, max) })),
    },
    refused: cluster.refused,
  };
}

/** A server as placement (policy/placement.ts) sees it. */
export function serverLoad(s: ServerView): ServerLoad {
  return { server: s.spec.name, cpus: s.spec.cores, memoryMib: s.spec.memoryMib, reservedMemoryMib: s.spec.reservedMemoryMib, committedMemoryMib: s.committedMemoryMib, committedVcpus: s.committedVcpus, cpu: s.power === 'on' ? s.cpu : null };
}
