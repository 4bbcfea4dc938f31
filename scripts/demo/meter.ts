// A power model for the lab's BMC sensors, so the status page's timeline draws what the paper's
// Figure 5 does: a blade draws 100 W idle, 8 W more per running guest and up to 40 W more per
// guest as its vCPU gets busy (from libvirt's CPU-time counter). Off, the BMC's own 8 W stay.
// The Watts are set on each BMC's sensor, where the controller reads them over IPMI as it would
// a real server's.
import type { Blade, Lab } from '../../test/lib/lab.ts';
import { virsh } from '../../test/lib/terraform.ts';

const IDLE_WATTS = 100;
const GUEST_WATTS = 8;
const BUSY_GUEST_WATTS = 40;

interface CpuReading { atNs: bigint; cpuNs: Map<string, bigint> }

/** Running domains' cumulative CPU time (ns), from `virsh domstats --cpu-total --list-running`. */
async function cpuTimes(blade: Blade): Promise<Map<string, bigint>> {
  const r = await virsh(blade.libvirtUri, 'domstats', '--cpu-total', '--list-running');
  if (r.exitCode !== 0) throw new Error(`virsh domstats on ${blade.name}: ${r.stderr.trim() || r.stdout.trim()}`);
  const times = new Map<string, bigint>();
  let domain = '';
  for (const line of r.stdout.split('\n')) {
    const d = /^Domain: '(.+)'$/.exec(line.trim());
    if (d) domain = d[1]!;
    const t = /^cpu\.time=(\d+)$/.exec(line.trim());
    if (t && domain) times.set(domain, BigInt(t[1]!));
  }
  return times;
}

/** Watts for a blade from two readings of its guests' CPU time. */
export function modelWatts(before: CpuReading | undefined, now: CpuReading): number {
  let watts = IDLE_WATTS;
  for (const [name, cpu] of now.cpuNs) {
    const was = before?.cpuNs.get(name);
    const busy = was === undefined || now.atNs <= before!.atNs ? 0 : Math.min(1, Number(cpu - was) / Number(now.atNs - before!.atNs));
    watts += GUEST_WATTS + BUSY_GUEST_WATTS * busy;
  }
  return Math.round(watts);
}

/**
 * Sets every powered blade's sensor from the model every `everyMs`; returns a stop function.
 * A failure is told to `warn` once per distinct message (a blade powering off fails a round).
 */
export function startPowerModel(lab: Lab, warn: (message: string) => void, everyMs = 3000): () => void {
  const last = new Map<string, CpuReading>();
  const told = new Set<string>();
  let busy = false;
  const tick = async () => {
    for (const blade of lab.blades) {
      if ((await lab.power(blade).catch(() => 'unknown')) !== 'on') {
        last.delete(blade.name);
        continue;
      }
      try {
        const reading = { atNs: process.hrtime.bigint(), cpuNs: await cpuTimes(blade) };
        const watts = modelWatts(last.get(blade.name), reading);
        last.set(blade.name, reading);
        await lab.setWatts(blade, watts);
      } catch (e) {
        const message = `power model: ${(e as Error).message}`;
        if (!told.has(message)) warn(message);
        told.add(message);
      }
    }
  };
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void tick().finally(() => { busy = false; });
  }, everyMs);
  return () => clearInterval(timer);
}
