// A power model for the lab's BMC sensors, so the status page's timeline draws what the paper's
// Figure 5 does: a blade draws 100 W idle, 8 W more per running guest and up to 40 W more per
// guest as its vCPUs get busy. The guests' CPU is read as the controller reads it (drivers/meters.ts
// readGuestCpu, policy/cpu.ts guestUtilization). Off, the BMC's own 8 W stay. The Watts are set on
// each BMC's sensor, where the controller reads them over IPMI as it would a real server's.
import { readGuestCpu, type GuestCpuReading } from '../../provider/src/drivers/meters.ts';
import { guestUtilization } from '../../provider/src/policy/cpu.ts';
import type { Lab } from '../../test/lib/lab.ts';

const IDLE_WATTS = 100;
const GUEST_WATTS = 8;
const BUSY_GUEST_WATTS = 40;

/** Watts for a blade running guests at these utilizations (0..1 each). */
export function modelWatts(guestUtilizations: readonly number[]): number {
  return Math.round(guestUtilizations.reduce((w, u) => w + GUEST_WATTS + BUSY_GUEST_WATTS * u, IDLE_WATTS));
}

/**
 * Sets every powered blade's sensor from the model every `everyMs`; returns a stop function.
 * A failure is told to `warn` once per distinct message (a blade powering off fails a round).
 */
export function startPowerModel(lab: Lab, warn: (message: string) => void, everyMs = 3000): () => void {
  /** Blade → its running guests' last readings, by name. */
  const last = new Map<string, Map<string, GuestCpuReading>>();
  const told = new Set<string>();
  let busy = false;
  const tick = async () => {
    for (const blade of lab.blades) {
      if ((await lab.power(blade).catch(() => 'unknown')) !== 'on') {
        last.delete(blade.name);
        continue;
      }
      try {
        const running = (await readGuestCpu(blade.libvirtUri)).guests.filter((g) => g.state === 'running');
        const before = last.get(blade.name);
        // A guest seen for the first time has no rate yet: it counts as running, not busy.
        const utilizations = running.map((g) => {
          const prev = before?.get(g.name);
          return prev ? guestUtilization(prev, g, g.vcpus) ?? 0 : 0;
        });
        last.set(blade.name, new Map(running.map((g) => [g.name, g])));
        await lab.setWatts(blade, modelWatts(utilizations));
      } catch (e) {
        const message = `power model: ${blade.name}: ${(e as Error).message}`;
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
