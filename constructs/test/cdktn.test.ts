// CDK Terrain (cdktn), the maintained fork of cdktf (archived 2025-12-10), is a drop-in: the
// same constructs with the library imported as `cdktn`. This test builds that copy of the
// constructs — bindings regenerated for cdktn, every `from 'cdktf'` in the L2 sources and the
// test apps renamed — in a scratch directory, synthesizes every test app with both libraries,
// and expects the same Terraform configuration: what a user who moves gets.
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as cdktf from 'cdktf';
import * as cdktn from 'cdktn';
import type { Construct } from 'constructs';
import { GENERATED_DIR, renderBindings } from '../scripts/bindings.ts';
import { APPS } from './apps.ts';
import { ownTmpdir } from './tmpdir.ts';

ownTmpdir();

const repo = fileURLToPath(new URL('../..', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'storm-cdktn-'));
type Apps = Readonly<Record<string, (stack: Construct) => unknown>>;
let appsOnCdktn: Apps;

/** The import rewrite a user makes to move: the library's name, nothing else. */
const toCdktn = (source: string) => source.replace(/from 'cdktf((?:\/[^']*)?)';/g, "from 'cdktn$1';");

const walk = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));

before(async () => {
  // The copy resolves packages and the provider's modules (rules, validators) from the repository.
  symlinkSync(join(repo, 'node_modules'), join(scratch, 'node_modules'));
  symlinkSync(join(repo, 'provider'), join(scratch, 'provider'));
  cpSync(join(repo, 'constructs', 'package.json'), join(scratch, 'constructs', 'package.json'), { recursive: true });
  const sources = [...walk(join(repo, 'constructs', 'src')).filter((f) => !f.includes(`/${GENERATED_DIR}/`)), join(repo, 'constructs', 'test', 'apps.ts')];
  for (const file of sources) {
    const target = join(scratch, relative(repo, file));
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, toCdktn(readFileSync(file, 'utf8')));
  }
  for (const [path, text] of await renderBindings('cdktn')) {
    mkdirSync(dirname(join(scratch, path)), { recursive: true });
    writeFileSync(join(scratch, path), text);
  }
  ({ APPS: appsOnCdktn } = (await import(pathToFileURL(join(scratch, 'constructs', 'test', 'apps.ts')).href)) as { APPS: Apps });
});

after(() => rmSync(scratch, { recursive: true, force: true }));

test('the cdktn copy imports no cdktf', () => {
  const leftovers = walk(join(scratch, 'constructs')).filter((f) => /from 'cdktf/.test(readFileSync(f, 'utf8')));
  assert.deepEqual(leftovers, []);
});

for (const name of Object.keys(APPS)) {
  test(`${name}: cdktn synthesizes what cdktf does`, () => {
    const onCdktf = new cdktf.TerraformStack(cdktf.Testing.app(), name);
    APPS[name]!(onCdktf);
    const onCdktn = new cdktn.TerraformStack(cdktn.Testing.app(), name);
    appsOnCdktn[name]!(onCdktn);
    const elements = onCdktn.node.findAll();
    assert.ok(elements.some((c) => c instanceof cdktn.TerraformResource) && !elements.some((c) => c instanceof cdktf.TerraformElement), 'the copy built its resources with cdktf');
    const expected = JSON.parse(cdktf.Testing.synth(onCdktf, true)) as unknown;
    assert.deepEqual(JSON.parse(cdktn.Testing.synth(onCdktn, true)) as unknown, expected);
  });
}
