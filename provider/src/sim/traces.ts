// Load traces for the energy simulator: what the workloads ask of the CPU, sample by sample,
// so that policies (the controller's own scaling and power functions) can be run against the
// same load and their energy compared. Everything is generated from a seed: no downloaded
// data, and a seed gives the same trace on every machine (see random.ts).
//
// Three traces, from the paper outward:
// - paper-step: the experiment of Dehus & Grunwald (LISA '08), "Example and Analysis" and
//   Figure 5: one postfix mail appliance, load generators switched on (≈300 s in), then off.
// - daily-mail: the same mail group over an office day, the load a real mail relay sees.
// - planetlab-like: a fleet of fixed VMs whose CPU utilization matches the published
//   statistics of the PlanetLab traces that CloudSim ships and that Beloglazov & Buyya used
//   for their VM-consolidation studies (mean ≈ 12 %, median ≈ 6 %, p95 ≈ 50 %, p99 ≈ 79 %).

import { createRandom, deriveSeed, exponential, normal, normalQuantile, permutation, pick, uniformBetween, type Random } from './random.ts';

/** LISA '08 opened on 9 November 2008; every generator uses this seed unless given another. */
export const DEFAULT_TRACE_SEED = 20081109;

/** One workload's demand over time. */
export interface TraceWorkload {
  /** Unique within the trace: a scaling group's name, or a VM's. */
  name: string;
  /**
   * 'group': a scaling group; `demand` is its total CPU demand in cores (CPU-seconds per
   * second), to be spread over however many instances the scaling policy keeps.
   * 'vm': one fixed VM; `demand` is its utilization, 0..1 of its `vcpus`.
   */
  kind: 'group' | 'vm';
  /** vCPUs of each instance ('group') or of the VM ('vm'). */
  vcpus: number;
  /** Memory of each instance or of the VM, MiB: what placement must find room for. */
  memoryMib: number;
  /** One value per step, the first at t = 0: cores ('group', ≥ 0) or utilization ('vm', 0..1). */
  demand: number[];
}

/** A load trace: what each workload asks of the CPU over time, sampled every stepSeconds. */
export interface LoadTrace {
  /** Which generator made it: 'paper-step' | 'daily-mail' | 'planetlab-like'. */
  name: string;
  /** One sentence: what it models and where its numbers come from. */
  description: string;
  /** Seconds between samples; sample i describes [i·step, (i+1)·step). */
  stepSeconds: number;
  /** The seed it was generated from: the same seed and options give the same trace. */
  seed: number;
  workloads: TraceWorkload[];
}

// ---------------------------------------------------------------------------------------
// paper-step

export interface PaperStepOptions {
  seed?: number;
  /** When the load generators are switched on (s). Default 300: Figure 5's "approximately 300 seconds". */
  onAtSeconds?: number;
  /** How long they run (s). Default 1500 (25 min). */
  holdSeconds?: number;
  /** Idle time after they are switched off (s). Default 600. */
  idleAfterSeconds?: number;
  /**
   * The group's demand while loaded, cores. Default 3.2: four 1-vCPU instances then run at
   * 80 %, under the paper's 90 % mark, while three would need 107 %; so the group must grow
   * from one instance to four, which on the paper's 8-core M605 blades (with the instances'
   * own overhead and dom0) is when a second blade is worth its power.
   */
  loadCores?: number;
  /** The idle group's demand, cores. Default 0.04: an MTA with nothing to deliver. */
  idleCores?: number;
}

/** The sample step of the paper trace: the controller's own sampling interval. */
const PAPER_STEP_SECONDS = 5;

/**
 * The paper's Figure 5 experiment as a trace: one mail group, idle, then the load generators'
 * 25 MB messages switched on at `onAtSeconds` and off after `holdSeconds`. The generators were
 * switched, not ramped, so the steps are sharp; the noise is small (±3 % of the load, a few
 * hundredths of a core when idle), as a saturated MTA's CPU is steady.
 */
export function paperStepTrace(options: PaperStepOptions = {}): LoadTrace {
  const seed = options.seed ?? DEFAULT_TRACE_SEED;
  const onAt = options.onAtSeconds ?? 300;
  const hold = options.holdSeconds ?? 1500;
  const idleAfter = options.idleAfterSeconds ?? 600;
  const loadCores = options.loadCores ?? 3.2;
  const idleCores = options.idleCores ?? 0.04;
  const r = createRandom(seed);
  const steps = Math.round((onAt + hold + idleAfter) / PAPER_STEP_SECONDS);
  const offAt = onAt + hold;
  const demand = Array.from({ length: steps }, (_, i) => {
    const t = i * PAPER_STEP_SECONDS;
    const loaded = t >= onAt && t < offAt;
    return loaded ? Math.max(0, loadCores * (1 + normal(r, 0, 0.03))) : Math.max(0, idleCores + normal(r, 0, 0.01));
  });
  return {
    name: 'paper-step',
    description:
      `The paper's Figure 5 experiment: one mail group idle at ${idleCores} cores, load generators switched on at ${onAt} s ` +
      `asking ${loadCores} cores (four 1-vCPU instances at 80 %, past the paper's 90 % mark with three) for ${hold} s, then off for ${idleAfter} s.`,
    stepSeconds: PAPER_STEP_SECONDS,
    seed,
    workloads: [{ name: 'mail', kind: 'group', vcpus: 1, memoryMib: 512, demand }],
  };
}

// ---------------------------------------------------------------------------------------
// daily-mail

export interface DailyMailOptions {
  seed?: number;
  /** Days to generate (each the same office weekday; weekends are not modelled). Default 1. */
  days?: number;
  /** Mail groups. Default 1; others get a smaller peak (50–100 %) and a shift of up to ±30 min. */
  groups?: number;
  /**
   * The first group's morning peak before noise, cores. Default 5.4: six 1-vCPU instances
   * exactly at the 90 % mark; the noise and bursts on top take the day's maximum to 5.4–7.2
   * cores, 7–8 instances (so in 300 seeds tried).
   */
  peakCores?: number;
}

const DAILY_STEP_SECONDS = 60;
const logistic = (x: number) => 1 / (1 + Math.exp(-x));
const bump = (h: number, centre: number, width: number) => Math.exp(-0.5 * ((h - centre) / width) ** 2);

/**
 * An office's mail load over the day, 0..1 of its peak, hour `h` in [0, 24). Mail follows the
 * working day: people arrive and open their mailboxes (the steep rise from 07:00), the morning
 * is the day's busiest time (the backlog of the night plus the morning's replies, centred on
 * 09:45), lunch is quieter, after lunch comes a second, smaller wave (≈14:15), and the load
 * falls off through the evening as people leave. At night what is left is the floor: other
 * time zones, lists, newsletters, spam, and the servers' own reports.
 */
export function officeMailShape(h: number): number {
  const NIGHT_FLOOR = 0.08;
  return NIGHT_FLOOR + (1 - NIGHT_FLOOR) * Math.min(1, officeRaw(h) / OFFICE_RAW_MAX);
}

/** The shape's parts before scaling: the working day's plateau and the two waves on it. */
function officeRaw(h: number): number {
  const workingDay = logistic((h - 7.5) / 0.4) * logistic((18 - h) / 0.9);
  return 0.42 * workingDay + 0.55 * bump(h, 9.75, 0.65) + 0.22 * bump(h, 14.25, 0.9);
}

/** The raw shape's maximum, so the morning peak is exactly 1 (found once, on a 6 s grid). */
const OFFICE_RAW_MAX = Math.max(...Array.from({ length: 24 * 600 }, (_, k) => officeRaw(k / 600)));

/**
 * Multiplicative noise for one group's day(s): a slowly wandering log-normal factor (AR(1),
 * minute to minute correlation 0.8, 6 % spread: the mix of senders changes, not the sum
 * jumping) times short bursts (every 90 min on average, ≈4 min long, +8–20 %: a mailing list
 * fanning out, a newsletter, a queue flushed after a remote outage).
 */
function mailNoise(r: Random, steps: number): number[] {
  const RHO = 0.8;
  const SPREAD = 0.06;
  const out: number[] = new Array<number>(steps);
  let log = normal(r, 0, SPREAD);
  let nextBurst = exponential(r, 90);
  let burstLeft = 0;
  let burstGain = 0;
  for (let i = 0; i < steps; i++) {
    log = RHO * log + Math.sqrt(1 - RHO * RHO) * normal(r, 0, SPREAD);
    if (burstLeft <= 0 && i >= nextBurst) {
      burstLeft = Math.max(1, Math.round(exponential(r, 4)));
      burstGain = uniformBetween(r, 0.08, 0.2);
      nextBurst = i + burstLeft + exponential(r, 90);
    }
    out[i] = Math.exp(log) * (burstLeft > 0 ? 1 + burstGain : 1);
    burstLeft--;
  }
  return out;
}

/** One (or a few) mail groups over whole office days, a sample a minute, from midnight. */
export function dailyMailTrace(options: DailyMailOptions = {}): LoadTrace {
  const seed = options.seed ?? DEFAULT_TRACE_SEED;
  const days = options.days ?? 1;
  const groups = options.groups ?? 1;
  const peakCores = options.peakCores ?? 5.4;
  const steps = Math.round((days * 86400) / DAILY_STEP_SECONDS);
  const workloads = Array.from({ length: groups }, (_, g): TraceWorkload => {
    const r = createRandom(deriveSeed(seed, g));
    // The first group is the one the defaults describe; the others are smaller offices.
    const peak = g === 0 ? peakCores : peakCores * uniformBetween(r, 0.5, 1);
    const shiftHours = g === 0 ? 0 : uniformBetween(r, -0.5, 0.5);
    const noise = mailNoise(r, steps);
    const demand = noise.map((n, i) => {
      const h = (((i * DAILY_STEP_SECONDS) / 3600 - shiftHours) % 24 + 24) % 24;
      return peak * officeMailShape(h) * n;
    });
    return { name: groups === 1 ? 'mail' : `mail-${g + 1}`, kind: 'group', vcpus: 1, memoryMib: 512, demand };
  });
  return {
    name: 'daily-mail',
    description:
      `${groups === 1 ? 'A mail group' : `${groups} mail groups`} over ${days} office day${days === 1 ? '' : 's'}: ` +
      `a night floor of 8 % of the peak, the day's maximum (${peakCores} cores before noise) around 09:45, a smaller wave after lunch, ` +
      `the evening's decline; correlated 6 % noise and short +8–20 % bursts (an office mail pattern, not measured data).`,
    stepSeconds: DAILY_STEP_SECONDS,
    seed,
    workloads,
  };
}

// ---------------------------------------------------------------------------------------
// planetlab-like

/**
 * The published statistics of the PlanetLab CPU traces in CloudSim (one day of 5-minute
 * samples per VM; Beloglazov & Buyya 2012, "Optimal online deterministic algorithms and
 * adaptive heuristics for energy and performance efficient dynamic consolidation of virtual
 * machines in cloud data centers"), over all samples of all VMs.
 */
export const PLANETLAB_TARGETS = { mean: 0.12, median: 0.06, p95: 0.5, p99: 0.79 } as const;

export interface PlanetLabLikeOptions {
  seed?: number;
  /** VMs. Default 200. */
  vms?: number;
  /** Days of 5-minute samples. Default 1 (288 samples per VM). */
  days?: number;
}

const PLANETLAB_STEP_SECONDS = 300;
/**
 * Lag-1 correlation of the latent load, per 5-minute step: a busy VM stays busy for about
 * half an hour to an hour (1/(1−φ) ≈ 10 steps), as the traces' jobs (measurements, crawls,
 * builds) run for that long.
 */
const PLANETLAB_PHI = 0.9;
/**
 * The share of the latent variance that is the VM's own level: PlanetLab VMs differ as much
 * as their moments do (some slices never wake, some are always busy).
 */
const PLANETLAB_LEVEL_SHARE = 0.5;
/**
 * The slope of the marginal's lower side (in logit per standard deviation). It decides how
 * idle an idle VM is (p10 ≈ 0.3 %, PlanetLab's idle slices read 0–1 %) and, with the upper
 * side fixed by p95 and p99, brings the mean to ≈ 12.2 % (a slope of 1.5 gives 12.6 %, 3 gives
 * 12.0 %: the mean lives in the upper tail).
 */
const PLANETLAB_LOWER_SLOPE = 2.5;

const logit = (p: number) => Math.log(p / (1 - p));

/**
 * The marginal: a standard normal latent z mapped to utilization by
 * u = logistic(μ + s·z + c·z²) above the median, logistic(μ + s_lo·z) below it, with μ, s and
 * c solved from the targets' median, p95 and p99, so those three hold exactly in
 * expectation. The quadratic makes the upper tail heavier than a logit-normal's: a plain
 * logit-normal through the median and p95 gives p99 ≈ 76 %, not 79 %.
 */
export function planetLabMarginal(targets = PLANETLAB_TARGETS): (z: number) => number {
  const mu = logit(targets.median);
  const z95 = normalQuantile(0.95);
  const z99 = normalQuantile(0.99);
  const a = logit(targets.p95) - mu;
  const b = logit(targets.p99) - mu;
  const c = (b - (a * z99) / z95) / (z99 * z99 - z95 * z99);
  const s = (a - c * z95 * z95) / z95;
  return (z) => logistic(z < 0 ? mu + PLANETLAB_LOWER_SLOPE * z : mu + s * z + c * z * z);
}

/** CloudSim's VM types' memory (Beloglazov & Buyya, from EC2's micro, small and high-CPU medium), MiB. */
const PLANETLAB_MEMORY_MIB = [613, 870, 1740] as const;

/**
 * N VMs over a day of 5-minute samples whose utilization, pooled, has PlanetLab's statistics.
 * Each VM's latent load is √w·level + √(1−w)·x_t with x an AR(1) started in its stationary
 * N(0, 1), so busy spells last; levels are stratified normal draws (one per 1/N slice of the
 * distribution, in random order) so any fleet, whatever the seed, spans quiet to busy VMs.
 * The pooled latent is then standard normal and the marginal maps it onto the targets.
 */
export function planetLabLikeTrace(options: PlanetLabLikeOptions = {}): LoadTrace {
  const seed = options.seed ?? DEFAULT_TRACE_SEED;
  const vms = options.vms ?? 200;
  const days = options.days ?? 1;
  const steps = Math.round((days * 86400) / PLANETLAB_STEP_SECONDS);
  const fleet = createRandom(seed);
  const order = permutation(fleet, vms);
  const marginal = planetLabMarginal();
  const levelWeight = Math.sqrt(PLANETLAB_LEVEL_SHARE);
  const wanderWeight = Math.sqrt(1 - PLANETLAB_LEVEL_SHARE);
  const innovation = Math.sqrt(1 - PLANETLAB_PHI * PLANETLAB_PHI);
  const workloads = Array.from({ length: vms }, (_, v): TraceWorkload => {
    const r = createRandom(deriveSeed(seed, v));
    const level = normalQuantile((order[v]! + uniformBetween(r, 0.001, 0.999)) / vms);
    const memoryMib = pick(r, PLANETLAB_MEMORY_MIB);
    const demand: number[] = new Array<number>(steps);
    let x = normal(r);
    for (let i = 0; i < steps; i++) {
      if (i > 0) x = PLANETLAB_PHI * x + innovation * normal(r);
      demand[i] = marginal(levelWeight * level + wanderWeight * x);
    }
    return { name: `vm-${String(v + 1).padStart(3, '0')}`, kind: 'vm', vcpus: 1, memoryMib, demand };
  });
  return {
    name: 'planetlab-like',
    description:
      `${vms} VMs of one vCPU over ${days} day${days === 1 ? '' : 's'} of 5-minute samples, each an autocorrelated series ` +
      `whose pooled utilization matches the PlanetLab traces used by CloudSim (Beloglazov & Buyya): mean 12 %, median 6 %, p95 50 %, p99 79 %.`,
    stepSeconds: PLANETLAB_STEP_SECONDS,
    seed,
    workloads,
  };
}

// ---------------------------------------------------------------------------------------
// statistics

export interface DemandStatistics {
  /** Samples counted (all workloads of the kind, all steps). */
  count: number;
  mean: number;
  median: number;
  p95: number;
  p99: number;
  max: number;
}

/**
 * The `p`-quantile (0..1) of sorted values, interpolating between neighbours (numpy's and R's
 * default, type 7), so a median of an even count is the midpoint.
 */
export function quantileOfSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const at = p * (sorted.length - 1);
  const lo = Math.floor(at);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

function describe(values: number[]): DemandStatistics {
  const sorted = Float64Array.from(values).sort();
  const list = Array.from(sorted);
  const sum = list.reduce((s, x) => s + x, 0);
  return {
    count: list.length,
    mean: list.length ? sum / list.length : Number.NaN,
    median: quantileOfSorted(list, 0.5),
    p95: quantileOfSorted(list, 0.95),
    p99: quantileOfSorted(list, 0.99),
    max: list.length ? list[list.length - 1]! : Number.NaN,
  };
}

/**
 * Mean, median, p95, p99 and max of all demand samples, per workload kind (a group's cores
 * and a VM's utilization are different units, so they are never pooled). A kind the trace
 * does not have is absent.
 */
export function traceStatistics(trace: LoadTrace): { group?: DemandStatistics; vm?: DemandStatistics } {
  const out: { group?: DemandStatistics; vm?: DemandStatistics } = {};
  for (const kind of ['group', 'vm'] as const) {
    const values = trace.workloads.filter((w) => w.kind === kind).flatMap((w) => w.demand);
    if (values.length > 0) out[kind] = describe(values);
  }
  return out;
}

/** The series' autocorrelation at `lag` (around its own mean); 0 for a constant series. */
export function autocorrelation(series: readonly number[], lag = 1): number {
  const n = series.length;
  if (n <= lag) return 0;
  const mean = series.reduce((s, x) => s + x, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    const d = series[i]! - mean;
    den += d * d;
    if (i + lag < n) num += d * (series[i + lag]! - mean);
  }
  return den === 0 ? 0 : num / den;
}
