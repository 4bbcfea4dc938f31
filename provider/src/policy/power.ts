// When a server is powered on or off: the paper's rule (the powered hosts at 90 % of their CPU
// → power on another blade over IPMI) and its energy goal (idle blades off), with the guards
// operators of DPM and ProxLB rely on: a minimum of servers kept on, a hold time before an empty
// server goes off, a bound on power changes at once, and never switching off a server storm
// could not switch on again. Pure: the controller and the simulator call it alike.

export interface PowerPolicy {
  /** Power on another server when every powered one is at least this busy (the paper's 0.9). */
  hostCpuHigh: number;
  /** Servers kept on whatever the load. */
  minServersOn: number;
  /** How long (s) a server must have been empty before it is switched off. */
  emptyHoldSeconds: number;
  /** Power changes in flight at once (booting or stopping servers count). */
  maxConcurrentChanges: number;
  /** Boot lead time assumed (s) for a server with no power-on history. */
  defaultBootSeconds: number;
}

export const DEFAULT_POWER: PowerPolicy = {
  hostCpuHigh: 0.9,
  minServersOn: 1,
  emptyHoldSeconds: 600,
  maxConcurrentChanges: 1,
  defaultBootSeconds: 120,
};

export interface ServerPowerView {
  server: string;
  power: 'on' | 'off' | 'booting' | 'stopping';
  /** storm can change its power: it has a BMC that answers. */
  canPower: boolean;
  /** Host CPU utilization 0..1 (null when not measured, e.g. off). */
  cpu: number | null;
  /**
   * Its highest CPU over the last hold time (0..1), null when not measured: what "busy" means
   * for powering another server off, so a server hovering at the mark does not switch its
   * neighbour off and on again with every sample (seen: 81 %, 91 %, 79 % → on, off, on).
   */
  cpuPeak?: number | null;
  /** Epoch ms since which it holds no domain; null when it holds some. */
  emptySince: number | null;
  /** Seconds its past power-ons took until libvirt answered, oldest first. */
  bootHistorySeconds: readonly number[];
}

export interface PowerObservation {
  servers: readonly ServerPowerView[];
  /** An instance waiting for room that no powered server has (a scale-out that found none). */
  unplaced: string | null;
  /**
   * Why the servers' guests still want room, e.g. "web's load is at or above 30 %, where it may grow again"; while set, no
   * server is powered off (it would be wanted again: the on/off churn autoscalers are blamed for).
   */
  demand?: string | null;
  now: number;
}

export type PowerDecision =
  | { action: 'none'; reason: string }
  | { action: 'on' | 'off'; server: string; reason: string };

const pct = (x: number) => `${Math.round(x * 100)} %`;

/**
 * A server's empty-since after one observation: started when it is seen running nothing, kept
 * while it stays so, dropped when it runs something or is seen off (powered on again, by anyone,
 * its hold starts then), unchanged when its guests could not be counted (`domains` null).
 */
export function emptySinceAfter(before: number | null, power: ServerPowerView['power'], domains: number | null, now: number): number | null {
  if (domains === 0) return before ?? now;
  if (domains !== null || power === 'off') return null;
  return before;
}

/**
 * Why a group's servers are still wanted (PowerObservation.demand): its load at or above `mark`
 * (policy/scaling.ts demandMark: the low mark, or the high mark under proportional scale-in) may
 * grow again soon, so no empty server of it goes off; nor while it has members whose load was
 * not measured lately (a round that could not sample, or came late): nothing is switched off
 * blind (seen: a busy blade's neighbour powered off and on again within 4 s). Said without the
 * live number, so a log hears it once. `unit` says the mark in the group's metric.
 */
export function groupDemand(group: string, load: number | null, mark: number, members: number, unit: (x: number) => string = pct): string | null {
  if (load === null) return members > 0 ? `${group}'s load was not measured lately` : null;
  return load >= mark ? `${group}'s load is at or above ${unit(mark)}, where it may grow again` : null;
}

/** A server's boot lead time: the median of its recent power-ons (the last 5), else the default. */
export function bootLeadSeconds(history: readonly number[], fallback: number): number {
  const recent = [...history.slice(-5)].sort((a, b) => a - b);
  if (!recent.length) return fallback;
  const mid = Math.floor(recent.length / 2);
  return recent.length % 2 ? recent[mid]! : (recent[mid - 1]! + recent[mid]!) / 2;
}

export function decidePower(p: PowerPolicy, o: PowerObservation): PowerDecision {
  const inFlight = o.servers.filter((s) => s.power === 'booting' || s.power === 'stopping');
  const on = o.servers.filter((s) => s.power === 'on' || s.power === 'booting');
  const off = o.servers.filter((s) => s.power === 'off' && s.canPower);
  if (inFlight.length >= p.maxConcurrentChanges) {
    return { action: 'none', reason: `${inFlight.map((s) => `${s.server} ${s.power}`).join(', ')}: at most ${p.maxConcurrentChanges} power change(s) at once` };
  }
  // The fastest to boot first: it relieves the load soonest.
  const nextOn = () => [...off].sort((a, b) => bootLeadSeconds(a.bootHistorySeconds, p.defaultBootSeconds) - bootLeadSeconds(b.bootHistorySeconds, p.defaultBootSeconds) || a.server.localeCompare(b.server))[0];
  const powerOn = (why: string): PowerDecision => {
    const s = nextOn();
    if (!s) {
      const silent = o.servers.filter((x) => x.power === 'off' && !x.canPower).map((x) => x.server);
      return { action: 'none', reason: `${why}, but no server is left to power on${silent.length ? ` (${silent.join(', ')}: BMC not answering)` : ''}` };
    }
    return { action: 'on', server: s.server, reason: `${why} → power on ${s.server} (boots in ~${Math.round(bootLeadSeconds(s.bootHistorySeconds, p.defaultBootSeconds))} s)` };
  };
  if (on.length < p.minServersOn) return powerOn(`${on.length} server(s) on < min ${p.minServersOn}`);
  if (o.unplaced) return powerOn(`${o.unplaced} fits on no powered server`);
  const powered = o.servers.filter((s) => s.power === 'on');
  const busy = powered.filter((s) => s.cpu !== null && s.cpu >= p.hostCpuHigh);
  // Booting servers will take load soon: they count as room, so no second power-on follows.
  if (powered.length && busy.length === powered.length && !on.some((s) => s.power === 'booting')) {
    return powerOn(`every powered server ≥ ${pct(p.hostCpuHigh)} (${busy.map((s) => `${s.server} ${pct(s.cpu!)}`).join(', ')})`);
  }
  // Off only what storm can power on again, only beyond the minimum, only after the hold, and
  // never while the others are or lately were busy (it would be needed again at once).
  const holdMs = p.emptyHoldSeconds * 1000;
  const idle = powered
    .filter((s) => s.canPower && s.emptySince !== null && o.now - s.emptySince >= holdMs)
    .sort((a, b) => a.emptySince! - b.emptySince! || a.server.localeCompare(b.server));
  if (idle.length && powered.length > p.minServersOn && o.demand) {
    return { action: 'none', reason: `${idle[0]!.server} is empty but kept on: ${o.demand}` };
  }
  if (idle.length && powered.length > p.minServersOn) {
    const rest = powered.filter((s) => s !== idle[0]);
    const busy = (s: ServerPowerView) => (s.cpuPeak ?? s.cpu) !== null && (s.cpuPeak ?? s.cpu)! >= p.hostCpuHigh;
    // Another server stays on (an empty `rest` is no reason: min_servers_on = 0 behaves as 1), and none of the others is busy.
    if (rest.length && rest.every((s) => !busy(s))) {
      const s = idle[0]!;
      return { action: 'off', server: s.server, reason: `${s.server} empty for ${Math.round((o.now - s.emptySince!) / 1000)} s ≥ ${p.emptyHoldSeconds} s → power off` };
    }
  }
  return { action: 'none', reason: 'power as it should be' };
}
