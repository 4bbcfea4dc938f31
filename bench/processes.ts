// Watches one terraform process from outside through /proc: which provider processes it
// starts, and the peak memory (VmHWM) of each and of terraform itself. Sampled every few
// milliseconds while the command runs, so a peak reached after the last sample is missed;
// bench/rpc-trace.mjs has each process report its own peak for comparison.
import { readFileSync, readdirSync } from 'node:fs';

export interface ProcessPeaks {
  /** Provider processes seen, in the order terraform started them: pid → VmHWM KiB (0 if never sampled after exec). */
  providers: Map<number, number>;
  /** terraform's own VmHWM, KiB. */
  terraformKiB: number;
}

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

function vmHwmKiB(pid: number): number | null {
  const status = read(`/proc/${pid}/status`);
  const m = status && /^VmHWM:\s+(\d+) kB/m.exec(status);
  return m ? Number(m[1]) : null;
}

function childrenOf(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const t of tasks) for (const c of (read(`/proc/${pid}/task/${t}/children`) ?? '').split(' ')) if (c.trim()) out.push(Number(c));
  return out;
}

/**
 * Samples terraform (pid) and those of its children whose command line names `marker` (the
 * provider's launcher, then the node process it execs into) until stop() is called.
 */
export function watchProcesses(pid: number, markers: readonly string[], intervalMs = 5): { stop(): ProcessPeaks } {
  const providers = new Map<number, number>();
  let terraformKiB = 0;
  const sample = () => {
    terraformKiB = Math.max(terraformKiB, vmHwmKiB(pid) ?? 0);
    for (const child of childrenOf(pid)) {
      // Read every time: between fork and exec a child still shows terraform's command line.
      const cmdline = read(`/proc/${child}/cmdline`);
      if (cmdline === null || !markers.some((m) => cmdline.includes(m))) continue;
      if (!providers.has(child)) providers.set(child, 0);
      // Only after exec into node: the launcher shell's own peak is not the provider's.
      if (cmdline.startsWith('/bin/sh') || cmdline.startsWith('sh\0')) continue;
      providers.set(child, Math.max(providers.get(child)!, vmHwmKiB(child) ?? 0));
    }
  };
  const timer = setInterval(sample, intervalMs);
  sample();
  return {
    stop() {
      clearInterval(timer);
      return { providers, terraformKiB };
    },
  };
}
