// `storm controller report`: CPU-seconds per instance and per group over a time range, from the
// samples the rounds kept (the paper's future work: accounting). CSV, one row per subject.
import { CPU_SECONDS, GROUP_CPU_SECONDS } from './sampler.ts';
import type { ControllerStore } from './store.ts';

const csvField = (text: string) => (/[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text);

export async function accountingCsv(store: ControllerStore, from: number, to: number): Promise<string> {
  const [groups, instances] = await Promise.all([store.sumSamples(GROUP_CPU_SECONDS, from, to), store.sumSamples(CPU_SECONDS, from, to)]);
  const span = [new Date(from).toISOString(), new Date(to).toISOString()];
  const rows = (kind: string, sums: typeof groups) => sums.map((s) => [kind, csvField(s.subject), s.total.toFixed(3), String(s.count), ...span].join(','));
  return ['kind,name,cpu_seconds,samples,from,to', ...rows('group', groups), ...rows('instance', instances)].join('\n') + '\n';
}
