// CPU utilization from CPU-time counters, as the paper measured it (Xen's CPU seconds): the
// hypervisor's count of what a guest used works whatever the guest's OS, and keeps working when
// the guest is too swamped to answer. Pure: the controller samples, this divides.

/** A guest's cumulative CPU time (all vCPUs together) at one moment. */
export interface CpuSample {
  /** Epoch ms of the reading. */
  at: number;
  /** Cumulative CPU time in nanoseconds (libvirt's cpu.time). */
  cpuTimeNs: number;
}

/**
 * Share of its vCPUs a guest used between two samples, 0..1. Null when the interval is empty or
 * the counter went back (the guest restarted, so the two readings are of different lives).
 */
export function guestUtilization(prev: CpuSample, next: CpuSample, vcpus: number): number | null {
  const elapsedNs = (next.at - prev.at) * 1e6;
  const usedNs = next.cpuTimeNs - prev.cpuTimeNs;
  if (elapsedNs <= 0 || usedNs < 0 || vcpus <= 0) return null;
  return Math.min(1, usedNs / (elapsedNs * vcpus));
}

/**
 * A server's load: what its guests used over its CPUs, 0..1 (the paper's host utilization).
 * `guestCpus` is each guest's utilization times its vCPUs (CPUs' worth of work).
 */
export function serverUtilization(guestCpus: readonly number[], hostCpus: number): number {
  if (hostCpus <= 0) return 0;
  return Math.min(1, guestCpus.reduce((sum, c) => sum + c, 0) / hostCpus);
}
