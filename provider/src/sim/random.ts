// Seeded randomness for the simulator's load traces. Math.random cannot be seeded, and a
// comparison of policies' energy is only worth something if every policy meets the very same
// load, run after run and machine after machine. So: xoshiro128** (Blackman & Vigna, 2018),
// seeded through splitmix32, all in 32-bit integer arithmetic (Math.imul, >>>), which is
// bit-exact in every JavaScript engine. The distributions on top use only +, *, / and
// Math.sqrt (correctly rounded by IEEE 754) and Math.log / Math.cos (V8's own fdlibm port, not
// the platform's libm), so a seed gives the same numbers on every platform Node runs on.

/** A source of random numbers; every draw advances it. */
export interface Random {
  /** The next 32 random bits, as an unsigned integer. */
  nextUint32(): number;
  /** Uniform in [0, 1), 32 bits of resolution. */
  uniform(): number;
}

/** splitmix32: spreads an arbitrary (even tiny or sequential) seed into well-mixed state words. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

const rotl = (x: number, k: number) => (x << k) | (x >>> (32 - k));

/**
 * A xoshiro128** generator for `seed` (any number; its integer part mod 2^32 is used, so
 * seeds differing only in a fraction are the same seed).
 */
export function createRandom(seed: number): Random {
  const init = { s: Math.trunc(seed) | 0 };
  let a = splitmix32(init);
  let b = splitmix32(init);
  let c = splitmix32(init);
  let d = splitmix32(init);
  // xoshiro's one forbidden state is all zeros; splitmix32 of four steps cannot give it, but a
  // guard costs nothing.
  if ((a | b | c | d) === 0) a = 1;
  const nextUint32 = (): number => {
    const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return result;
  };
  return { nextUint32, uniform: () => nextUint32() / 4294967296 };
}

/**
 * A seed for the `index`-th independent stream under `seed`: one VM's series then does not
 * depend on how many draws the VMs before it made.
 */
export function deriveSeed(seed: number, index: number): number {
  const state = { s: (Math.trunc(seed) | 0) ^ Math.imul(index + 1, 0x27d4eb2d) };
  splitmix32(state);
  return splitmix32(state);
}

/** Uniform in [low, high). */
export const uniformBetween = (r: Random, low: number, high: number): number => low + (high - low) * r.uniform();

/** One of `items`, each equally likely. */
export function pick<T>(r: Random, items: readonly T[]): T {
  if (items.length === 0) throw new Error('pick: no items');
  return items[Math.floor(r.uniform() * items.length)]!;
}

/**
 * Standard normal, by Box–Muller (one of the pair is used: simpler state, and the traces are
 * far from needing the speed). 1 − u keeps the logarithm's argument in (0, 1].
 */
export function normal(r: Random, mean = 0, sd = 1): number {
  const u = 1 - r.uniform();
  const v = r.uniform();
  return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Log-normal: exp of a normal with these parameters (so `mu` is the log of the median). */
export const logNormal = (r: Random, mu: number, sigma: number): number => Math.exp(normal(r, mu, sigma));

/** Exponential with this mean (waiting times between bursts, their lengths). */
export const exponential = (r: Random, mean: number): number => -mean * Math.log(1 - r.uniform());

/** A random order of 0..n−1 (Fisher–Yates). */
export function permutation(r: Random, n: number): number[] {
  const out = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r.uniform() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/**
 * The standard normal's quantile function Φ⁻¹(p), by Acklam's rational approximation
 * (relative error below 1.2e-9, far under what a load trace can notice). Used to place
 * stratified draws: n values at Φ⁻¹((k + u)/n) cover the distribution evenly, so a fleet of
 * 200 VMs has the intended spread of levels whatever the seed.
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`normalQuantile: p must be in (0, 1), got ${p}`);
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  const tail = (q: number) => (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  if (p < low) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - low) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}
