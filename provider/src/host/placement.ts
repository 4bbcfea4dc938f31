// Placing an instance on one of the servers its deployments stand on: observe each candidate
// (through the drivers), count its committed load and decide (pure policy), one decision at a
// time per session, each seeing the ones before it.
import { listDomains } from '../drivers/domains.ts';
import { committedLoad, type PendingInstance } from '../policy/load.ts';
import { place, type InstanceNeeds, type Placement, type ServerLoad } from '../policy/placement.ts';
import { readServerRecord } from './records.ts';
import type { LayerRef } from './refs.ts';
import type { HostSession } from './session.ts';

export async function observeLoad(session: HostSession, candidate: LayerRef): Promise<ServerLoad> {
  const uri = candidate.server.uri;
  const [host, record, domains] = await Promise.all([session.observe(uri), readServerRecord(uri), listDomains(uri)]);
  const pending: PendingInstance[] = [...session.pendingPlacements].map(([name, p]) => ({ name, ...p }));
  return committedLoad(
    { server: candidate.serverId, cpus: host.cpus, memoryMib: host.memoryMib, reservedMemoryMib: record?.reservedMemoryMib ?? 128, domains },
    pending,
  );
}

export interface PlacementDecision<T extends LayerRef> {
  placement: Placement;
  loads: ServerLoad[];
  chosen: T | null;
  /** Candidates left out because they did not answer. */
  unreachable: string[];
}

/**
 * Decides where `instance` goes and records the decision in the session as pending, so the
 * next decision counts it; the caller calls `release` once the domain exists (or failed).
 */
export function placeInstance<T extends LayerRef>(session: HostSession, instance: string, needs: InstanceNeeds, candidates: readonly T[]): Promise<PlacementDecision<T>> {
  return session.placeOneAtATime(async () => {
    // A candidate that does not answer (powered off, unreachable) is left out, not fatal: the
    // instance goes where it can. Only when none answers is that the failure.
    const observed = await Promise.allSettled(candidates.map((c) => observeLoad(session, c)));
    const loads = observed.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
    const unreachable = observed.flatMap((o, i) => (o.status === 'rejected' ? [{ server: candidates[i]!.serverId, reason: o.reason as unknown }] : []));
    if (!loads.length && unreachable.length) throw unreachable[0]!.reason;
    const placement = place(needs, loads);
    const chosen = 'server' in placement ? (candidates.find((c) => c.serverId === placement.server) ?? null) : null;
    if (chosen) session.pendingPlacements.set(instance, { server: chosen.serverId, memoryMib: needs.memoryMib, vcpus: needs.vcpus });
    return { placement, loads, chosen, unreachable: unreachable.map((u) => u.server) };
  });
}

/** Pins an instance to a server without a decision, still counted as pending. */
export function holdPlacement(session: HostSession, instance: string, server: string, needs: InstanceNeeds): void {
  session.pendingPlacements.set(instance, { server, memoryMib: needs.memoryMib, vcpus: needs.vcpus });
}

export function releasePlacement(session: HostSession, instance: string): void {
  session.pendingPlacements.delete(instance);
}
