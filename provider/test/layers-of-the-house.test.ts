// The house's floors: each folder of provider/src imports only from the floors below it, so
// the controller can stand on the host model and policy without Terraform's resources, and
// the protocol server knows nothing of libvirt. The table below is the rule; README's layout
// section says the same in words.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../src', import.meta.url));

/** What each part may import (besides itself and node/npm packages). */
const MAY_IMPORT: Record<string, readonly string[]> = {
  'rules.ts': [],
  x509: [],
  'contract.ts': ['protocol', 'schema', 'host'], // types only (checked below)
  protocol: ['contract.ts', 'x509'],
  schema: ['protocol', 'rules.ts', 'contract.ts'],
  channel: ['rules.ts'],
  policy: ['rules.ts'],
  sim: ['policy', 'rules.ts'],
  drivers: ['rules.ts', 'contract.ts'],
  host: ['drivers', 'policy', 'protocol', 'rules.ts', 'contract.ts'],
  resources: ['host', 'policy', 'drivers', 'channel', 'schema', 'protocol', 'rules.ts', 'contract.ts'],
  server: ['protocol', 'schema', 'contract.ts'],
  plan: ['host', 'policy', 'rules.ts'],
  cli: ['host', 'drivers', 'channel', 'plan', 'schema', 'protocol', 'x509', 'rules.ts', 'contract.ts', 'provider.ts'],
  // sim: `storm controller replay` runs a group's record through the simulator's replay.
  controller: ['host', 'policy', 'sim', 'drivers', 'channel', 'protocol', 'x509', 'rules.ts', 'contract.ts'],
  'provider.ts': ['resources', 'host', 'schema', 'contract.ts'],
  'main.ts': ['server', 'cli', 'protocol', 'provider.ts', 'controller'],
};

/** Files inside resources/ that are shared helpers, not resources: resources may import these. */
const RESOURCE_HELPERS = new Set(['diagnose.ts', 'file-block.ts', 'image-source.ts', 'channel-access.ts']);

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const partOf = (file: string) => relative(SRC, file).split('/')[0]!;

function imports(file: string): { spec: string; typeOnly: boolean }[] {
  const text = readFileSync(file, 'utf8');
  const out: { spec: string; typeOnly: boolean }[] = [];
  for (const m of text.matchAll(/^\s*(import|export)\s+(type\s+)?[^'"]*?from\s+'([^']+)'/gm)) out.push({ spec: m[3]!, typeOnly: Boolean(m[2]) });
  for (const m of text.matchAll(/import\('([^']+)'\)/g)) out.push({ spec: m[1]!, typeOnly: false });
  return out.filter((i) => i.spec.startsWith('.'));
}

test('every part of provider/src imports only downward', () => {
  const problems: string[] = [];
  let seen = 0;
  for (const file of files(SRC)) {
    const from = partOf(file);
    const allowed = MAY_IMPORT[from];
    if (!allowed) {
      problems.push(`${relative(SRC, file)}: part "${from}" is not in the table`);
      continue;
    }
    for (const { spec, typeOnly } of imports(file)) {
      seen++;
      const target = resolve(dirname(file), spec);
      if (!target.startsWith(SRC)) continue; // package.json and the like
      const to = partOf(target);
      if (to === from) {
        if (from === 'resources' && !RESOURCE_HELPERS.has(relative(join(SRC, 'resources'), target)) && !RESOURCE_HELPERS.has(relative(join(SRC, 'resources'), file))) {
          problems.push(`${relative(SRC, file)} imports another resource (${spec}); share through host/ or a helper`);
        }
        continue;
      }
      if (!allowed.includes(to)) problems.push(`${relative(SRC, file)} (${from}) imports ${spec} (${to})`);
      if (from === 'contract.ts' && !typeOnly) problems.push(`contract.ts imports ${spec} for more than its types`);
    }
  }
  assert.ok(seen > 150, `read ${seen} imports`);
  assert.deepEqual(problems, []);
});
