// Placing an instance on one of the servers its deployments stand on: observe each candidate
// (through the drivers), count its committed load and decide (pure policy), one decision at a
// time per session, each seeing the ones before it.
import { listDomains } from '../drivers/domains.ts';
import { committedLoad, type PendingInstance } from '../policy/load.ts';
import { place, type InstanceNeeds, type Placement, type ServerLoad } from '../policy/placement.ts';
import { readServerRecord } from './records.ts';
import { layerId, type LayerRef } from './refs.ts';
import type { HostSession } from './session.ts';

interface CandidateObservation {
  load: ServerLoad;
  /** The candidate already has this instance's domain, made by storm on this deployment (a leftover). */
  hasLeftover: boolean;
}

async function observeCandidate(session: HostSession, candidate: LayerRef, instance: string): Promise<CandidateObservation> {
  const uri = candidate.server.uri;
  const [host, record, domains] = await Promise.all([session.observe(uri), readServerRecord(uri), listDomains(uri)]);
  const pending: PendingInstance[] = [...session.pendingPlacements].map(([name, p]) => ({ name, ...p }));
  const leftover = domains.find((d) => d.name === instance);
  // The instance's own leftover does not count against it: it is what the create adopts.
  const others = domains.filter((d) => d.name !== instance);
  return {
    load: committedLoad({ server: candidate.serverId, cpus: host.cpus, memoryMib: host.memoryMib, reservedMemoryMib: record?.reservedMemoryMib ?? 128, domains: others }, pending),
    hasLeftover: Boolean(leftover?.storm && leftover.metadata.deployment === layerId(candidate.volume, candidate.serverId)),
  };
}

export interface PlacementDecision<T extends LayerRef> {
  placement: Placement;
  loads: ServerLoad[];
  chosen: T | null;
  /** Candidates left out because they did not answer. */
  unreachable: string[];
  /** Chosen because an interrupted create left the instance's domain there (no policy involved). */
  adopting: boolean;
}

/**
 * Decides where `instance` goes and records the decision in the session as pending, so the
 * next decision counts it; the caller calls `release` once the domain exists (or failed).
 * A server that already holds this instance's own leftover domain wins: placing it anywhere
 * else would leave a twin behind.
 */
export function placeInstance<T extends LayerRef>(session: HostSession, instance: string, needs: InstanceNeeds, candidates: readonly T[]): Promise<PlacementDecision<T>> {
  return session.placeOneAtATime(async () => {
    // A candidate that does not answer (powered off, unreachable) is left out, not fatal: the
    // instance goes where it can. Only when none answers is that the failure.
    const observed = await Promise.allSettled(candidates.map((c) => observeCandidate(session, c, instance)));
    const answered = observed.flatMap((o, i) => (o.status === 'fulfilled' ? [{ candidate: candidates[i]!, ...o.value }] : []));
    const unreachable = observed.flatMap((o, i) => (o.status === 'rejected' ? [{ server: candidates[i]!.serverId, reason: o.reason as unknown }] : []));
    if (!answered.length && unreachable.length) throw unreachable[0]!.reason;
    const loads = answered.map((a) => a.load);
    const leftover = answered.find((a) => a.hasLeftover);
    const placement: Placement = leftover ? { server: leftover.candidate.serverId } : place(needs, loads);
    const chosen = 'server' in placement ? (candidates.find((c) => c.serverId === placement.server) ?? null) : null;
    if (chosen) session.pendingPlacements.set(instance, { server: chosen.serverId, memoryMib: needs.memoryMib, vcpus: needs.vcpus });
    return { placement, loads, chosen, unreachable: unreachable.map((u) => u.server), adopting: Boolean(leftover) };
  });
}

/** Pins an instance to a server without a decision, still counted as pending. */
export function holdPlacement(session: HostSession, instance: string, server: string, needs: InstanceNeeds): void {
  session.pendingPlacements.set(instance, { server, memoryMib: needs.memoryMib, vcpus: needs.vcpus });
}

export function releasePlacement(session: HostSession, instance: string): void {
  session.pendingPlacements.delete(instance);
}
