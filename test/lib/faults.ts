// What the fault-injection suite counts and reports: everything storm makes on a server
// (domains, volumes, seeds, records, networks), before a fault and after the run that follows
// it, and one outcome row per fault, gathered into a table by scripts/fault-table.ts.
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_DIR, virsh } from './terraform.ts';

export const OUTCOMES_FILE = join(REPO_DIR, 'test-results', 'faults.jsonl');

export interface Inventory {
  domains: string[];
  volumes: string[];
  networks: string[];
}

function names(text: string): string[] {
  return text.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter(Boolean).sort();
}

/** What libvirt on `uri` holds now: every domain and network, every volume of storm's pool. */
export async function inventory(uri: string): Promise<Inventory> {
  const [domains, volumes, networks] = await Promise.all([
    virsh(uri, 'list', '--all', '--name'),
    virsh(uri, 'vol-list', 'storm'),
    virsh(uri, 'net-list', '--all', '--name'),
  ]);
  if (domains.exitCode !== 0 || networks.exitCode !== 0) throw new Error(`inventory of ${uri}: ${domains.stderr}${networks.stderr}`);
  // No pool (yet, or any more) holds no volumes.
  return { domains: names(domains.stdout), volumes: volumes.exitCode === 0 ? names(volumes.stdout) : [], networks: names(networks.stdout) };
}

/** What `after` holds that `before` did not, as "kind name" (seeds and records are volumes). */
export function leaked(before: Inventory, after: Inventory): string[] {
  const extra = (kind: keyof Inventory) => after[kind].filter((n) => !before[kind].includes(n)).map((n) => `${kind.replace(/s$/, '')} ${n}`);
  return [...extra('domains'), ...extra('volumes'), ...extra('networks')];
}

export interface FaultOutcome {
  fault: string;
  /** The first error line the user saw from the interrupted run ('' when none: the run survived the fault). */
  said: string;
  /** The first error the user read (summary and detail) named the server; null when the user was told nothing (terraform itself was killed). */
  namedServer: boolean | null;
  /** The next apply succeeded and a plan after it showed no changes. */
  converged: boolean;
  /** Objects left over after everything was destroyed (should be none). */
  leaks: string[];
  /** Servers found holding more than they may give, with numbers ('' when none). */
  overCommitted: string;
}

export function recordFault(outcome: FaultOutcome): void {
  mkdirSync(join(REPO_DIR, 'test-results'), { recursive: true });
  appendFileSync(OUTCOMES_FILE, JSON.stringify(outcome) + '\n');
}

/** The first "Error: ..." summary in terraform's output and its detail (without the "with"/"on" lines), unwrapped. */
export function firstError(output: string): string {
  const lines = output.split('\n').map((l) => l.replace(/^[│╷╵ ]+/, '').trim());
  const i = lines.findIndex((l) => l.startsWith('Error:'));
  if (i < 0) return '';
  const detail: string[] = [];
  for (const l of lines.slice(i + 1)) {
    if (/^(Error|Warning):/.test(l)) break;
    if (!l || /^(with |on \S+ line \d+|\d+:)/.test(l)) {
      if (detail.length) break;
      continue;
    }
    detail.push(l);
  }
  return `${lines[i]} — ${detail.join(' ')}`.slice(0, 400);
}
