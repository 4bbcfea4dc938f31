// Where a new instance goes: the least-loaded server that fits. Pure: a function of what the
// drivers observed, so the provider and (later) the controller and simulator share it.

export interface ServerLoad {
  /** The server reference (NAME@LIBVIRT_URI). */
  server: string;
  cpus: number;
  memoryMib: number;
  reservedMemoryMib: number;
  /** Memory promised to domains already there (running ones and storm's defined ones). */
  committedMemoryMib: number;
  committedVcpus: number;
  /** Its CPU as last measured (0..1 of its CPUs), when known: a saturated server takes no new instance. */
  cpu?: number | null;
}

/**
 * A server at least this busy gets no new instance: a member there would share CPU that is
 * already short (with round-robin DNS each member gets an equal share of the load, so members
 * piled on a full server stay starved however many join elsewhere). The instance waits for a
 * server with room, which is host power's cue. 1 turns it off.
 */
export const SATURATED_SERVER_CPU = 0.9;

export interface InstanceNeeds {
  memoryMib: number;
  vcpus: number;
}

export type Placement = { server: string } | { error: string };

export function freeMemoryMib(s: ServerLoad): number {
  return s.memoryMib - s.reservedMemoryMib - s.committedMemoryMib;
}

/** Memory promised beyond what the server may give (0 when within): the reserve is never touched. */
export function overCommittedMib(s: ServerLoad): number {
  return Math.max(0, -freeMemoryMib(s));
}

/**
 * `spread`: the paper's rule, the least-loaded server (guests get the most room). `consolidate`:
 * the most-loaded server that fits (fills the fewest servers, so the rest can be powered off).
 */
export type PlacementMode = 'spread' | 'consolidate';

/**
 * Memory is the hard constraint (the paper's rule: never touch the host's reserve); a guest
 * may not have more vCPUs than the host has CPUs, but vCPUs are shared between guests. A
 * server whose measured CPU is at `saturatedCpu` or more takes nothing (unmeasured: no bar). Among
 * the servers that fit, the one with the smallest share of its usable memory committed wins
 * (the largest, to consolidate); ties go to fewer committed vCPUs (more), then to the name, so
 * plans are repeatable.
 */
export function place(needs: InstanceNeeds, servers: readonly ServerLoad[], mode: PlacementMode = 'spread', saturatedCpu: number = SATURATED_SERVER_CPU): Placement {
  if (!servers.length) return { error: 'no candidate servers were given.' };
  const reasons: string[] = [];
  const fitting = servers.filter((s) => {
    const free = freeMemoryMib(s);
    if (needs.memoryMib > free) {
      // Below zero only while other runs' reservations are in flight (they step back if so).
      const room = free >= 0 ? `${free} MiB free` : 'full, counting other runs\' reservations in flight';
      reasons.push(`${s.server}: ${room} (${s.memoryMib} MiB, ${s.reservedMemoryMib} reserved, ${s.committedMemoryMib} committed)`);
      return false;
    }
    if (needs.vcpus > s.cpus) {
      reasons.push(`${s.server}: ${s.cpus} CPUs`);
      return false;
    }
    return true;
  });
  if (!fitting.length) {
    return { error: `no server fits ${needs.memoryMib} MiB and ${needs.vcpus} vCPU(s): ${reasons.join('; ')}.` };
  }
  const saturated = (s: ServerLoad) => saturatedCpu < 1 && s.cpu !== undefined && s.cpu !== null && s.cpu >= saturatedCpu;
  const roomy = fitting.filter((s) => !saturated(s));
  if (!roomy.length) {
    return { error: `no server fits ${needs.memoryMib} MiB and ${needs.vcpus} vCPU(s) with CPU to spare: ${fitting.map((s) => `${s.server} at ${Math.round(s.cpu! * 100)} % CPU`).join('; ')}.` };
  }
  const load = (s: ServerLoad) => (s.committedMemoryMib + needs.memoryMib) / Math.max(1, s.memoryMib - s.reservedMemoryMib);
  const sign = mode === 'spread' ? 1 : -1;
  const [best] = [...roomy].sort((a, b) => sign * (load(a) - load(b)) || sign * (a.committedVcpus - b.committedVcpus) || a.server.localeCompare(b.server));
  return { server: best!.server };
}

/**
 * The cores the members placed so far in one scale-out will keep busy (server → cores): each
 * takes a member's share of the group's load now (`load`, 0..1 of its `vcpus`). Placement adds
 * them to what was measured, so the members of one scale-out do not all land on a server that
 * only looked idle (seen in the simulator: a blade given six members at once, then 45 min
 * saturated while the next one idled). Nothing is credited back to the servers the new members
 * will relieve: that comes after their boot, and a load that grew meanwhile takes it (counting
 * it left the simulator's office day overloaded 3–7 % of the time on other seeds, against 1 %).
 */
export function placedCores(added: ReadonlyMap<string, number>, load: number, vcpus: number): Map<string, number> {
  const share = Math.min(1, Math.max(0, load)) * vcpus;
  return new Map([...added].map(([server, n]) => [server, n * share]));
}

/**
 * A server's CPU (0..1) once `shiftCores` more are busy on its `cpus`. Unmeasured (a server just
 * booted) counts from what this scale-out put there, so it does not take every member at once;
 * with nothing put there it stays unmeasured (no bar).
 */
export function shiftedCpu(cpu: number | null | undefined, shiftCores: number | undefined, cpus: number): number | null {
  if ((cpu === null || cpu === undefined) && !shiftCores) return null;
  return Math.max(0, (cpu ?? 0) + (shiftCores ?? 0) / Math.max(1, cpus));
}
