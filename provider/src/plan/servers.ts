// Which appliance server each change lands on. storm's references carry the server in them
// (`NAME@URI` for a server, `VOLUME@NAME@URI` for a layer: host/refs.ts), so a known value
// names its server outright; a value known only after apply (the id of something being made)
// is traced through the configuration to the resource it comes from.
import { HOST_RESERVE_MIB } from '../rules.ts';
import { parseServerId, serverId } from '../host/refs.ts';
import { afterNumber, afterString, beforeString, compareAddresses, finalValues, referencedChanges, type Change, type PlanChanges } from './changes.ts';
import { isObject, type Json } from './plan-json.ts';

/** An appliance server as the plan shows it, before and after. */
export interface ServerFacts {
  id: string;
  name: string;
  uri: string;
  /** Its storm_appliance_server in this configuration; null for a server only referred to by id. */
  change: Change | null;
  before: Capacity | null;
  /** Null when the server goes (destroyed, or forgotten by this configuration). */
  after: Capacity | null;
}

export interface Capacity {
  /** Null: not known (never seen powered on, or known only after apply). */
  cpus: number | null;
  memoryMib: number | null;
  reservedMemoryMib: number;
  power: string | null;
}

/** The server a resource stands on after apply: one, one placement chooses among, or not known. */
export type Landing = { kind: 'server'; id: string } | { kind: 'placement'; candidates: string[] } | { kind: 'unknown' };

/** The server part of a layer reference `VOLUME@NAME@URI`. */
export function serverOfLayerId(id: string): string | null {
  const at = id.indexOf('@');
  return at > 0 && parseServerId(id.slice(at + 1)) ? id.slice(at + 1) : null;
}


function capacityOf(values: { [k: string]: Json } | null, planned: Change | null): Capacity | null {
  if (!values) return null;
  const num = (k: string): number | null => {
    if (planned) {
      const p = afterNumber(planned, k);
      return p.known ? p.value : null;
    }
    const v = values[k];
    return typeof v === 'number' ? v : null;
  };
  const power = values.power;
  return { cpus: num('cpus'), memoryMib: num('memory_mib'), reservedMemoryMib: num('reserved_memory_mib') ?? HOST_RESERVE_MIB, power: typeof power === 'string' ? power : null };
}

function serverIdAfter(c: Change): string | null {
  const id = afterString(c, 'id');
  if (id.known && id.value) return id.value;
  const name = afterString(c, 'name');
  const uri = afterString(c, 'libvirt_uri');
  return name.known && uri.known && name.value && uri.value ? serverId(name.value, uri.value) : null;
}

/** The servers of the plan: every storm_appliance_server, and every server a resource names by id. */
export function planServers(changes: PlanChanges, landings: ReadonlyMap<string, Landing>): Map<string, ServerFacts> {
  const servers = new Map<string, ServerFacts>();
  for (const c of changes.all.filter((x) => x.type === 'storm_appliance_server')) {
    const beforeId = beforeString(c, 'id');
    const afterId = finalValues(c) ? serverIdAfter(c) : null;
    if (beforeId && beforeId === afterId) {
      servers.set(beforeId, { ...named(beforeId), change: c, before: capacityOf(c.before, null), after: capacityOf(c.after, c) });
      continue;
    }
    // A replacement under another name is two servers: the one that goes and the one that comes.
    if (beforeId) servers.set(beforeId, { ...named(beforeId), change: c, before: capacityOf(c.before, null), after: null });
    if (afterId) servers.set(afterId, { ...named(afterId), change: c, before: null, after: capacityOf(c.after, c) });
  }
  const mention = (id: string | null) => {
    if (id && !servers.has(id) && parseServerId(id)) servers.set(id, { ...named(id), change: null, before: null, after: null });
  };
  for (const c of changes.all) mention(serverBefore(c));
  for (const l of landings.values()) {
    if (l.kind === 'server') mention(l.id);
    if (l.kind === 'placement') l.candidates.forEach(mention);
  }
  return servers;
}

function named(id: string): { id: string; name: string; uri: string } {
  const ref = parseServerId(id);
  return { id, name: ref?.name ?? id, uri: ref?.uri ?? '' };
}

/** Where the resource stood before the apply (null for a new one, or one on no single server). */
export function serverBefore(c: Change): string | null {
  if (!c.before) return null;
  switch (c.type) {
    case 'storm_appliance_server':
      return beforeString(c, 'id');
    case 'storm_deployment': {
      const app = beforeString(c, 'appliance');
      return app ? serverOfLayerId(app) : null;
    }
    default:
      return beforeString(c, 'server');
  }
}

/** Where each storm resource lands after the apply, by address. */
export function landings(changes: PlanChanges): Map<string, Landing> {
  const memo = new Map<string, Landing>();
  const resolving = new Set<string>();
  const one = (ids: (string | null)[]): Landing => {
    const distinct = [...new Set(ids.filter((x): x is string => x !== null))];
    return distinct.length === 1 ? { kind: 'server', id: distinct[0]! } : { kind: 'unknown' };
  };
  const landingIds = (cs: Change[]): (string | null)[] => cs.map((x) => {
    const l = landing(x);
    return l.kind === 'server' ? l.id : null;
  });
  // A value known after apply, traced to the resources its configuration names; failing that
  // (a reference through a local or a variable), a replacement is remade where it was, which is
  // where a layer's new parent is unless the server itself changes.
  const traced = (c: Change, attribute: string): Landing => one(landingIds(referencedChanges(changes, c, attribute)));
  const viaReference = (c: Change, attribute: string): Landing => {
    const found = traced(c, attribute);
    return found.kind === 'unknown' && c.action === 'replace' ? one([serverBefore(c)]) : found;
  };

  function landing(c: Change): Landing {
    const known = memo.get(c.address);
    if (known) return known;
    if (resolving.has(c.address)) return { kind: 'unknown' };
    resolving.add(c.address);
    const l = compute(c);
    resolving.delete(c.address);
    memo.set(c.address, l);
    return l;
  }

  function compute(c: Change): Landing {
    if (!finalValues(c)) {
      const id = serverBefore(c);
      return id ? { kind: 'server', id } : { kind: 'unknown' };
    }
    switch (c.type) {
      case 'storm_appliance_server': {
        const id = serverIdAfter(c);
        return id ? { kind: 'server', id } : { kind: 'unknown' };
      }
      case 'storm_deployment': {
        const app = afterString(c, 'appliance');
        if (app.known) return app.value ? one([serverOfLayerId(app.value)]) : { kind: 'unknown' };
        return viaReference(c, 'appliance');
      }
      case 'storm_instance': {
        const server = afterString(c, 'server');
        if (server.known && server.value) return { kind: 'server', id: server.value };
        // An instance without a server of its own is placed anew, wherever it was.
        const pinned = traced(c, 'server');
        if (pinned.kind === 'server') return pinned;
        const candidates = instanceCandidates(c);
        return candidates.length ? { kind: 'placement', candidates } : { kind: 'unknown' };
      }
      case 'storm_scaling_group':
        // Its members are the controller's, on any of its deployments' servers: no one server.
        return { kind: 'unknown' };
      default: {
        if (!c.type.startsWith('storm_')) return { kind: 'unknown' };
        const server = afterString(c, 'server');
        if (server.known) return server.value ? { kind: 'server', id: server.value } : { kind: 'unknown' };
        return viaReference(c, 'server');
      }
    }
  }

  /** The servers of an instance's deployments: placement chooses among them at apply. */
  function instanceCandidates(c: Change): string[] {
    const ids: (string | null)[] = [];
    const list = c.after?.deployments;
    let unknown = !Array.isArray(list) || (isObject(c.afterUnknown) && c.afterUnknown.deployments === true);
    if (Array.isArray(list)) {
      for (const d of list) {
        if (typeof d === 'string') ids.push(serverOfLayerId(d));
        else unknown = true;
      }
    }
    if (unknown) ids.push(...landingIds(referencedChanges(changes, c, 'deployments')));
    return [...new Set(ids.filter((x): x is string => x !== null))].sort(compareAddresses);
  }

  for (const c of changes.all) landing(c);
  return memo;
}
