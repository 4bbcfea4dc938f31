// The four descriptions of the appliance definition agree on every file of the test corpus: the
// validator (parseApplianceDefinition), the XSD the site publishes (judged by libxml2's xmllint),
// the JSON Schema (judged by ajv) and the catalog site's zod schema. XSD and the JSON Schema are
// written from the element table, zod by hand: this is where a rule added to one and not the
// others shows. JSON Schema and zod describe the parsed definition, so they judge the validator's
// output; the XSD judges the file itself, and refuses whatever the validator refuses, except for
// the rules XSD 1.0 cannot state, each listed below with why (and each checked still to differ,
// so the list cannot outlive its reasons).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { definitionJsonSchema, formatProblems, parseApplianceDefinition } from '../src/channel/definition.ts';
import { definitionSchema } from '../../catalog-site/src/lib/schema.ts';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, 'fixtures', 'appliances');
const xsdPath = join(here, '..', 'src', 'channel', 'appliance-definition.xsd');

// Attacks are for our reader only: no other parser is handed an entity bomb.
const ATTACKS = new Set(['invalid/billion-laughs.xml', 'invalid/xxe.xml']);

const ENCODING = 'storm reads UTF-8 only (what it publishes is the file byte for byte); XSD does not constrain the encoding, and libxml2 decodes this one';
const NEVER_TEXT = 'storm refuses characters that are never text (private use: the site\'s own placeholders; C1 controls: text decoded in the wrong encoding; noncharacters); XSD\'s xs:token takes any XML character';
const COUNT = 'storm bounds how many of an element one definition may hold; the order-free XSD 1.0 content model (xs:choice, unbounded) cannot count one element among others';
const XML_1_1 = 'storm reads XML 1.0, which every reader of the published file can; XSD does not constrain the XML version';
const RESERVED = 'a version that is the site\'s own file name, compared ignoring case: a negative rule XSD patterns cannot say';

/** Files the validator refuses and the XSD accepts, and why XSD 1.0 cannot refuse them. */
const XSD_CANNOT_SAY: Record<string, string> = {
  'corpus/latin1-declared.xml': ENCODING,
  'corpus/windows-1252-declared.xml': ENCODING,
  'corpus/utf16le-bom.xml': ENCODING,
  'corpus/utf16be-no-bom.xml': ENCODING,
  'corpus/xml-1.1.xml': XML_1_1,
  'corpus/label-noncharacter.xml': NEVER_TEXT,
  'corpus/label-private-use.xml': NEVER_TEXT,
  'corpus/label-private-use-reference.xml': NEVER_TEXT,
  'corpus/label-private-use-plane-16.xml': NEVER_TEXT,
  'corpus/label-private-use-out-of-range.xml': NEVER_TEXT,
  'corpus/label-c1-control.xml': NEVER_TEXT,
  'corpus/too-many-dependencies.xml': COUNT,
  'corpus/too-many-provides.xml': COUNT,
  'corpus/too-many-disks.xml': COUNT,
  'corpus/version-index-html.xml': RESERVED,
  'corpus/version-index-html-upper.xml': RESERVED,
};

function corpus(): string[] {
  const files: string[] = [];
  for (const dir of ['paper', 'valid', 'invalid', 'corpus']) {
    for (const f of readdirSync(join(fixtures, dir)).sort()) if (f.endsWith('.xml')) files.push(`${dir}/${f}`);
  }
  return files;
}

const hasXmllint = spawnSync('xmllint', ['--version']).status === 0;
const work = mkdtempSync(join(tmpdir(), 'storm-agree-'));
after(() => rmSync(work, { recursive: true, force: true }));

function xsdAccepts(bytes: Buffer): { ok: boolean; output: string } {
  const file = join(work, 'appliance.xml');
  writeFileSync(file, bytes);
  // --nonet: a fixture gone wrong must not make xmllint fetch anything.
  const r = spawnSync('xmllint', ['--noout', '--nonet', '--schema', xsdPath, file], { encoding: 'utf8' });
  return { ok: r.status === 0, output: r.stderr };
}

const ajv = new Ajv2020({ allErrors: true, strict: false });
const jsonSchemaAccepts = ajv.compile(definitionJsonSchema());

describe('the validator, the XSD, the JSON Schema and zod agree on the corpus', { skip: hasXmllint ? false : 'xmllint not installed (apt-get install libxml2-utils)' }, () => {
  test("the paper's Figure 2, as printed, is valid to all four", () => {
    const bytes = readFileSync(join(fixtures, 'paper', 'figure-2.xml'));
    const r = parseApplianceDefinition(bytes, 'figure-2.xml');
    assert.ok(r.ok, r.ok ? '' : formatProblems(r.problems));
    assert.ok(xsdAccepts(bytes).ok, xsdAccepts(bytes).output);
    assert.ok(jsonSchemaAccepts(r.definition), ajv.errorsText(jsonSchemaAccepts.errors));
    assert.ok(definitionSchema.safeParse(r.definition).success);
  });

  for (const file of corpus()) {
    test(file, () => {
      const bytes = readFileSync(join(fixtures, file));
      const r = parseApplianceDefinition(bytes, file);
      if (r.ok) {
        assert.ok(jsonSchemaAccepts(r.definition), `JSON Schema refuses what the validator made of ${file}: ${ajv.errorsText(jsonSchemaAccepts.errors)}`);
        const z = definitionSchema.safeParse(r.definition);
        assert.ok(z.success, `zod refuses what the validator made of ${file}: ${z.success ? '' : z.error.message}`);
      }
      if (ATTACKS.has(file)) {
        assert.equal(r.ok, false);
        return;
      }
      const xsd = xsdAccepts(bytes);
      if (r.ok) assert.ok(xsd.ok, `the validator accepts ${file}, the XSD refuses it:\n${xsd.output}`);
      else if (file in XSD_CANNOT_SAY) assert.ok(xsd.ok, `${file} is listed as beyond XSD (${XSD_CANNOT_SAY[file]}), but the XSD refuses it too: take it off the list`);
      else assert.equal(xsd.ok, false, `the validator refuses ${file} (${formatProblems(r.problems).split('\n')[0]}), the XSD accepts it`);
    });
  }
});
