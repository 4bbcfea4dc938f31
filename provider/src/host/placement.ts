// Placing an instance on one of the servers its deployments stand on: observe each candidate
// (through the drivers), count its committed load and decide (pure policy), one decision at a
// time per session, each seeing the ones before it.
//
// Across processes (two terraform applies, the controller) nothing is shared but the hosts,
// so a decision is recorded on the host first and checked after: the caller reserves the
// placement by defining the instance's domain at once, marked with a lease, then the server is
// read again counting every domain on it. Whoever finds it over-committed takes its own
// reservation back and decides again. Of two racing reservations the later check always sees
// the other one, so the server never keeps more than it can hold; at worst both step back and
// retry after a random pause. A holder that dies leaves a reservation whose lease runs out, so
// it cannot block the server forever; the next apply of that instance adopts it.
import { getDomain, listDomains, type DomainObservation } from '../drivers/domains.ts';
import { committedLoad, type ObservedDomain, type PendingInstance } from '../policy/load.ts';
import { overCommittedMib, place, shiftedCpu, type InstanceNeeds, type Placement, type PlacementMode, type ServerLoad } from '../policy/placement.ts';
import { HOST_RESERVE_MIB } from '../rules.ts';
import { readServerRecord } from './records.ts';
import { layerId, type LayerRef } from './refs.ts';
import type { HostSession } from './session.ts';

interface CandidateObservation {
  load: ServerLoad;
  /** The candidate already has this instance's domain, made by storm on this deployment (a leftover). */
  hasLeftover: boolean;
}

/** Metadata of a domain that holds a placement while its instance is being made. */
export const RESERVATION = {
  /** Lease end, epoch ms. */
  until: 'reserved_until',
  /** The session that holds it (HostSession.id). */
  holder: 'reserved_by',
} as const;

/**
 * How long a reservation holds: far longer than making an instance's disks takes, short enough
 * that a run killed mid-create holds nothing for long (the next one waits out the lease, then
 * adopts). A holder that outlives its lease checks the server again before it keeps the place.
 */
export const RESERVATION_LEASE_MS = 30_000;

/** Rounds of decide, reserve, check before giving up on a contended server. */
export const PLACEMENT_ROUNDS = 8;

export function reservationMetadata(session: HostSession, now: number): Record<string, string> {
  return { [RESERVATION.until]: String(now + RESERVATION_LEASE_MS), [RESERVATION.holder]: session.id };
}

/** A domain that is another live process's reservation: somebody is making this very instance right now. */
export function reservedByOther(session: HostSession, d: DomainObservation, now: number): boolean {
  const until = reservationEnd(d);
  return until !== null && until > now && d.metadata[RESERVATION.holder] !== session.id;
}

/** When a domain's reservation ends; null for a complete instance. */
export function reservationEnd(d: DomainObservation): number | null {
  const until = Number(d.metadata[RESERVATION.until]);
  return d.storm && Number.isFinite(until) ? until : null;
}

/**
 * Waits while instance `name` is another live run's reservation (that run is making it now),
 * until it completes, goes, or its lease runs out; returns the domain as it is then.
 */
export async function outwaitReservation(session: HostSession, uri: string, name: string, signal?: AbortSignal): Promise<DomainObservation | null> {
  for (;;) {
    const d = await getDomain(uri, name);
    if (!d || !reservedByOther(session, d, Date.now()) || signal?.aborted) return d;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** The chosen server's load now, counting every domain on it: memory over what it may give, or 0. */
export async function overCommitment(session: HostSession, chosen: LayerRef): Promise<{ overMib: number; load: ServerLoad }> {
  const load = await serverLoad(session, chosen, await listDomains(chosen.server.uri));
  return { overMib: overCommittedMib(load), load };
}

function toObserved(d: DomainObservation): ObservedDomain {
  return { name: d.name, state: d.state, storm: d.storm, memoryMib: d.memoryMib, vcpus: d.vcpus, reservedUntil: reservationEnd(d) };
}

async function serverLoad(session: HostSession, candidate: LayerRef, domains: readonly DomainObservation[]): Promise<ServerLoad> {
  const uri = candidate.server.uri;
  const [host, record] = await Promise.all([session.observe(uri), readServerRecord(uri)]);
  const pending: PendingInstance[] = [...session.pendingPlacements].map(([name, p]) => ({ name, ...p }));
  return committedLoad(
    { server: candidate.serverId, cpus: host.cpus, memoryMib: host.memoryMib, reservedMemoryMib: record?.reservedMemoryMib ?? HOST_RESERVE_MIB, domains: domains.map(toObserved) },
    pending,
    Date.now(),
  );
}

async function observeCandidate(session: HostSession, candidate: LayerRef, instance: string): Promise<CandidateObservation> {
  const domains = await listDomains(candidate.server.uri);
  const leftover = domains.find((d) => d.name === instance);
  // The instance's own leftover does not count against it: it is what the create adopts.
  return {
    load: await serverLoad(session, candidate, domains.filter((d) => d.name !== instance)),
    hasLeftover: Boolean(leftover?.storm && leftover.metadata.deployment === layerId(candidate.volume, candidate.serverId)),
  };
}

/** Servers' measured CPU (by server id) and the bar from which one is saturated. */
export interface ServerBusy {
  cpu: ReadonlyMap<string, number>;
  saturated: number;
  /** Cores the members placed earlier in the same scale-out will keep busy, by server id (policy/placement.ts placedCores). */
  placedCores?: ReadonlyMap<string, number>;
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
export function placeInstance<T extends LayerRef>(session: HostSession, instance: string, needs: InstanceNeeds, candidates: readonly T[], mode: PlacementMode = 'spread', busy?: ServerBusy): Promise<PlacementDecision<T>> {
  return session.placeOneAtATime(async () => {
    // A candidate that does not answer (powered off, unreachable) is left out, not fatal: the
    // instance goes where it can. Only when none answers is that the failure.
    const observed = await Promise.allSettled(candidates.map((c) => observeCandidate(session, c, instance)));
    const answered = observed.flatMap((o, i) => (o.status === 'fulfilled' ? [{ candidate: candidates[i]!, ...o.value }] : []));
    const unreachable = observed.flatMap((o, i) => (o.status === 'rejected' ? [{ server: candidates[i]!.serverId, reason: o.reason as unknown }] : []));
    if (!answered.length && unreachable.length) throw unreachable[0]!.reason;
    const loads = answered.map((a) => ({ ...a.load, cpu: shiftedCpu(busy?.cpu.get(a.load.server), busy?.placedCores?.get(a.load.server), a.load.cpus) }));
    const leftover = answered.find((a) => a.hasLeftover);
    const placement: Placement = leftover ? { server: leftover.candidate.serverId } : place(needs, loads, mode, busy?.saturated);
    const chosen = 'server' in placement ? (candidates.find((c) => c.serverId === placement.server) ?? null) : null;
    if (chosen) session.pendingPlacements.set(instance, { server: chosen.serverId, memoryMib: needs.memoryMib, vcpus: needs.vcpus });
    return { placement, loads, chosen, unreachable: unreachable.map((u) => u.server), adopting: Boolean(leftover) };
  });
}

/** What `reserve` recorded on the host, and how to take it back. */
export interface Reservation {
  undo(): Promise<void>;
}

export interface ReservedPlacement<T extends LayerRef> extends PlacementDecision<T> {
  /** Rounds it took: more than one means other processes competed for the same servers. */
  rounds: number;
}

/**
 * Decides, reserves on the host (the caller's `reserve` defines the domain), then checks the
 * chosen server with every domain it now holds; an over-committed server gets the reservation
 * back and the decision is taken again, up to PLACEMENT_ROUNDS times. An adopted leftover is
 * already on the host (and counted by everyone), so it is not checked again. The placement
 * stays pending in the session until the caller releases it.
 */
export async function placeAndReserve<T extends LayerRef>(
  session: HostSession,
  instance: string,
  needs: InstanceNeeds,
  candidates: readonly T[],
  reserve: (chosen: T, adopting: boolean) => Promise<Reservation>,
  mode: PlacementMode = 'spread',
  busy?: ServerBusy,
): Promise<ReservedPlacement<T>> {
  let lastOver = '';
  for (let round = 1; ; round++) {
    const decision = await placeInstance(session, instance, needs, candidates, mode, busy);
    if (!decision.chosen) return { ...decision, rounds: round };
    const reservation = await reserve(decision.chosen, decision.adopting);
    if (decision.adopting) return { ...decision, rounds: round };
    const { overMib: over, load } = await overCommitment(session, decision.chosen).catch(async (err: unknown) => {
      await reservation.undo().catch(() => {});
      throw err;
    });
    if (over === 0) return { ...decision, rounds: round };
    await reservation.undo();
    releasePlacement(session, instance);
    lastOver = `${decision.chosen.serverId} would be ${over} MiB over (${load.committedMemoryMib} MiB committed of ${load.memoryMib - load.reservedMemoryMib} usable)`;
    if (round >= PLACEMENT_ROUNDS) {
      return { ...decision, chosen: null, rounds: round, placement: { error: `other applies kept taking the same room: after ${round} rounds, ${lastOver}.` } };
    }
    // A random pause, growing with each round: two processes that stepped back together do not collide again.
    await new Promise((r) => setTimeout(r, (100 + Math.random() * 400) * round));
  }
}

export function releasePlacement(session: HostSession, instance: string): void {
  session.pendingPlacements.delete(instance);
}
