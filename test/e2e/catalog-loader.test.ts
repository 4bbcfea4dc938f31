/// <reference types="astro/client" />
// The catalog site's content loader in-process (no astro build per case): the Astro loader object
// driven with a stand-in context over real directories, and its verdict (checkChannel) under
// fast-check with mutated definitions. Whatever the files hold: the loader throws only its own
// ChannelDefinitionError, every failure line names a file and a line, nothing is stored unless
// everything passed, and what is stored is the file byte for byte and fits the site's zod schema.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { LoaderContext } from 'astro/loaders';
import fc from 'fast-check';
import { ChannelDefinitionError, applianceLoader, checkChannel, pathCollisions } from '../../catalog-site/src/lib/appliance-loader.ts';
import { publishedApplianceSchema } from '../../catalog-site/src/lib/schema.ts';

const fixtures = fileURLToPath(new URL('../../provider/test/fixtures/appliances/', import.meta.url));
const RUNS = Number(process.env['FC_RUNS'] ?? 200);

interface Stored {
  id: string;
  data: Record<string, unknown>;
  body?: string;
}

/** Runs the loader over `dir` with a stand-in for what Astro gives it; what it stored, or what it threw. */
async function load(dir: string): Promise<{ stored: Stored[]; warnings: string[]; error: unknown }> {
  const stored: Stored[] = [];
  const warnings: string[] = [];
  // Only what the loader uses; the rest of Astro's context has no part in this test.
  const context = {
    store: { clear: () => stored.splice(0), set: (e: Stored) => (stored.push(e), true) },
    parseData: async ({ data }: { id: string; data: Record<string, unknown> }) => publishedApplianceSchema.parse(data),
    logger: { warn: (m: string) => warnings.push(m), info: () => {} },
    generateDigest: (s: string) => String(s.length),
    config: { root: new URL(`file://${dir}/`) },
  } as unknown as LoaderContext;
  try {
    await applianceLoader({ directory: dir }).load(context);
    return { stored, warnings, error: null };
  } catch (error) {
    return { stored, warnings, error };
  }
}

describe('the catalog site loader, in-process', () => {
  let work: string;
  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'storm-loader-'));
  });
  after(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('a valid channel is stored byte for byte, and fits the zod schema', async () => {
    const dir = path.join(work, 'valid');
    for (const f of await readdir(path.join(fixtures, 'valid'))) {
      await mkdir(path.join(dir, f.replace('.xml', '')), { recursive: true });
      await writeFile(path.join(dir, f.replace('.xml', ''), 'appliance.xml'), await readFile(path.join(fixtures, 'valid', f)));
    }
    const { stored, error } = await load(dir);
    assert.equal(error, null);
    assert.equal(stored.length, 3);
    for (const e of stored) {
      const file = path.join(dir, String(e.data['source']));
      assert.ok(Buffer.from(e.body ?? '', 'utf8').equals(await readFile(file)), `${e.id} byte for byte`);
    }
  });

  test('each file of the corpus fails the load with its own ChannelDefinitionError, lines and all, storing nothing', async () => {
    for (const f of (await readdir(path.join(fixtures, 'corpus'))).filter((n) => n.endsWith('.xml'))) {
      const dir = path.join(work, 'corpus', f.replace('.xml', ''));
      await mkdir(path.join(dir, 'a'), { recursive: true });
      await writeFile(path.join(dir, 'a', 'appliance.xml'), await readFile(path.join(fixtures, 'corpus', f)));
      const { stored, error } = await load(dir);
      assert.ok(error instanceof ChannelDefinitionError, `${f}: ${String(error)}`);
      assert.equal(stored.length, 0, f);
      const lines = error.message.split('\n').slice(1);
      assert.ok(lines.length >= 1, f);
      for (const line of lines) assert.match(line, /^\S+appliance\.xml:\d+(:\d+)?: \//, `${f}: ${line}`);
    }
  });

  test('a cycle across files is refused, named, at the dependency\'s line', async () => {
    const dir = path.join(work, 'cycle');
    const firewall = await readFile(path.join(fixtures, 'valid', 'firewall.xml'), 'utf8');
    const named = (name: string, dep: string) => firewall.replace('<name>firewall</name>', `<name>${name}</name>`).replace('</appliance>', `  <dependency>${dep}</dependency>\n</appliance>`);
    for (const [name, dep] of [['a', 'b'], ['b', 'c:2.1'], ['c', 'a']] as const) {
      await mkdir(path.join(dir, name), { recursive: true });
      await writeFile(path.join(dir, name, 'appliance.xml'), named(name, dep));
    }
    const { error } = await load(dir);
    assert.ok(error instanceof ChannelDefinitionError);
    assert.match(error.message, /a\/appliance\.xml:18: \/appliance\/dependency: dependency cycle: a 2\.1 → b 2\.1 → c 2\.1 → a 2\.1; /);
  });

  test('site paths: a file that would be a folder, or two files one on a case-insensitive disk, is named', () => {
    assert.deepEqual(pathCollisions([{ name: 'a', version: '1.0' }, { name: 'b', version: '1.0' }]), []);
    assert.deepEqual(
      pathCollisions([{ name: 'a', version: 'index.html' }]).map((c) => c.message),
      ['appliances/a/index.html would be both a file and a folder of the site'],
    );
    assert.deepEqual(
      pathCollisions([{ name: 'a', version: '1.0A' }, { name: 'a', version: '1.0a' }]).map((c) => c.message),
      ['appliances/a/1.0a/appliance.xml and appliances/a/1.0A/appliance.xml are one file on a case-insensitive disk'],
    );
  });

  test('fuzzed: the verdict on mutated channels never throws, and every failure names its file and line', async () => {
    const seeds = await Promise.all(
      ['valid', 'invalid', 'corpus'].flatMap(async (kind) =>
        Promise.all((await readdir(path.join(fixtures, kind))).filter((f) => f.endsWith('.xml')).map((f) => readFile(path.join(fixtures, kind, f)))),
      ),
    ).then((lists) => lists.flat());
    const edit = fc.record({ at: fc.nat(), cut: fc.nat({ max: 30 }), insert: fc.oneof(fc.constantFrom('<', '>', '&', '</x>', '<x/>', ']]>', '\uE000', '\u0085', '<version>INDEX.html</version>', '<dependency>f0</dependency>'), fc.string({ maxLength: 6 })) });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(...seeds), fc.array(edit, { maxLength: 4 })), { minLength: 1, maxLength: 5 }), (files) => {
        const verdict = checkChannel(
          files.map(([bytes, edits], i) => {
            let t = bytes.toString('utf8');
            for (const e of edits) {
              const at = e.at % (t.length + 1);
              t = t.slice(0, at) + e.insert + t.slice(at + e.cut);
            }
            return { file: `/channel/f${i}/appliance.xml`, bytes: Buffer.from(t), mtime: new Date(0) };
          }),
          (file) => file,
        );
        for (const line of verdict.failures.join('\n').split('\n').filter((l) => l !== '')) assert.match(line, /^\/channel\/f\d+\/appliance\.xml:\d+(:\d+)?: \//, line);
        if (verdict.failures.length > 0) assert.equal(verdict.definitions.length, 0);
        for (const d of verdict.definitions) publishedApplianceSchema.parse({ definition: d.definition, source: d.file, definitionSha256: d.definitionSha256, published: d.mtime, download: d.download });
      }),
      { numRuns: RUNS },
    );
  });
});
