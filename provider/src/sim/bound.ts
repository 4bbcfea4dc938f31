// The least energy any policy could spend on a trace (the energy evaluation's yardstick): in each
// interval, the fewest servers that carry the whole demand at the target utilization (and hold
// the fixed VMs' memory) are on, the others off; the CPU's dynamic power is what the work costs on any servers (the linear model:
// it depends on the work, not on where it runs); and each server the bound adds must boot first,
// at peak power for its boot time, started just in time (the bound knows the future). It needs
// no instance boots, no cooldowns and no hysteresis, so no real policy reaches it.
import type { ServerSpec } from './servers.ts';
import type { LoadTrace } from './traces.ts';

export interface LowerBound {
  energyKwh: number;
  /** Servers on, per trace sample. */
  serversOn: number[];
  boots: number;
}

/**
 * The bound for `trace` on `servers` (of one spec: the first's is used for all), each carrying at
 * most `target` of its cores; at least `minOn` servers are on throughout (the policies' minimum).
 */
export function lowerBound(trace: LoadTrace, servers: readonly ServerSpec[], target = 0.9, minOn = 1): LowerBound {
  const spec = servers[0];
  if (!spec) throw new Error('lowerBound: no servers');
  const samples = Math.max(...trace.workloads.map((w) => w.demand.length));
  const demandAt = (i: number) => trace.workloads.reduce((a, w) => a + (w.kind === 'group' ? w.demand[i] ?? 0 : (w.demand[i] ?? 0) * w.vcpus), 0);
  // Fixed VMs hold their memory all day: that many servers at least, whatever the CPU says.
  const vmMemory = trace.workloads.filter((w) => w.kind === 'vm').reduce((a, w) => a + w.memoryMib, 0);
  const forMemory = Math.ceil(vmMemory / (spec.memoryMib - spec.reservedMemoryMib) - 1e-9);
  const serversOn: number[] = [];
  let joules = 0;
  let boots = 0;
  let before = Math.max(minOn, forMemory);
  for (let i = 0; i < samples; i++) {
    const demand = demandAt(i);
    const n = Math.min(servers.length, Math.max(minOn, forMemory, Math.ceil(demand / (spec.cores * target) - 1e-9)));
    serversOn.push(n);
    const dynamic = (spec.peakWatts - spec.idleWatts) * Math.min(demand / spec.cores, n);
    joules += (n * spec.idleWatts + dynamic + (servers.length - n) * spec.offWatts) * trace.stepSeconds;
    if (n > before) {
      // A boot draws peak instead of off for its duration, ahead of the interval that needs it.
      joules += (n - before) * (spec.peakWatts - spec.offWatts) * spec.bootSeconds;
      boots += n - before;
    }
    before = n;
  }
  return { energyKwh: joules / 3.6e6, serversOn, boots };
}
