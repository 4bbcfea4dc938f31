// What counts as a server's committed load: the memory and vCPUs promised to the domains on
// it. Pure, like placement: the provider, the controller and the simulator all count alike.
import type { ServerLoad } from './placement.ts';

/** A domain as the drivers saw it, reduced to what load depends on. */
export interface ObservedDomain {
  name: string;
  state: 'running' | 'paused' | 'shutoff';
  /** Defined by storm (carries storm's metadata). */
  storm: boolean;
  memoryMib: number;
  vcpus: number;
  /**
   * A reservation's lease (epoch ms): set on a domain defined to hold a placement while its
   * disks are made, cleared once the instance is complete. Past it, the holder is presumed dead.
   */
  reservedUntil?: number | null;
}

/** A placement decided but whose domain the host may not show yet. */
export interface PendingInstance {
  name: string;
  server: string;
  memoryMib: number;
  vcpus: number;
}

export interface ServerObservation {
  /** The server reference (NAME@LIBVIRT_URI). */
  server: string;
  cpus: number;
  memoryMib: number;
  reservedMemoryMib: number;
  domains: readonly ObservedDomain[];
}

/**
 * Running and paused domains hold their memory; a stopped domain storm defined is promised
 * its memory too (starting it again must not fail for want of room), while a stopped domain
 * someone else left there is not counted, nor a stopped reservation whose lease ran out at
 * `now` (its holder died before making the disks: it holds nothing a start could need). A
 * pending placement counts once, whether or not its domain already shows.
 */
export function committedLoad(observed: ServerObservation, pending: readonly PendingInstance[], now: number): ServerLoad {
  const pendingHere = pending.filter((p) => p.server === observed.server);
  const pendingNames = new Set(pending.map((p) => p.name));
  let committedMemoryMib = 0;
  let committedVcpus = 0;
  for (const d of observed.domains) {
    if (pendingNames.has(d.name) || (d.state === 'shutoff' && (!d.storm || leaseExpired(d, now)))) continue;
    committedMemoryMib += d.memoryMib;
    committedVcpus += d.vcpus;
  }
  for (const p of pendingHere) {
    committedMemoryMib += p.memoryMib;
    committedVcpus += p.vcpus;
  }
  return {
    server: observed.server,
    cpus: observed.cpus,
    memoryMib: observed.memoryMib,
    reservedMemoryMib: observed.reservedMemoryMib,
    committedMemoryMib,
    committedVcpus,
  };
}

function leaseExpired(d: ObservedDomain, now: number): boolean {
  return d.reservedUntil !== undefined && d.reservedUntil !== null && d.reservedUntil <= now;
}
