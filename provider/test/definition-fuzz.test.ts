// The definition parser under fast-check: generated definitions, definitions mutated at random
// (as text and as bytes) and token soup, fed to the validator and to the channel's verdict (what
// the catalog site's loader and `storm validate` ask). Whatever comes in: no exception, no case
// past a second, and every refusal a message at a line. A failure prints fast-check's seed and
// the shrunk input; reproduce with FC_SEED=<seed>, then keep the input in
// fixtures/appliances/corpus/ with its entry in expected.json.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { applyByteEdits, applyEdits, byteEdit, textEdit, tokenOf } from './lib/mutations.ts';
import { formatProblems, parseApplianceDefinition, serializeApplianceDefinition } from '../src/channel/definition.ts';
import { checkChannelFiles } from '../src/channel/publish.ts';
import type { ApplianceDefinition, ParseResult } from '../src/channel/types.ts';
import { NAME_PATTERN, VERSION_PATTERN } from '../src/rules.ts';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, 'fixtures', 'appliances');
const seeds = ['valid', 'invalid', 'corpus'].flatMap((kind) =>
  readdirSync(join(fixtures, kind))
    .filter((f) => f.endsWith('.xml'))
    .map((f) => readFileSync(join(fixtures, kind, f))),
);

const firewall = readFileSync(join(fixtures, 'valid', 'firewall.xml'));

/** The code points a definition may not hold (the reader's rule, restated from the README). */
function unpublishable(s: string): boolean {
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if ((cp < 0x20 && cp !== 0x9 && cp !== 0xa && cp !== 0xd) || (cp >= 0x7f && cp <= 0x9f)) return true;
    if ((cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0xe000 && cp <= 0xf8ff) || cp >= 0xf0000) return true;
    if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) return true;
  }
  return false;
}

const RUNS = Number(process.env['FC_RUNS'] ?? 300);
const SEED = process.env['FC_SEED'] === undefined ? undefined : Number(process.env['FC_SEED']);
const params = { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) };

/** The promises every input gets, whatever it is. */
function holds(input: string | Uint8Array): ParseResult {
  const started = performance.now();
  const r = parseApplianceDefinition(input, 'fuzz.xml');
  const took = performance.now() - started;
  assert.ok(took < 1000, `took ${took.toFixed(0)} ms`);
  if (!r.ok) {
    assert.ok(r.problems.length >= 1, 'a refusal says why');
    const text = typeof input === 'string' ? input : Buffer.from(input).toString('latin1');
    const lines = text.split(/\r\n?|\n/).length;
    for (const p of r.problems) {
      assert.ok(p.message.length > 0, 'a message');
      assert.doesNotMatch(p.message, /[\r\n]/, 'one line: whatever the input held is quoted, not pasted');
      // The size cap is the one problem about the document as a whole; fuzzed inputs are far below it.
      assert.ok(p.line !== null && p.line >= 1 && p.line <= lines, `a line within the document: ${JSON.stringify(p)}`);
      assert.ok(p.column === null || p.column >= 1, `a column: ${JSON.stringify(p)}`);
    }
  }
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  const verdict = checkChannelFiles([{ file: 'fuzz.xml', bytes, mtime: new Date(0) }]);
  for (const line of verdict.failures.join('\n').split('\n').filter((l) => l !== '')) assert.match(line, /^fuzz\.xml:\d+(:\d+)?: \//, line);
  return r;
}

// Strings that matter to an XML reader, an encoding check and the feed's placeholders.
const TOKENS = [
  '<', '>', '&', ';', '"', "'", '=', '/', '?', '!', '[', ']', '-', ' ', '\n', '\r', '\t', '\r\n',
  '<x>', '</x>', '<x/>', '</', '/>', '<!--', '-->', '--', '<![CDATA[', ']]>', '<?', '?>', '<?xml ', "<?xml version='1.0'?>",
  '<!DOCTYPE', '<!ENTITY', '<!', '&amp;', '&lt;', '&#', '&#x', '&#x10FFFF;', '&#0;', '&nbsp;', '&#xE000;',
  "<appliance version='1.0'>", '</appliance>', '<hardware>', '</hardware>', '<dependency>', '</dependency>',
  '<name>', '</name>', '<version>index.html</version>', '<provides>', "<disk name='a' type='swap' size='1'/>",
  '\u0000', '\u0007', '\u0085', '\u00e9', '\uE000', '\uE0000\uE001', '\uFFFE', '\uFEFF', '\uD800', '\uDC00', '\u{10FFFD}', '\u2028', '☃', '𝄞',
];

const token = tokenOf(TOKENS);
const edit = textEdit(TOKENS, 40);

const seed = fc.constantFrom(...seeds);

describe('fuzzing the definition parser and the channel verdict', () => {
  test('definitions mutated as text: no exception, no hang, a line for every refusal', () => {
    fc.assert(
      fc.property(seed, fc.array(edit, { minLength: 1, maxLength: 8 }), (bytes, edits) => {
        const text = applyEdits(Buffer.from(bytes).toString('utf8'), edits);
        holds(text);
        holds(Buffer.from(text, 'utf8'));
      }),
      params,
    );
  });

  test('definitions mutated as bytes (and re-encoded): the encoding check says where, or the text is read', () => {
    fc.assert(
      fc.property(seed, fc.array(byteEdit, { minLength: 1, maxLength: 6 }), fc.constantFrom('utf8', 'utf16le', 'latin1'), (bytes, edits, encoding) => {
        const recoded = encoding === 'utf8' ? bytes : Buffer.from(Buffer.from(bytes).toString('utf8'), encoding);
        holds(applyByteEdits(recoded, edits));
      }),
      params,
    );
  });

  test('token soup', () => {
    fc.assert(
      fc.property(fc.array(token, { maxLength: 60 }), (tokens) => {
        holds(tokens.join(''));
      }),
      params,
    );
  });

  // Generated definitions: any text in the free-text fields, any name and version of the patterns.
  const text = (unit: 'grapheme' | 'binary') => fc.string({ unit, minLength: 1, maxLength: 30 });
  const definition = (unit: 'grapheme' | 'binary'): fc.Arbitrary<ApplianceDefinition> =>
    fc
      .record({
        name: fc.stringMatching(NAME_PATTERN),
        version: fc.stringMatching(VERSION_PATTERN),
        label: text(unit),
        description: text(unit),
        cmdline: fc.string({ unit, maxLength: 30 }),
        provides: fc.uniqueArray(fc.stringMatching(NAME_PATTERN), { maxLength: 5 }),
        dependencies: fc.uniqueArray(fc.record({ name: fc.stringMatching(NAME_PATTERN), version: fc.option(fc.stringMatching(VERSION_PATTERN), { nil: null }) }), {
          maxLength: 5,
          selector: (d) => d.name,
        }),
      })
      .map(({ cmdline, ...g }) => {
        const base = parseApplianceDefinition(firewall);
        if (!base.ok) throw new Error(`the firewall fixture must be valid:\n${formatProblems(base.problems)}`);
        return {
          ...base.definition,
          ...g,
          boot: base.definition.boot && { ...base.definition.boot, cmdline },
          // Plain objects: fast-check's records have no prototype, and deepEqual would notice.
          dependencies: g.dependencies.filter((d) => d.name !== g.name).map((d) => ({ name: d.name, version: d.version })),
        };
      });

  test('generated definitions of ordinary text read back as written (trimmed), unless their version is reserved', () => {
    fc.assert(
      fc.property(definition('grapheme'), (def) => {
        const r = holds(serializeApplianceDefinition(def));
        const trimmed = { ...def, label: def.label.trim(), description: def.description.trim(), boot: def.boot && { ...def.boot, cmdline: def.boot.cmdline.trim() } };
        const blank = trimmed.label === '' || trimmed.description === '';
        const refusedText = unpublishable(def.label + def.description + def.boot!.cmdline);
        if (def.version.toLowerCase() === 'index.html' || blank || refusedText) assert.equal(r.ok, false);
        else {
          if (!r.ok) assert.fail(formatProblems(r.problems));
          assert.deepEqual(r.definition, trimmed);
        }
      }),
      params,
    );
  });

  test('generated definitions with any code points at all: read, or refused at a line', () => {
    fc.assert(
      fc.property(definition('binary'), (def) => {
        holds(serializeApplianceDefinition(def));
      }),
      params,
    );
  });

  test('channels of mutated definitions: the verdict never throws, and names every failing file at a line', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(seed, fc.array(edit, { maxLength: 3 })), { minLength: 1, maxLength: 6 }), (files) => {
        const verdict = checkChannelFiles(files.map(([bytes, edits], i) => ({ file: `f${i}.xml`, bytes: Buffer.from(applyEdits(Buffer.from(bytes).toString('utf8'), edits)), mtime: new Date(0) })));
        for (const line of verdict.failures.join('\n').split('\n').filter((l) => l !== '')) assert.match(line, /^f\d+\.xml:\d+(:\d+)?: \//, line);
        if (verdict.failures.length > 0) assert.equal(verdict.definitions.length, 0);
      }),
      params,
    );
  });
});
