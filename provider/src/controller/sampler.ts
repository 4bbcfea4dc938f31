// What the controller measures each round, the paper's way: each member's CPU from the
// hypervisor's CPU-time counter (it works whatever the guest runs, and when the guest is too
// swamped to answer), the group's mean over its members (policy/scaling.ts groupUtilization: a
// member on a saturated server counts at least at the high mark), and each server's load (its guests'
// work over its CPUs). Readings go into the store, where the passes read them.
import { readGuestCpu, type GuestCpuReading, type HostCpuReading } from '../drivers/meters.ts';
import type { HostSession } from '../host/session.ts';
import { guestUtilization, serverUtilization, type CpuSample } from '../policy/cpu.ts';
import { groupUtilization, type MemberCpu } from '../policy/scaling.ts';
import { deploymentsOf, GROUP_CPU } from './group-pass.ts';

/** How many members a group holds at each round (the instances line of the timeline). */
export const MEMBERS = 'members';
import type { ControllerStore, GroupRecord, SampleRecord } from './store.ts';

/** The metric of a member's and a server's own CPU (0..1). */
export const CPU = 'cpu';

/** A server's CPU as last sampled within `freshMs` of `now`, or null: older says nothing of now. */
export async function freshServerCpu(store: ControllerStore, server: string, now: number, freshMs: number): Promise<number | null> {
  return (await store.samples(server, CPU, now - freshMs, now)).at(-1)?.value ?? null;
}

/** CPU time a member (and its group) used since the previous round, in CPU-seconds: the accounting. */
export const CPU_SECONDS = 'cpu_seconds';
/** The same, summed over a group's members (its own metric, so a removed group's rows stay a group's). */
export const GROUP_CPU_SECONDS = 'group_cpu_seconds';

/**
 * Remembers each guest's last counter between rounds, in memory: a restarted controller's first
 * round only sets the baseline (a rate needs two readings), which costs one interval.
 */
export class CpuSampler {
  private readonly last = new Map<string, CpuSample>();
  private readonly cpus = new Map<string, number>();

  /** Reads every server the groups stand on once, and records members', groups' and servers' CPU. */
  async sampleRound(store: ControllerStore, session: HostSession, groups: readonly GroupRecord[], now: number): Promise<SampleRecord[]> {
    const servers = new Map<string, { name: string; uri: string }>();
    for (const g of groups) for (const ref of deploymentsOf(g)) servers.set(ref.server.uri, ref.server);
    const readings = new Map<string, HostCpuReading>();
    await Promise.all([...servers.values()].map(async (s) => {
      // A server that does not answer has no sample this round; the passes see it as silence.
      const r = await readGuestCpu(s.uri).catch(() => null);
      if (r) readings.set(s.uri, r);
    }));
    const utilization = new Map<string, { value: number; vcpus: number; cpuSeconds: number }>();
    for (const r of readings.values()) {
      for (const g of r.guests) this.rate(r.uri, g, utilization);
      // Guests gone from a host that answered are forgotten: the map never outgrows the hosts.
      const present = new Set(r.guests.map((g) => key(r.uri, g.name)));
      for (const k of this.last.keys()) if (k.startsWith(key(r.uri, '')) && !present.has(k)) this.last.delete(k);
    }
    const samples: SampleRecord[] = [];
    const serverCpu = new Map<string, number>();
    for (const [uri, r] of readings) {
      const cpus = await this.hostCpus(session, uri);
      const used = r.guests.map((g) => utilization.get(key(uri, g.name))).filter((u) => u !== undefined).map((u) => u.value * u.vcpus);
      if (cpus === null) continue;
      serverCpu.set(uri, serverUtilization(used, cpus));
      samples.push({ at: now, subject: servers.get(uri)!.name, metric: CPU, value: serverCpu.get(uri)! });
    }
    for (const g of groups) {
      const members = await store.members(g.name);
      const values: MemberCpu[] = [];
      let cpuSeconds = 0;
      for (const m of members) {
        const uri = [...servers.values()].find((s) => m.server.startsWith(`${s.name}@`))?.uri;
        const u = uri === undefined ? undefined : utilization.get(key(uri, m.name));
        if (!u) continue;
        values.push({ cpu: u.value, serverCpu: serverCpu.get(uri!) ?? null });
        cpuSeconds += u.cpuSeconds;
        samples.push({ at: now, subject: m.name, metric: CPU, value: u.value }, { at: now, subject: m.name, metric: CPU_SECONDS, value: u.cpuSeconds });
      }
      // A group scaled on a reported metric keeps its plain CPU mean: its marks are not shares of vCPUs.
      const load = groupUtilization(values, g.metric === GROUP_CPU ? g.policy : { guestCpuHigh: 0, saturatedServerCpu: 1 });
      if (load !== null) {
        samples.push({ at: now, subject: g.name, metric: GROUP_CPU, value: load }, { at: now, subject: g.name, metric: GROUP_CPU_SECONDS, value: cpuSeconds });
      }
      samples.push({ at: now, subject: g.name, metric: MEMBERS, value: members.length });
    }
    await store.recordSamples(samples);
    return samples;
  }

  /**
   * A host's CPU count, read once: a round's session is new each time, and observing a host
   * (several virsh calls) every few seconds for a number that does not change would be waste.
   */
  private async hostCpus(session: HostSession, uri: string): Promise<number | null> {
    let cpus = this.cpus.get(uri);
    if (cpus === undefined) {
      const host = await session.observe(uri).catch(() => null);
      if (!host) return null;
      cpus = host.cpus;
      this.cpus.set(uri, cpus);
    }
    return cpus;
  }

  private rate(uri: string, g: GuestCpuReading, out: Map<string, { value: number; vcpus: number; cpuSeconds: number }>): void {
    const k = key(uri, g.name);
    const prev = this.last.get(k);
    if (g.state !== 'running') {
      this.last.delete(k);
      return;
    }
    const next = { at: g.at, cpuTimeNs: g.cpuTimeNs };
    this.last.set(k, next);
    const value = prev ? guestUtilization(prev, next, g.vcpus) : null;
    if (value !== null && prev) out.set(k, { value, vcpus: g.vcpus, cpuSeconds: Math.max(0, (next.cpuTimeNs - prev.cpuTimeNs) / 1e9) });
  }
}

const key = (uri: string, name: string) => `${uri}\u0000${name}`;
