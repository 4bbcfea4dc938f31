// What the controller samples on a host every round: each guest's cumulative CPU time, the
// counter policy/cpu.ts turns into utilization (the paper's Xen CPU seconds, here libvirt's).
//
// One native connection per round: list every domain, then its name and info (state, vCPUs,
// CPU time). Measured against `virsh domstats --state --cpu-total --vcpu --nowait` (one virsh
// process per round) on qemu:///system with 20 domains (2 running), 40 rounds each, 2-core
// machine: native 4.5 ms wall per round, 3.4 ms CPU in node + 2.8 ms in libvirtd; virsh 37.6 ms
// wall, 6.9 ms in node + 24.8 ms in the virsh process + 4.0 ms in libvirtd. The binding costs
// its process ~17 MiB once, which a long-running controller pays once.
// domstats has a trap besides: for a shut-off domain it reports a cpu.time that is not the
// guest's (libvirt 9.0 printed ~5 s, growing, for every inactive domain); here a domain that is
// not running reads 0.
import type { Domain } from '@unraid/libvirt';
import { isNoDomain, stateName, type DomainState } from './domains.ts';
import { withConnection } from './libvirt.ts';

/** One guest's counter at one moment; `at` and `cpuTimeNs` are policy/cpu.ts's CpuSample. */
export interface GuestCpuReading {
  name: string;
  state: DomainState;
  /** vCPUs the guest has now (its current count, not its maximum). */
  vcpus: number;
  /** Epoch ms when this guest's counter was read. */
  at: number;
  /**
   * Cumulative CPU time in ns of the guest's QEMU process: its vCPUs and its emulator threads
   * (device emulation is work the guest caused on the host). 0 when the guest is not running.
   * libvirt counts it in 10 ms steps here (the process's ticks), 0.2 % of a 5 s round.
   */
  cpuTimeNs: number;
}

export interface HostCpuReading {
  uri: string;
  /** Epoch ms when the round started (each guest carries its own reading time). */
  at: number;
  guests: GuestCpuReading[];
}

/** What the binding's getInfo answered (the part storm reads). */
export interface DomainInfoFacts {
  state: number;
  nrVirtCpu: number;
  cpuTime: number;
}

/** A guest's reading from getInfo's answer; pure, so recorded answers test it. */
export function guestCpuReading(name: string, info: DomainInfoFacts, at: number): GuestCpuReading {
  const state = stateName(info.state);
  // A paused guest keeps its counter (it resumes the same life); a stopped one has none.
  return { name, state, vcpus: info.nrVirtCpu, at, cpuTimeNs: state === 'shutoff' ? 0 : info.cpuTime };
}

async function readGuest(d: Domain): Promise<GuestCpuReading | null> {
  try {
    const [name, info] = await Promise.all([d.getName(), d.getInfo()]);
    return guestCpuReading(name, info, Date.now());
  } catch (err) {
    // Undefined between the listing and the read (a parallel destroy): simply gone.
    if (isNoDomain(err)) return null;
    throw err;
  }
}

/** Every guest on the host, sorted by name (byte order: the same on every machine, so logs of two rounds line up). */
export function readGuestCpu(uri: string): Promise<HostCpuReading> {
  return withConnection(uri, async (h) => {
    const at = Date.now();
    const read = await Promise.all((await h.connectListAllDomains()).map(readGuest));
    const guests = read.filter((g): g is GuestCpuReading => g !== null).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { uri, at, guests };
  });
}
