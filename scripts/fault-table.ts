// Prints the fault-injection suite's outcomes (test-results/faults.jsonl) as a table:
// one row per fault, what the user was told, and whether the next apply converged cleanly.
import { existsSync, readFileSync } from 'node:fs';
import { OUTCOMES_FILE, type FaultOutcome } from '../test/lib/faults.ts';

if (!existsSync(OUTCOMES_FILE)) {
  console.log('fault table: no outcomes were recorded (did the suite run?)');
  process.exit(0);
}
const rows = readFileSync(OUTCOMES_FILE, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as FaultOutcome);
const cell = (s: string) => s.replace(/\|/g, '\\|');
console.log('\n| fault | what the user saw | names the server | next apply converged | leaks after destroy | over-committed |');
console.log('|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(`| ${cell(r.fault)} | ${cell(r.namedServer === null ? '(nothing: terraform itself was killed)' : r.said || '(no error: the run rode it out)')} | ${r.namedServer === null ? 'n/a' : r.namedServer ? 'yes' : 'NO'} | ${r.converged ? 'yes' : 'NO'} | ${r.leaks.length ? cell(r.leaks.join(', ')) : 'none'} | ${r.overCommitted ? cell(r.overCommitted) : 'no'} |`);
}
const bad = rows.filter((r) => r.namedServer === false || !r.converged || r.leaks.length || r.overCommitted);
console.log(`\n${rows.length} fault(s), ${bad.length} with a bad outcome`);
