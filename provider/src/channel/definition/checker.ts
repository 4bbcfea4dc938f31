// Checks a read document against the element table and builds the ApplianceDefinition, collecting
// every problem (path, line, fix) rather than stopping at the first. The walk is the table's:
// unknown, duplicate and missing elements come from each element's children, values from its
// value rules, and the order problems are found in is the table's order (ties on one line keep it).

import type { ApplianceDefinition, DefinitionProblem } from '../types.ts';
import {
  APPLIANCE,
  APPLIANCE_START_TAG,
  type AttributeRule,
  type AttributesElement,
  type ElementRule,
  type ElementsElement,
  type TextElement,
  type UniqueRule,
} from './elements.ts';
import type { XmlElement } from './xml-reader.ts';
import { closest, quote } from './wording.ts';

interface Found {
  el: XmlElement;
  path: string;
}

type Fields = Record<string, unknown>;

/** Sets a dotted field ("image.url"), making the objects on the way. */
function setField(target: Fields, field: string, value: unknown): void {
  const parts = field.split('.');
  let at = target;
  for (const p of parts.slice(0, -1)) {
    if (typeof at[p] !== 'object' || at[p] === null) at[p] = {};
    at = at[p] as Fields;
  }
  at[parts.at(-1)!] = value;
}

// Where each known element belongs, for "<cpus> belongs directly inside <hardware>".
const HOMES = new Map<string, string>();
(function learnHomes(parent: string, children: readonly ElementRule[]): void {
  for (const c of children) {
    if (!HOMES.has(c.name)) HOMES.set(c.name, parent);
    if (c.content === 'elements') learnHomes(c.name, c.children);
  }
})(APPLIANCE.name, APPLIANCE.children);

class Checker {
  readonly problems: DefinitionProblem[] = [];
  private readonly refsReported = new Set<XmlElement>();

  add(path: string, line: number | null, message: string): void {
    this.problems.push({ path, line, message });
  }

  refs(el: XmlElement, path: string): void {
    this.refsReported.add(el);
    for (const r of el.refProblems) this.add(r.attr === null ? path : `${path}/@${r.attr}`, r.line, r.message);
  }

  /** Reference problems in elements no rule visited (inside an unknown element, say). */
  unreportedRefs(roots: XmlElement[]): void {
    const walk = (el: XmlElement, path: string): void => {
      if (!this.refsReported.has(el)) for (const r of el.refProblems) this.add(r.attr === null ? path : `${path}/@${r.attr}`, r.line, r.message);
      for (const c of el.children) walk(c, `${path}/${c.name}`);
    };
    for (const r of roots) walk(r, `/${r.name}`);
  }

  /** Sorts children by rule; reports unknown, duplicate and missing elements. */
  children(parent: XmlElement, parentPath: string, rules: readonly ElementRule[]): Map<string, Found[]> {
    const byName = new Map<string, Found[]>();
    const ruleOf = new Map(rules.map((r) => [r.name, r]));
    const known = rules.map((r) => r.name);
    // Counted once up front: an unknown element's path says [n] only when its name repeats.
    const totals = new Map<string, number>();
    for (const child of parent.children) totals.set(child.name, (totals.get(child.name) ?? 0) + 1);
    const counts = new Map<string, number>();
    const guessed = new Set<string>();
    for (const child of parent.children) {
      const n = (counts.get(child.name) ?? 0) + 1;
      counts.set(child.name, n);
      const rule = ruleOf.get(child.name);
      if (!rule) {
        const path = `${parentPath}/${child.name}${totals.get(child.name)! > 1 ? `[${n}]` : ''}`;
        const guess = closest(child.name, known);
        if (guess) guessed.add(guess);
        this.add(path, child.line, this.unknownElement(child.name, parent.name, known, guess));
        this.refs(child, path);
        continue;
      }
      const path = rule.occurs === 'many' || n > 1 ? `${parentPath}/${child.name}[${n}]` : `${parentPath}/${child.name}`;
      this.refs(child, path);
      const list = byName.get(child.name) ?? [];
      if (rule.occurs !== 'many' && list.length > 0) {
        const first = list[0]!.el.line;
        this.add(
          path,
          child.line,
          `duplicate <${child.name}>${first !== null ? ` (the first is at line ${first})` : ''}: <${parent.name}> takes exactly one <${child.name}>; remove one of them`,
        );
        continue;
      }
      list.push({ el: child, path });
      byName.set(child.name, list);
    }
    for (const rule of rules) {
      // "unknown <lable>: did you mean <label>?" already says it; "missing <label>" would be noise.
      if (rule.occurs === 'one' && !byName.has(rule.name) && !guessed.has(rule.name)) {
        this.add(`${parentPath}/${rule.name}`, parent.line, `missing <${rule.name}>: ${rule.missing ?? `add <${rule.name}>`}`);
      }
    }
    return byName;
  }

  private unknownElement(name: string, parentName: string, known: string[], guess: string | null): string {
    const home = HOMES.get(name);
    if (home !== undefined && home !== parentName) return `<${name}> belongs directly inside <${home}>, not inside <${parentName}>; move it`;
    const suggestion = guess ? `did you mean <${guess}>? ` : '';
    return `unknown element <${name}> in <${parentName}>: ${suggestion}known elements here are ${known.join(', ')}`;
  }

  attrs(el: XmlElement, path: string, known: readonly string[]): void {
    for (const [name, attr] of el.attrs) {
      if (known.includes(name)) continue;
      const guess = closest(name, known);
      const rest = known.length > 0 ? `; known attributes: ${known.join(', ')}` : `; <${el.name}> takes no attributes`;
      this.add(`${path}/@${name}`, attr.line, `unknown attribute ${name} on <${el.name}>${guess ? `: did you mean ${guess}?` : ''}${rest}`);
    }
  }

  /** Text content of a text-only element, or null (reported) when it has child elements. */
  text(found: Found): string | null {
    const { el, path } = found;
    for (const [name, attr] of el.attrs) {
      this.add(`${path}/@${name}`, attr.line, `<${el.name}> takes no attributes (got ${name}=${quote(attr.value)}); put the value between <${el.name}> and </${el.name}>`);
    }
    if (el.children.length > 0) {
      const c = el.children[0]!;
      this.add(`${path}/${c.name}`, c.line, `<${el.name}> holds text only, not elements; remove <${c.name}>`);
      return null;
    }
    return el.text;
  }

  required(found: Found, what: string, example: string): string | null {
    const t = this.text(found);
    if (t === null) return null;
    if (t === '') {
      this.add(found.path, found.el.textLine, `<${found.el.name}> is empty: ${what}, e.g. ${example}`);
      return null;
    }
    return t;
  }

  empty(found: Found): void {
    const { el, path } = found;
    if (el.children.length > 0) {
      const c = el.children[0]!;
      this.add(`${path}/${c.name}`, c.line, `<${el.name}> takes attributes only, no child elements; remove <${c.name}>`);
    } else if (el.text !== '') {
      this.add(path, el.textLine, `<${el.name}> takes attributes only, no text (got ${quote(el.text)})`);
    }
  }

  noText(found: Found): void {
    if (found.el.text !== '') {
      this.add(found.path, found.el.textLine, `unexpected text ${quote(found.el.text)} directly in <${found.el.name}>; it holds elements only`);
    }
  }

  /** An attribute's trimmed value, or null (reported when the rule says what to give). */
  attr(el: XmlElement, path: string, rule: AttributeRule<unknown>): { value: string; path: string; line: number | null } | null {
    const a = el.attrs.get(rule.name);
    const p = `${path}/@${rule.name}`;
    if (!a) {
      if (rule.absent === undefined) this.add(p, el.line, `<${el.name}> is missing the ${rule.name} attribute: ${rule.ifEmpty}`);
      return null;
    }
    const value = a.value.trim();
    if (value === '' && rule.ifEmpty !== undefined) {
      this.add(p, a.line, `${rule.name} on <${el.name}> is empty: ${rule.ifEmpty}`);
      return null;
    }
    return { value, path: p, line: a.line };
  }
}

// ---------------------------------------------------------------------------------------------
// The walk.

function checkText(c: Checker, rule: TextElement<unknown>, found: Found): unknown {
  const t = c.required(found, rule.ifEmpty.what, rule.ifEmpty.example);
  if (t === null) return null;
  const r = rule.value.check(t, rule.wording);
  if (r.ok) return r.value;
  c.add(found.path, found.el.textLine, r.message);
  return null;
}

function checkAttributes(c: Checker, rule: AttributesElement, found: Found): Fields {
  const { el, path } = found;
  c.attrs(el, path, rule.groups.flatMap((g) => g.attributes.map((a) => a.name)));
  c.empty(found);
  const out: Fields = {};
  for (const group of rule.groups) {
    if (group.exactlyOne) {
      const given = group.attributes.filter((a) => el.attrs.has(a.name));
      if (given.length > 1) {
        const got = given.map((a) => `${a.name}=${quote(el.attrs.get(a.name)!.value)}`).join(' and ');
        c.add(path, el.line, `${group.exactlyOne.both}; got ${got}`);
      } else if (given.length === 0) {
        c.add(path, el.line, group.exactlyOne.neither);
      }
    }
    // Every attribute of the group is looked up before any value is judged: a missing checksum
    // is said before a malformed URL on the same line.
    const raw = group.attributes.map((a) => c.attr(el, path, a));
    group.attributes.forEach((a, i) => {
      const r = raw[i];
      if (!r) {
        setField(out, a.field, el.attrs.has(a.name) || a.absent === undefined ? null : a.absent);
        return;
      }
      const v = a.value.check(r.value, a.wording);
      if (!v.ok) c.add(r.path, r.line, v.message);
      setField(out, a.field, v.ok ? v.value : null);
    });
  }
  return out;
}

function checkElements(c: Checker, rule: ElementsElement, found: Found, appliance: Fields): Fields {
  c.attrs(found.el, found.path, []);
  c.noText(found);
  const out: Fields = {};
  checkChildren(c, found, rule.children, out, appliance);
  return out;
}

function checkOne(c: Checker, rule: ElementRule, found: Found, appliance: Fields): unknown {
  switch (rule.content) {
    case 'text':
      return checkText(c, rule, found);
    case 'attributes':
      return checkAttributes(c, rule, found);
    case 'elements':
      return checkElements(c, rule, found, appliance);
  }
}

/** The key that must differ among siblings, where it is said, and which line a later duplicate names. */
function uniqueKey(rule: ElementRule, unique: UniqueRule<unknown>, value: unknown, found: Found): { key: string; path: string; line: number | null; firstLine: number | null } | null {
  if (unique.attribute !== undefined) {
    const field = rule.content === 'attributes' ? rule.groups.flatMap((g) => g.attributes).find((a) => a.name === unique.attribute)?.field : undefined;
    const key = field === undefined ? undefined : (value as Fields)[field];
    if (typeof key !== 'string') return null;
    return { key, path: `${found.path}/@${unique.attribute}`, line: found.el.attrs.get(unique.attribute)?.line ?? found.el.line, firstLine: found.el.line };
  }
  const key = unique.key ? unique.key(value) : String(value);
  return { key, path: found.path, line: found.el.textLine, firstLine: found.el.textLine };
}

function checkMany(c: Checker, rule: ElementRule, all: Found[], appliance: Fields): unknown[] {
  const values: unknown[] = [];
  const seen = new Map<string, number | null>();
  for (const found of all) {
    const value = checkOne(c, rule, found, appliance);
    if (value === null) continue;
    const refusal = rule.content === 'text' && rule.refuse ? rule.refuse(value, appliance) : null;
    if (refusal !== null) {
      c.add(found.path, found.el.textLine, refusal);
      continue;
    }
    const unique = rule.content === 'elements' ? undefined : (rule.unique as UniqueRule<unknown> | undefined);
    const k = unique ? uniqueKey(rule, unique, value, found) : null;
    if (unique && k) {
      if (seen.has(k.key)) {
        const first = seen.get(k.key);
        c.add(k.path, k.line, unique.say(k.key, first != null ? ` (first at line ${first})` : ''));
        continue;
      }
      seen.set(k.key, k.firstLine);
    }
    values.push(value);
  }
  return values;
}

function checkChildren(c: Checker, parent: Found, rules: readonly ElementRule[], into: Fields, appliance: Fields): void {
  const kids = c.children(parent.el, parent.path, rules);
  for (const rule of rules) {
    const found = kids.get(rule.name) ?? [];
    if (rule.occurs === 'many') setField(into, rule.field, checkMany(c, rule, found, appliance));
    else setField(into, rule.field, found[0] ? checkOne(c, rule, found[0], appliance) : null);
  }
}

/**
 * Checks the document's root elements (normally one <appliance>). Returns the definition, or
 * null with the problems; `problems` is in the order found, not yet by line.
 */
export function checkDefinition(roots: XmlElement[]): { definition: ApplianceDefinition | null; problems: DefinitionProblem[] } {
  const c = new Checker();
  if (roots.length === 0) {
    c.add('/', 1, `no root element; an appliance definition is one ${APPLIANCE_START_TAG} element`);
    return { definition: null, problems: c.problems };
  }
  for (const extra of roots.slice(1)) {
    c.add(`/${extra.name}`, extra.line, `a second root element <${extra.name}>; everything belongs inside the one <appliance> element`);
  }
  const definition = checkRoot(c, roots[0]!);
  c.unreportedRefs(roots);
  return { definition: c.problems.length > 0 ? null : definition, problems: c.problems };
}

function checkRoot(c: Checker, root: XmlElement): ApplianceDefinition | null {
  const rootPath = `/${APPLIANCE.name}`;
  const { attribute, value: format } = APPLIANCE.formatVersion;
  if (root.name !== APPLIANCE.name) {
    c.add(`/${root.name}`, root.line, `the root element must be ${APPLIANCE_START_TAG}; got <${root.name}>`);
    return null;
  }
  const v = root.attrs.get(attribute);
  if (!v) {
    c.add(`${rootPath}/@${attribute}`, root.line, `<appliance> needs the definition format version: write ${APPLIANCE_START_TAG}`);
  } else if (v.value.trim() !== format) {
    // A future format would drown in spurious errors against today's rules; say only this.
    c.add(
      `${rootPath}/@${attribute}`,
      v.line,
      `appliance definition format version ${quote(v.value)} is not supported: this storm reads version '${format}'; write ${APPLIANCE_START_TAG}, or upgrade storm if the channel publishes a newer format`,
    );
    return null;
  }
  const found = { el: root, path: rootPath };
  c.refs(root, rootPath);
  c.attrs(root, rootPath, [attribute, ...APPLIANCE.tolerated]);
  c.noText(found);
  const fields: Fields = { [APPLIANCE.formatVersion.field]: format };
  checkChildren(c, found, APPLIANCE.children, fields, fields);
  // The table's fields spell ApplianceDefinition (the JSON Schema test holds them to it), and a
  // definition is only returned when no rule found a problem, so no field is a placeholder.
  return fields as unknown as ApplianceDefinition;
}
