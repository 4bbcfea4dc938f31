// The XML Schema of the definition, written from the element table for editors and for xmllint.
// The catalog site publishes it as generated here; the committed appliance-definition.xsd next
// to this folder is the same text (a test fails when it is stale; provider/scripts/definition-xsd.ts
// rewrites it). XSD 1.0 says less than the checker does; the header lists what it leaves out.

import {
  APPLIANCE,
  RESERVED_VERSIONS,
  type AttributeRule,
  type ElementRule,
  type UniqueRule,
  VALUE_RULES,
  type ValueRule,
  type XsdRestriction,
} from './elements.ts';
import { MAX_DEFINITION_BYTES } from './encoding.ts';

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * A JavaScript pattern as an XSD pattern: XSD patterns are implicitly anchored, know no "\/",
 * and want a literal "-" in a class escaped. Refuses what XSD regular expressions lack, so a new
 * pattern cannot be silently mistranslated.
 */
export function xsdPattern(re: RegExp): string {
  if (/\(\?|\\[bB1-9]|[*+?}]\?/.test(re.source) || re.flags !== '') throw new Error(`pattern ${re} uses what XSD patterns lack`);
  return re.source
    .replace(/^\^/, '')
    .replace(/\$$/, '')
    .replace(/\\\//g, '/')
    .replace(/\[\^\\s\]/g, '\\S')
    .replace(/-\]/g, '\\-]');
}

function restriction(r: XsdRestriction, indent: string): string[] {
  const facets = [
    ...(r.pattern ? [`<xs:pattern value="${esc(xsdPattern(r.pattern))}"/>`] : []),
    ...(r.enumeration ?? []).map((v) => `<xs:enumeration value="${esc(v)}"/>`),
    ...(r.minLength !== undefined ? [`<xs:minLength value="${r.minLength}"/>`] : []),
    ...(r.maxInclusive !== undefined ? [`<xs:maxInclusive value="${r.maxInclusive}"/>`] : []),
  ];
  return [`${indent}<xs:restriction base="${r.base}">`, ...facets.map((f) => `${indent}  ${f}`), `${indent}</xs:restriction>`];
}

/** ` type="…"` for a named or built-in type, or the lines of an inline simple type. */
function typeOf(rule: ValueRule<unknown>, indent: string): { attr: string; inline: string[] } {
  if (rule.xsd === 'xs:string') return { attr: ' type="xs:string"', inline: [] };
  if (rule.xsdName !== null) return { attr: ` type="${rule.xsdName}"`, inline: [] };
  return { attr: '', inline: [`${indent}<xs:simpleType>`, ...restriction(rule.xsd, `${indent}  `), `${indent}</xs:simpleType>`] };
}

function documentation(text: string, indent: string): string[] {
  return [`${indent}<xs:annotation><xs:documentation>${esc(text)}</xs:documentation></xs:annotation>`];
}

function attribute(a: AttributeRule<unknown>, indent: string): string[] {
  const { attr, inline } = typeOf(a.value, `${indent}  `);
  const use = a.absent === undefined ? ' use="required"' : '';
  return [`${indent}<xs:attribute name="${a.name}"${attr}${use}>`, ...documentation(a.description, `${indent}  `), ...inline, `${indent}</xs:attribute>`];
}

const complexTypeName = (rule: ElementRule): string => `${rule.name}Type`;

/** The order-free content model: any sequence of the known children (see the header). */
function choice(children: readonly ElementRule[], indent: string): string[] {
  const out = [`${indent}<xs:choice minOccurs="0" maxOccurs="unbounded">`];
  for (const c of children) {
    const { attr, inline } = c.content === 'text' ? typeOf(c.value, `${indent}    `) : { attr: ` type="${complexTypeName(c)}"`, inline: [] };
    out.push(`${indent}  <xs:element name="${c.name}"${attr}>`, ...documentation(c.description, `${indent}    `), ...inline, `${indent}  </xs:element>`);
  }
  out.push(`${indent}</xs:choice>`);
  return out;
}

function complexTypes(children: readonly ElementRule[]): string[] {
  const out: string[] = [];
  for (const c of children) {
    if (c.content === 'text') continue;
    out.push('', `  <xs:complexType name="${complexTypeName(c)}">`);
    if (c.content === 'elements') out.push(...choice(c.children, '    '));
    else for (const g of c.groups) for (const a of g.attributes) out.push(...attribute(a, '    '));
    out.push('  </xs:complexType>');
    if (c.content === 'elements') out.push(...complexTypes(c.children));
  }
  return out;
}

const capitalized = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/** Uniqueness XSD can state: of a whole value or of an attribute, never of part of a value. */
function uniques(children: readonly ElementRule[], prefix: string): string[] {
  const out: string[] = [];
  for (const c of children) {
    if (c.content === 'elements') {
      out.push(...uniques(c.children, `${prefix}${c.name}/`));
      continue;
    }
    const u = c.unique as UniqueRule<unknown> | undefined;
    if (u === undefined || u.key !== undefined) continue;
    const field = u.attribute !== undefined ? `@${u.attribute}` : '.';
    out.push(
      `    <xs:unique name="unique${capitalized(c.name)}${u.attribute !== undefined ? capitalized(u.attribute) : ''}">`,
      `      <xs:selector xpath="${prefix}${c.name}"/>`,
      `      <xs:field xpath="${field}"/>`,
      '    </xs:unique>',
    );
  }
  return out;
}

function occurring(how: ElementRule['occurs']): string {
  const lists: string[] = [];
  const walk = (children: readonly ElementRule[]): void => {
    const names = children.filter((c) => c.occurs === how).map((c) => c.name);
    if (names.length > 0) lists.push(names.join(', '));
    for (const c of children) if (c.content === 'elements') walk(c.children);
  };
  walk(APPLIANCE.children);
  return lists.join('; ');
}

function header(): string[] {
  const exactlyOne: string[] = [];
  const walk = (children: readonly ElementRule[]): void => {
    for (const c of children) {
      if (c.content === 'attributes') {
        for (const g of c.groups) if (g.exactlyOne) exactlyOne.push(`  - A ${c.name} has exactly one of ${g.attributes.map((a) => a.name).join(' and ')}.`);
      }
      if (c.content === 'elements') walk(c.children);
    }
  };
  walk(APPLIANCE.children);
  const limits: string[] = [];
  const walkLimits = (children: readonly ElementRule[]): void => {
    for (const c of children) {
      if (c.max !== undefined) limits.push(`${c.max} ${c.name}`);
      if (c.content === 'elements') walkLimits(c.children);
    }
  };
  walkLimits(APPLIANCE.children);
  const { attribute, value } = APPLIANCE.formatVersion;
  return [
    '<!--',
    `  XML Schema of the storm appliance definition, format version ${value} (the STORM paper's Figure 2`,
    "  plus storm's name, sha256, base and boot).",
    '',
    '  GENERATED from the element table in provider/src/channel/definition/elements.ts: do not edit.',
    '  Rewrite it with `npx tsx provider/scripts/definition-xsd.ts`; a test fails while it is stale.',
    '',
    '  What XSD 1.0 cannot say, and the checker checks on top:',
    '  - Child elements may come in any order, but the required ones',
    `    (${occurring('one')})`,
    `    must each appear exactly once, and ${occurring('optional')} at most once. "Each once, any order"`,
    '    with repeatable siblings is beyond XSD 1.0, so the schema allows any sequence of known elements.',
    ...exactlyOne,
    '  - No two dependencies on the same name; no dependency on itself.',
    `  - At most ${limits.join(', ')} elements.`,
    `  - The version is none of ${RESERVED_VERSIONS.join(', ')} (in any case): paths the channel site writes itself.`,
    '  - URLs are also run through a real URL parser.',
    `  - No DOCTYPE, no processing instructions, at most ${MAX_DEFINITION_BYTES / (1024 * 1024)} MiB, UTF-8 only.`,
    '  - No control, private-use or noncharacter code points, written or as references.',
    '  Publishers point editors at it with',
    `    <appliance ${attribute}='${value}' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"`,
    '               xsi:noNamespaceSchemaLocation="appliance-definition.xsd">',
    '-->',
  ];
}

/** The XSD text, as committed in provider/src/channel/appliance-definition.xsd. */
export function definitionXsd(): string {
  const { attribute, value } = APPLIANCE.formatVersion;
  const lines = [
    '<?xml version="1.0" encoding="utf-8"?>',
    ...header(),
    '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" elementFormDefault="unqualified">',
    '',
    `  <xs:element name="${APPLIANCE.name}">`,
    ...documentation(APPLIANCE.description, '    '),
    '    <xs:complexType>',
    ...choice(APPLIANCE.children, '      '),
    `      <xs:attribute name="${attribute}" use="required">`,
    '        <xs:simpleType>',
    ...restriction({ base: 'xs:token', enumeration: [value] }, '          '),
    '        </xs:simpleType>',
    '      </xs:attribute>',
    '    </xs:complexType>',
    ...uniques(APPLIANCE.children, ''),
    '  </xs:element>',
    ...complexTypes(APPLIANCE.children),
    '',
    '  <!-- Text types derive from xs:token because the checker trims element text. -->',
  ];
  for (const rule of VALUE_RULES) {
    if (rule.xsdName === null || rule.xsd === 'xs:string') continue;
    lines.push('', `  <xs:simpleType name="${rule.xsdName}">`, ...restriction(rule.xsd, '    '), '  </xs:simpleType>');
  }
  lines.push('', '</xs:schema>', '');
  return lines.join('\n');
}
