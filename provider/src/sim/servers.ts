// The simulated servers: what each can hold and what it draws. The draw is the usual linear
// server power model (idle + (peak − idle) × CPU utilization, as CloudSim's and SPECpower's
// figures describe servers of the paper's time: idle near half of peak), a boot drawing peak
// power for its whole duration and hosting nothing until done, a shutdown drawing idle, and
// off leaving only the BMC's few Watts (the lab's BMC model: 8 W).
import { HOST_RESERVE_MIB } from '../rules.ts';

export interface ServerSpec {
  name: string;
  cores: number;
  memoryMib: number;
  /** Memory the host keeps for itself (the paper's 128 MB). */
  reservedMemoryMib: number;
  idleWatts: number;
  peakWatts: number;
  /** Powered off: the BMC alone. */
  offWatts: number;
  /** Power-on until it can host guests; drawn at peak. */
  bootSeconds: number;
  /** Power-off until it is off; drawn at idle. */
  stopSeconds: number;
}

/**
 * The paper's blade: eight cores (Figure 5's "eight-core processing node"); 32 GiB; 160 W idle
 * and 320 W at full load (a two-socket blade of 2008, idle at half of peak); 120 s to boot
 * (the controller's default boot lead time), 15 s to stop.
 */
export const PAPER_BLADE: Omit<ServerSpec, 'name'> = {
  cores: 8,
  memoryMib: 32 * 1024,
  reservedMemoryMib: HOST_RESERVE_MIB,
  idleWatts: 160,
  peakWatts: 320,
  offWatts: 8,
  bootSeconds: 120,
  stopSeconds: 15,
};

/** `count` servers named blade1, blade2, … of one spec. */
export function blades(count: number, spec: Omit<ServerSpec, 'name'> = PAPER_BLADE): ServerSpec[] {
  return Array.from({ length: count }, (_, i) => ({ ...spec, name: `blade${i + 1}` }));
}

export type PowerState = 'off' | 'booting' | 'on' | 'stopping';

/** Watts drawn in a power state at a CPU utilization (0..1, used only when on). */
export function watts(spec: ServerSpec, power: PowerState, utilization: number): number {
  switch (power) {
    case 'off':
      return spec.offWatts;
    case 'booting':
      return spec.peakWatts;
    case 'stopping':
      return spec.idleWatts;
    case 'on':
      return spec.idleWatts + (spec.peakWatts - spec.idleWatts) * Math.min(1, Math.max(0, utilization));
  }
}
