// The XSD and the JSON Schema are written from the element table; these keep the committed XSD
// in step with it and the pattern translation honest.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { definitionJsonSchema, definitionXsd } from '../src/channel/definition.ts';
import { xsdPattern } from '../src/channel/definition/xsd.ts';
import { NAME_PATTERN, SHA256_PATTERN, VERSION_PATTERN } from '../src/rules.ts';
import { XSD_FILE } from '../scripts/definition-xsd.ts';

describe('schemas written from the element table', () => {
  test('the committed appliance-definition.xsd is what the table says', () => {
    assert.equal(readFileSync(XSD_FILE, 'utf8'), definitionXsd(), 'stale: run npx tsx provider/scripts/definition-xsd.ts and commit the result');
  });

  test('names, versions and checksums are the shared rules, in both schemas', () => {
    const defs = definitionJsonSchema()['$defs'] as Record<string, { pattern: string }>;
    assert.equal(defs['name']!.pattern, NAME_PATTERN.source);
    assert.equal(defs['version']!.pattern, VERSION_PATTERN.source);
    assert.equal(defs['sha256']!.pattern, SHA256_PATTERN.source);
    assert.ok(definitionXsd().includes(`<xs:pattern value="${xsdPattern(NAME_PATTERN)}"/>`));
  });

  test('a JavaScript pattern becomes an anchored-by-definition XSD pattern, or is refused', () => {
    assert.equal(xsdPattern(/^[a-z0-9-]+$/), '[a-z0-9\\-]+');
    assert.equal(xsdPattern(/^https?:\/\/[^\s]*$/), 'https?://\\S*');
    assert.throws(() => xsdPattern(/^(?=a)b$/), /XSD patterns lack/);
    assert.throws(() => xsdPattern(/^a+?$/), /XSD patterns lack/);
    assert.throws(() => xsdPattern(/^a$/i), /XSD patterns lack/);
  });
});
