// What the status page shows, gathered from the store and from the power passes' last
// observation of each server (the page itself never asks a BMC or libvirt: a slow BMC must not
// slow the page, nor the page the BMC).
import { scaleInTargetOf } from '../policy/scaling.ts';
import { deploymentsOf, groupLoad } from './group-pass.ts';
import { CANNOT_POWER, WATTS, type ObservedServer, type PowerPassResult } from './power-pass.ts';
import { CPU, MEMBERS } from './sampler.ts';
import { renderStatusPage, renderTimelineSvg, type StatusSnapshot } from './status-page.ts';
import type { TimelineSpan } from './api.ts';
import type { ControllerStore } from './store.ts';

/** The timeline's span, like the paper's Figure 5 (an experiment of some minutes). */
const TIMELINE_MS = 30 * 60_000;


export class StatusBoard {
  leader = false;
  private readonly servers = new Map<string, ObservedServer>();
  private readonly notes = new Map<string, string>();

  constructor(private readonly store: ControllerStore, private readonly controller: { id: string; intervalSeconds: number }) {}

  /** Keeps a power pass's view of its servers and, when it could not act, why. */
  observed(group: string, result: PowerPassResult): void {
    for (const s of result.servers) this.servers.set(s.id, s);
    if (result.decision.action === 'none' && CANNOT_POWER.test(result.decision.reason)) this.notes.set(group, `${group}: ${result.decision.reason}`);
    else this.notes.delete(group);
  }

  /** What the page shows at `now`; the timeline over `span` (default: the last 30 min, at least 2). */
  async snapshot(now: number, span: TimelineSpan = {}): Promise<StatusSnapshot> {
    const fresh = now - 3 * this.controller.intervalSeconds * 1000;
    const latest = async (subject: string, metric: string) => (await this.store.samples(subject, metric, fresh, now)).at(-1)?.value ?? null;
    const groups = await this.store.groups();
    const serverIds = new Map<string, { id: string; name: string }>();
    for (const s of await this.store.servers()) serverIds.set(s.id, s);
    for (const g of groups) for (const d of deploymentsOf(g)) serverIds.set(d.serverId, { id: d.serverId, name: d.server.name });
    const servers = await Promise.all([...serverIds.values()].map(async (s) => {
      const seen = this.servers.get(s.id);
      return {
        id: s.id, name: s.name,
        power: seen ? (seen.power === 'stopping' ? 'off' as const : seen.power) : 'unknown' as const,
        watts: seen?.watts ?? await latest(s.name, WATTS),
        cpu: await latest(s.name, CPU),
        bmc: seen?.bmc ?? 'none' as const,
        domains: seen?.domains ?? null,
      };
    }));
    const decisions = await this.store.decisions({ limit: 200 });
    const to = Math.min(span.to ?? now, now);
    const since = span.from ?? to - TIMELINE_MS;
    const watts = await Promise.all([...serverIds.values()].map(async (s) => ({ server: s.name, points: (await this.store.samples(s.name, WATTS, since, to)).map((p) => ({ at: p.at, value: p.value })) })));
    const instances = await Promise.all(groups.map(async (g) => ({ group: g.name, points: (await this.store.samples(g.name, MEMBERS, since, to)).map((p) => ({ at: p.at, value: p.value })) })));
    // A young controller's few minutes fill the chart rather than its right edge (at least 2 min);
    // a span asked for is drawn as asked.
    const first = Math.min(...[...watts.map((w) => w.points), ...instances.map((i) => i.points)].flat().map((p) => p.at), to);
    const from = span.from ?? Math.max(since, Math.min(first, to - 2 * 60_000));
    return {
      now,
      controller: { ...this.controller, leader: this.leader },
      servers,
      groups: await Promise.all(groups.map(async (g) => {
        const members = await this.store.members(g.name);
        const cpus = await Promise.all(members.map((m) => latest(m.name, CPU)));
        const load = (await groupLoad(this.store, g, members, fresh, now)).at(-1)?.utilization ?? null;
        return {
          name: g.name, metric: g.metric, min: g.policy.min, max: g.policy.max, dnsName: g.dnsName, load,
          high: g.policy.guestCpuHigh, low: g.policy.guestCpuLow, shrinkTo: scaleInTargetOf(g.policy) * g.policy.guestCpuHigh, deleting: g.deleting,
          members: members.map((m, i) => ({ name: m.name, server: m.server.split('@')[0]!, cpu: cpus[i]!, ready: cpus[i] !== null })),
          decisions: decisions.filter((d) => d.kind === 'scale' && d.subject === g.name).slice(0, 8),
        };
      })),
      power: { note: [...this.notes.values()].join('; ') || null, decisions: decisions.filter((d) => d.kind === 'power').slice(0, 10) },
      timeline: { from, to, watts, instances },
    };
  }

  async page(now: number): Promise<string> {
    return renderStatusPage(await this.snapshot(now));
  }

  async timeline(now: number, span: TimelineSpan = {}): Promise<string> {
    return renderTimelineSvg((await this.snapshot(now, span)).timeline);
  }
}
