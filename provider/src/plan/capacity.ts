// Memory, vCPUs and instance disks per server, before and after the apply, and whether the
// result fits. The counting is the provider's own (policy/load.ts, policy/placement.ts: storm's
// instances hold their memory even when stopped, the reserve is never given); so is the guess
// of where an instance without a server goes: placement's rule, one instance at a time in
// address order, each seeing the ones before it.
//
// A plan knows only the instances of its own configuration: domains made by another
// configuration or by the controller's scaling groups are not in it, so the free memory shown
// is an upper bound. The summary says so.
import { committedLoad, type ObservedDomain } from '../policy/load.ts';
import { freeMemoryMib, overCommittedMib, place, type ServerLoad } from '../policy/placement.ts';
import { HOST_RESERVE_MIB, bytesToMib } from '../rules.ts';
import { afterNumber, afterString, beforeNumber, compareAddresses, finalValues, referencedChanges, type Change, type PlanChanges } from './changes.ts';
import { serverBefore, type Capacity, type Landing, type ServerFacts } from './servers.ts';
import type { CapacityDelta, Fit } from './types.ts';

/** Where an instance without a server goes: a server, nowhere (why), or not known (why). */
export type Prediction = { server: string } | { unfit: string } | { unknown: string };

interface Guest {
  address: string;
  memoryMib: number | null;
  vcpus: number | null;
  diskMib: number | null;
  state: ObservedDomain['state'];
  /** Made, replaced, or given more memory or vCPUs by this apply: it must find room. */
  needsRoom: boolean;
}

export interface CapacityResult {
  byServer: Map<string, Omit<CapacityDelta, 'newLayerBytes'>>;
  /** Where placement is expected to put instances without a server; an entry per such instance. */
  predicted: Map<string, Prediction>;
  /** Running instances on servers this plan powers off. */
  powerConflicts: Map<string, string[]>;
}

const STATES = new Set(['running', 'paused', 'shutoff']);
const stateOf = (v: unknown): ObservedDomain['state'] => (typeof v === 'string' && STATES.has(v) ? (v as ObservedDomain['state']) : 'running');

/** Finds resources by the id other resources refer to them with. */
function byId(changes: PlanChanges): Map<string, Change> {
  const ids = new Map<string, Change>();
  for (const c of changes.all) {
    const before = c.before?.id;
    if (typeof before === 'string') ids.set(before, c);
  }
  for (const c of changes.all) {
    const id = finalValues(c) ? afterString(c, 'id') : { known: false as const };
    if (id.known && id.value) ids.set(id.value, c);
  }
  return ids;
}

/**
 * An instance's hardware when its own is left to its appliance (known only at create): the
 * appliance's, found through the deployments it names, on `server` when that is decided.
 */
function applianceHardware(changes: PlanChanges, ids: Map<string, Change>, landingOf: (c: Change) => Landing, inst: Change, server: string | null): { memoryMib: number | null; vcpus: number | null; diskMib: number | null } {
  const named = Array.isArray(inst.after?.deployments) ? inst.after.deployments : [];
  let deployments = named.flatMap((d) => (typeof d === 'string' && ids.get(d) ? [ids.get(d)!] : []));
  if (deployments.length < named.length || !named.length) deployments = [...deployments, ...referencedChanges(changes, inst, 'deployments')];
  if (server) {
    const here = deployments.filter((d) => {
      const l = landingOf(d);
      return l.kind === 'server' && l.id === server;
    });
    if (here.length) deployments = here;
  }
  const appliances = new Map<string, Change>();
  for (const d of deployments) {
    const app = afterString(d, 'appliance');
    const found = app.known && app.value ? ids.get(app.value) : undefined;
    for (const a of found ? [found] : referencedChanges(changes, d, 'appliance')) appliances.set(a.address, a);
  }
  const values = [...appliances.values()].map((a) => {
    const m = afterNumber(a, 'memory_mib');
    const v = afterNumber(a, 'vcpus');
    const size = afterNumber(a, 'size_bytes');
    return { memoryMib: m.known ? m.value : null, vcpus: v.known ? v.value : null, diskMib: size.known && size.value !== null ? bytesToMib(size.value) : null };
  });
  // Deployments on several servers normally stand on the same appliance; if not, the largest
  // is the one that must fit.
  const most = (k: 'memoryMib' | 'vcpus' | 'diskMib'): number | null => (values.length && values.every((x) => x[k] !== null) ? Math.max(...values.map((x) => x[k]!)) : null);
  return { memoryMib: most('memoryMib'), vcpus: most('vcpus'), diskMib: most('diskMib') };
}

const knownNumber = (c: Change, k: string): number | null => {
  const p = afterNumber(c, k);
  return p.known ? p.value : null;
};

export function planCapacity(changes: PlanChanges, landings: ReadonlyMap<string, Landing>, servers: ReadonlyMap<string, ServerFacts>): CapacityResult {
  const ids = byId(changes);
  const landingOf = (c: Change): Landing => landings.get(c.address) ?? { kind: 'unknown' };
  const before = new Map<string, Guest[]>();
  const after = new Map<string, Guest[]>();
  const add = (m: Map<string, Guest[]>, server: string, g: Guest) => m.set(server, [...(m.get(server) ?? []), g]);
  const unplaced: { guest: Guest; candidates: string[] }[] = [];

  for (const c of changes.all.filter((x) => x.type === 'storm_instance')) {
    const was = serverBefore(c);
    const old: Guest | null = c.before
      ? { address: c.address, memoryMib: beforeNumber(c, 'memory_mib'), vcpus: beforeNumber(c, 'vcpus'), diskMib: beforeNumber(c, 'disk_size_mib'), state: stateOf(c.before.state), needsRoom: false }
      : null;
    if (was && old) add(before, was, old);
    // Forgotten by Terraform, still on the host; and a create_before_destroy replacement runs
    // beside its successor until the apply ends.
    if (was && old && (c.action === 'forget' || (c.action === 'replace' && c.createFirst))) add(after, was, old);
    if (!finalValues(c)) continue;
    const landing = landingOf(c);
    const server = landing.kind === 'server' ? landing.id : null;
    const fallback = knownNumber(c, 'memory_mib') === null || knownNumber(c, 'vcpus') === null || knownNumber(c, 'disk_size_mib') === null ? applianceHardware(changes, ids, landingOf, c, server) : null;
    const memoryMib = knownNumber(c, 'memory_mib') ?? fallback?.memoryMib ?? null;
    const vcpus = knownNumber(c, 'vcpus') ?? fallback?.vcpus ?? null;
    const grows = c.action === 'update' && ((memoryMib ?? 0) > (old?.memoryMib ?? 0) || (vcpus ?? 0) > (old?.vcpus ?? 0));
    const guest: Guest = {
      address: c.address,
      memoryMib,
      vcpus,
      diskMib: knownNumber(c, 'disk_size_mib') ?? fallback?.diskMib ?? null,
      state: stateOf(afterString(c, 'state').known ? c.after?.state : old?.state),
      needsRoom: c.action === 'create' || c.action === 'replace' || grows,
    };
    if (server) add(after, server, guest);
    else if (landing.kind === 'placement') unplaced.push({ guest, candidates: landing.candidates });
  }

  const known = (cap: Capacity | null): cap is Capacity & { cpus: number; memoryMib: number } => cap !== null && cap.cpus !== null && cap.memoryMib !== null;
  const label = labels(servers);
  const observe = (id: string, cap: Capacity & { cpus: number; memoryMib: number }, guests: readonly Guest[]): ServerLoad =>
    committedLoad({ server: label(id), cpus: cap.cpus, memoryMib: cap.memoryMib, reservedMemoryMib: cap.reservedMemoryMib, domains: guests.filter(hasHardware).map(domainOf) }, [], 0);

  // Placement at apply, foreseen: only servers that will be on and whose capacity is known.
  const predicted = new Map<string, Prediction>();
  for (const { guest, candidates } of unplaced.sort((a, b) => compareAddresses(a.guest.address, b.guest.address))) {
    if (!hasHardware(guest)) {
      predicted.set(guest.address, { unknown: 'its memory is known only after apply, so where placement puts it is too' });
      continue;
    }
    const open = candidates.flatMap((id) => {
      const cap = servers.get(id)?.after ?? null;
      return known(cap) && cap.power !== 'off' ? [{ id, load: observe(id, cap, after.get(id) ?? []) }] : [];
    });
    if (!open.length && candidates.some((id) => servers.get(id)?.after?.power !== 'off')) {
      predicted.set(guest.address, { unknown: `placement chooses at apply among ${candidates.map(label).join(', ')}, whose capacity is not known yet` });
      continue;
    }
    const decision = open.length ? place({ memoryMib: guest.memoryMib, vcpus: guest.vcpus }, open.map((o) => o.load)) : null;
    const chosen = decision && 'server' in decision ? open.find((o) => o.load.server === decision.server) : undefined;
    if (chosen) {
      predicted.set(guest.address, { server: chosen.id });
      add(after, chosen.id, guest);
      continue;
    }
    // Placement's verdict, with each candidate's reason in this plan's terms.
    const why = candidates.map((id) => {
      const cap = servers.get(id)?.after ?? null;
      const o = open.find((x) => x.id === id);
      if (!o) return cap?.power === 'off' ? `${label(id)} is powered off by this plan` : `${label(id)}: capacity not known yet`;
      if (guest.vcpus > o.load.cpus) return `${label(id)} has ${o.load.cpus} CPUs`;
      return `${label(id)} has ${Math.max(0, freeMemoryMib(o.load))} MiB free`;
    });
    predicted.set(guest.address, { unfit: `no server fits ${guest.memoryMib} MiB and ${guest.vcpus} vCPU${guest.vcpus === 1 ? '' : 's'}: ${why.join('; ')}` });
  }

  const byServer = new Map<string, Omit<CapacityDelta, 'newLayerBytes'>>();
  const powerConflicts = new Map<string, string[]>();
  for (const [id, facts] of servers) {
    const was = before.get(id) ?? [];
    const will = after.get(id) ?? [];
    const cap = facts.after ?? facts.before;
    const sum = (gs: readonly Guest[], k: 'memoryMib' | 'vcpus' | 'diskMib') => gs.reduce((n, g) => n + (g[k] ?? 0), 0);
    const memoryUnknown = will.filter((g) => !hasHardware(g)).map((g) => g.address);
    const diskUnknown = will.filter((g) => g.diskMib === null).map((g) => g.address);
    const fit = fitOf(id, facts, will, label, observe, memoryUnknown);
    if (facts.after?.power === 'off') {
      const running = will.filter((g) => g.state !== 'shutoff').map((g) => g.address);
      if (running.length) powerConflicts.set(id, running);
    }
    const afterLoad = known(facts.after) ? observe(id, facts.after, will) : null;
    byServer.set(id, {
      memoryMib: cap?.memoryMib ?? null,
      reservedMemoryMib: cap?.reservedMemoryMib ?? HOST_RESERVE_MIB,
      cpus: cap?.cpus ?? null,
      committedMemoryBeforeMib: sum(was, 'memoryMib'),
      committedMemoryAfterMib: sum(will, 'memoryMib'),
      freeMemoryAfterMib: afterLoad ? freeMemoryMib(afterLoad) : null,
      committedVcpusBefore: sum(was, 'vcpus'),
      committedVcpusAfter: sum(will, 'vcpus'),
      instanceDiskBeforeMib: sum(was, 'diskMib'),
      instanceDiskAfterMib: sum(will, 'diskMib'),
      memoryUnknown,
      diskUnknown,
      fit,
    });
  }
  return { byServer, predicted, powerConflicts };
}

type WithHardware = Guest & { memoryMib: number; vcpus: number };
const hasHardware = (g: Guest): g is WithHardware => g.memoryMib !== null && g.vcpus !== null;
// Every instance in a plan is storm's: stopped ones hold their memory too.
const domainOf = (g: WithHardware): ObservedDomain => ({ name: g.address, state: g.state, storm: true, memoryMib: g.memoryMib, vcpus: g.vcpus });

function fitOf(
  id: string,
  facts: ServerFacts,
  will: readonly Guest[],
  label: (id: string) => string,
  observe: (id: string, cap: Capacity & { cpus: number; memoryMib: number }, guests: readonly Guest[]) => ServerLoad,
  memoryUnknown: readonly string[],
): Fit {
  const cap = facts.after;
  if (!cap) return { verdict: 'fits', problems: [] };
  if (cap.cpus === null || cap.memoryMib === null) {
    if (!will.length) return { verdict: 'fits', problems: [] };
    const why = facts.change?.action === 'create' ? 'a new server: its capacity is read when it is first on' : cap.power === 'off' ? 'it has never been seen powered on' : 'its capacity is known only after apply';
    return { verdict: 'unknown', problems: [`${label(id)}: ${why}`] };
  }
  const sized = { ...cap, cpus: cap.cpus, memoryMib: cap.memoryMib };
  const problems: string[] = [];
  const load = observe(id, sized, will);
  const over = overCommittedMib(load);
  if (over > 0) {
    problems.push(`${label(id)} would be ${over} MiB over: ${load.committedMemoryMib} MiB committed, ${load.memoryMib} MiB of memory, ${load.reservedMemoryMib} MiB of it reserved for the host`);
  }
  for (const g of will.filter((x) => x.needsRoom && hasHardware(x))) {
    const others = observe(id, sized, will.filter((x) => x !== g));
    const needs = { memoryMib: g.memoryMib!, vcpus: g.vcpus! };
    if ('server' in place(needs, [others])) continue;
    const free = freeMemoryMib(others);
    problems.push(
      needs.memoryMib > free
        ? `${g.address} needs ${needs.memoryMib} MiB; ${label(id)} has ${Math.max(0, free)} MiB free beside the rest, so the apply refuses it`
        : `${g.address} has ${needs.vcpus} vCPUs; ${label(id)} has ${others.cpus} CPUs`,
    );
  }
  if (problems.length) return { verdict: 'does-not-fit', problems };
  if (memoryUnknown.length) return { verdict: 'unknown', problems: [`${label(id)}: the memory of ${memoryUnknown.join(', ')} is known only after apply`] };
  return { verdict: 'fits', problems: [] };
}

/** Servers by name when names are unique in the plan (they are, unless two hosts share one). */
export function labels(servers: ReadonlyMap<string, ServerFacts>): (id: string) => string {
  const names = new Map<string, number>();
  for (const s of servers.values()) names.set(s.name, (names.get(s.name) ?? 0) + 1);
  return (id) => {
    const s = servers.get(id);
    return s && names.get(s.name) === 1 ? s.name : id;
  };
}
