import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { renderDocs } from '../scripts/docs.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));

test('docs/ matches the schema (regenerate with npm run docs)', () => {
  for (const [path, text] of renderDocs()) {
    assert.equal(readFileSync(join(repo, path), 'utf8'), text, `${path} is stale: run npm run docs`);
  }
});

test('examples are formatted as terraform fmt writes them', async () => {
  const r = await execa('terraform', ['fmt', '-check', '-recursive', '-diff', 'examples', 'stacks/hcl'], { cwd: repo, reject: false });
  assert.equal(r.exitCode, 0, r.stdout + r.stderr);
});
