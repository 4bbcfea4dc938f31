// The traces the simulator's figures are made on, each with the servers it runs on: sized so the
// load needs more than the first server at its peak (otherwise no power policy has anything to
// do), on the paper's eight-core blades.
import { blades, type ServerSpec } from './servers.ts';
import { dailyMailTrace, paperStepTrace, planetLabLikeTrace, type LoadTrace } from './traces.ts';

export interface Scenario {
  trace: LoadTrace;
  servers: ServerSpec[];
  /** Why this sizing, for the bench's table. */
  about: string;
}

export function scenarios(seed?: number): Scenario[] {
  return [
    {
      // Figure 5: the first blade fills with members, the second is powered on for the rest.
      trace: paperStepTrace({ seed, loadCores: 9.6 }),
      servers: blades(2),
      about: 'Figure 5: idle, 9.6 cores of mail from 300 s for 25 min (12 members at 80 %), idle; 2 blades of 8 cores',
    },
    {
      trace: dailyMailTrace({ seed, groups: 2, peakCores: 12 }),
      servers: blades(4),
      about: 'an office day of two mail groups (peaks 12 cores and less, morning), 4 blades of 8 cores',
    },
    {
      // Memory decides how many blades the fleet needs (about 210 GiB of VMs: 7 blades), CPU how busy they are.
      trace: planetLabLikeTrace({ seed }),
      servers: blades(10),
      about: '200 fixed VMs with PlanetLab-like CPU (mean 12 %, p99 79 %, 5-min samples) for a day, 10 blades of 8 cores and 32 GiB',
    },
  ];
}
