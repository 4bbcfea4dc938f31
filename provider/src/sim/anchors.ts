// The anchors' host power policies, as the simulator compares them with storm's (facts from
// their documentation: docs in the design notes). Groups scale as storm's do in both: what
// differs is where members go and when servers are switched.
//  - A DPM-like band (vSphere DPM with DRS): keep powered hosts' utilization within 45–81 %
//    (63 % ± 18 %); power one on when a host's demand over the last 5 min is above the band;
//    when every host's demand over the last 40 min is below it and the others can carry the
//    least-loaded host's guests within the band, live-migrate them away and power it off.
//  - A consolidating autoscaler (Karpenter-like): members placed by their vCPU requests on the
//    fullest server they fit (pack); a server powered on when a member fits nowhere; a server
//    whose members all fit elsewhere (empty or under-utilized) is disrupted after
//    `consolidateAfter`: its members are replaced elsewhere (new instances, then the old removed
//    once the new are ready) and it is powered off.
import { place } from '../policy/placement.ts';
import { serverLoad, type ClusterControl, type ClusterPolicy, type ClusterView, type ServerView } from './engine.ts';
import { groupSampleOf, scaleGroups, scalingOf, type GroupBounds } from './policies.ts';

/** vCPUs per core a consolidating autoscaler packs fixed VMs at (their requests, not their use). */
const VM_OVERCOMMIT = 4;

const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
const meanCpu = (s: ServerView, sinceMs: number) => mean(s.cpuHistory.filter((x) => x.at >= sinceMs).map((x) => x.utilization));
/** Whether a server has been on for the whole window (its history covers it). */
const onFor = (s: ServerView, sinceMs: number) => s.power === 'on' && s.cpuHistory.length > 0 && s.cpuHistory[0]!.at <= sinceMs;

export interface DpmOptions extends GroupBounds {
  /** The band; default 0.45–0.81 (DPM's 63 % ± 18 %). */
  low?: number;
  high?: number;
  /** Power-on judged over this long, s; default 300. */
  onWindowSeconds?: number;
  /** Power-off judged over this long, s; default 2400. */
  offWindowSeconds?: number;
}

export function dpmBandPolicy(options: DpmOptions = {}): ClusterPolicy {
  const scaling = scalingOf(options);
  const low = options.low ?? 0.45;
  const high = options.high ?? 0.81;
  const onMs = (options.onWindowSeconds ?? 300) * 1000;
  const offMs = (options.offWindowSeconds ?? 2400) * 1000;
  return {
    name: 'dpm-band',
    description: `a DPM-like band: hosts kept within ${low * 100}–${high * 100} % (on over ${onMs / 60_000} min, off over ${offMs / 60_000} min, guests live-migrated off)`,
    initialPower: (_s, i) => (i === 0 ? 'on' : 'off'),
    groupSample: groupSampleOf(scaling),
    round(control) {
      const unplaced = scaleGroups(control, scaling, 'spread', true);
      const v = control.view();
      if (v.servers.some((s) => s.power === 'booting' || s.power === 'stopping')) return;
      const powered = v.servers.filter((s) => s.power === 'on');
      const off = v.servers.filter((s) => s.power === 'off');
      const hot = powered.some((s) => onFor(s, control.now - onMs) && meanCpu(s, control.now - onMs) > high);
      if ((hot || [...unplaced.values()].some(Boolean)) && off[0]) {
        control.act({ kind: 'power', server: off[0].spec.name, to: 'on' });
        return;
      }
      if (powered.length < 2 || !powered.every((s) => onFor(s, control.now - offMs) && meanCpu(s, control.now - offMs) < low)) return;
      const victim = [...powered].sort((a, b) => meanCpu(a, control.now - offMs) - meanCpu(b, control.now - offMs))[0]!;
      const rest = powered.filter((s) => s !== victim);
      const restCores = rest.reduce((a, s) => a + s.spec.cores, 0);
      const load = powered.reduce((a, s) => a + meanCpu(s, control.now - offMs) * s.spec.cores, 0);
      if (load / restCores >= high) return;
      if (!evacuate(control, victim, rest.map((s) => s.spec.name))) return;
      control.act({ kind: 'power', server: victim.spec.name, to: 'off' });
    },
  };
}

/** Live-migrates every instance of `from` onto `to` (spread by placement); false if one fits nowhere. */
function evacuate(control: ClusterControl, from: ServerView, to: string[]): boolean {
  const members = control.view().groups.flatMap((g) => g.members.filter((m) => m.server === from.spec.name).map((m) => ({ m, g })));
  for (const { m, g } of members) {
    const candidates = control.view().servers.filter((s) => to.includes(s.spec.name) && s.power === 'on').map(serverLoad);
    const where = place({ memoryMib: g.memoryMib, vcpus: g.vcpus }, candidates, 'spread');
    if ('error' in where) return false;
    control.act({ kind: 'migrate', instance: m.name, to: where.server });
  }
  return true;
}

export interface ConsolidatingOptions extends GroupBounds {
  /** How long a server must be disruptable before it is consolidated, s; default 30. */
  consolidateAfterSeconds?: number;
}

export function consolidatingPolicy(options: ConsolidatingOptions = {}): ClusterPolicy {
  const scaling = scalingOf(options);
  const afterMs = (options.consolidateAfterSeconds ?? 30) * 1000;
  /** Server → since when all its members would fit elsewhere. */
  const disruptable = new Map<string, number>();
  /** Old member → its replacement, removed once the replacement is ready. */
  const replacing = new Map<string, string>();
  /**
   * Members fit by their vCPU requests, as a Kubernetes scheduler fits pods, not by measured use:
   * a scaling group's members at one core each (they run busy); fixed VMs overcommitted 4:1, as
   * operators size mostly idle VMs' requests.
   */
  const fits = (s: ServerView, vcpus: number, ratio: number) => s.power === 'on' && s.committedVcpus + vcpus <= s.spec.cores * ratio;
  const packedPlace = (v: ClusterView, group: string, exclude: string[] = []): string | null => {
    const g = v.groups.find((x) => x.name === group)!;
    const candidates = v.servers.filter((s) => !exclude.includes(s.spec.name) && fits(s, g.vcpus, g.kind === 'vm' ? VM_OVERCOMMIT : 1)).map(serverLoad);
    const where = candidates.length ? place({ memoryMib: g.memoryMib, vcpus: g.vcpus }, candidates, 'consolidate') : { error: 'none' };
    return 'error' in where ? null : where.server;
  };
  return {
    name: 'consolidating',
    description: `a consolidating autoscaler (Karpenter-like): pack by vCPU requests, a server on for a member that fits nowhere, servers whose members fit elsewhere consolidated after ${afterMs / 1000} s`,
    initialPower: (_s, i) => (i === 0 ? 'on' : 'off'),
    groupSample: groupSampleOf(scaling),
    round(control) {
      // Replacements that are ready take over: the old member goes.
      for (const [old, fresh] of [...replacing]) {
        const members = control.view().groups.flatMap((g) => g.members);
        const f = members.find((m) => m.name === fresh);
        if (!f) { replacing.delete(old); continue; }
        if (f.ready) {
          control.act({ kind: 'remove', instance: old, replacement: true });
          replacing.delete(old);
        }
      }
      // Scaling as storm's, placement by requests, packed: a member that fits nowhere asks for a server.
      let wantsServer = false;
      const packing: ClusterControl = {
        get now() { return control.now; },
        view: () => control.view(),
        act: (a) => {
          if (a.kind !== 'create') return control.act(a);
          const server = packedPlace(control.view(), a.group);
          if (!server) {
            wantsServer = true;
            return { ok: false, error: 'fits nowhere' };
          }
          return control.act({ ...a, server });
        },
      };
      const unplaced = scaleGroups(packing, scaling, 'consolidate', true);
      if ([...unplaced.values()].some(Boolean)) wantsServer = true;
      const v = control.view();
      const changing = v.servers.some((s) => s.power === 'booting' || s.power === 'stopping');
      const off = v.servers.filter((s) => s.power === 'off');
      if (wantsServer && !changing && off[0]) {
        control.act({ kind: 'power', server: off[0].spec.name, to: 'on' });
        return;
      }
      if (replacing.size || changing) return;
      // Consolidation: the least-committed server whose members all fit on the others by request.
      const powered = v.servers.filter((s) => s.power === 'on');
      for (const s of powered) {
        const others = powered.filter((o) => o !== s);
        const room = others.reduce((a, o) => a + Math.max(0, o.spec.cores * (v.groups.some((g) => g.kind === 'vm') ? VM_OVERCOMMIT : 1) - o.committedVcpus), 0);
        const can = others.length > 0 && s.committedVcpus <= room;
        if (!can) disruptable.delete(s.spec.name);
        else if (!disruptable.has(s.spec.name)) disruptable.set(s.spec.name, control.now);
      }
      const victim = powered
        .filter((s) => (disruptable.get(s.spec.name) ?? Infinity) <= control.now - afterMs)
        .sort((a, b) => a.committedVcpus - b.committedVcpus || a.spec.name.localeCompare(b.spec.name))[0];
      if (!victim) return;
      if (victim.instances === 0) {
        control.act({ kind: 'power', server: victim.spec.name, to: 'off' });
        disruptable.delete(victim.spec.name);
        return;
      }
      for (const g of v.groups) {
        for (const m of g.members.filter((x) => x.server === victim.spec.name)) {
          const server = packedPlace(control.view(), g.name, [victim.spec.name]);
          if (!server) return;
          const made = control.act({ kind: 'create', group: g.name, server, replacement: true });
          if (made.ok && made.instance) replacing.set(m.name, made.instance);
        }
      }
    },
  };
}
