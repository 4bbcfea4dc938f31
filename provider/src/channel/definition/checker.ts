// Checks a read document against the element table and builds the ApplianceDefinition, collecting
// every problem (path, place, fix) rather than stopping at the first. The walk is the table's:
// unknown, duplicate and missing elements come from each element's children, values from its
// value rules, and the order problems are found in is the table's order (ties on one place keep it).
// Each element is looked at a bounded number of times, so checking is linear in the document.

import type { ApplianceDefinition } from '../types.ts';
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
import { MAX_SAID, type RawProblem, type Source, type Unsaid, type XmlElement, type XmlTree } from './xml-reader.ts';
import { closest, quote } from './wording.ts';
import { nameFromFolders, nameFromText } from './derive.ts';

/** Where a definition was found, for what it leaves out (see ./derive.ts). */
export interface DefinitionContext {
  /** The name it is known by already (a signed feed's), used when it has no <name>. */
  readonly name?: string;
  /** The folders the file is in, outermost first, used when it has no <name>. */
  readonly folders?: readonly string[];
}

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

// Guessing what an unknown name meant costs an edit distance per known name; past this many
// distinct unknown names in one element the publisher has bigger problems than a typo.
const MAX_GUESSES = 256;

class Checker {
  readonly problems: RawProblem[] = [];
  private readonly refsReported = new Set<number>();

  constructor(
    readonly tree: XmlTree,
    readonly src: Source,
    private readonly unsaid: Unsaid,
  ) {}

  add(path: string, offset: number | null, message: string): void {
    this.problems.push({ path, offset, message });
  }

  /** The reference problems of element `i`, at the path the rules gave it. */
  refs(i: number, path: string): void {
    const problems = this.tree.refs(i);
    if (problems.length === 0) return;
    this.refsReported.add(i);
    for (const r of problems) this.add(r.attr === null ? path : `${path}/@${r.attr}`, r.offset, r.message);
  }

  /** Reference problems in elements no rule visited (inside an unknown element, say). */
  unreportedRefs(): void {
    const tree = this.tree;
    for (const [i, problems] of tree.refProblems) {
      if (this.refsReported.has(i)) continue;
      let path = '';
      for (let at = i; at !== -1; at = tree.parent(at)) path = `/${tree.name(at)}${path}`;
      for (const r of problems) this.add(r.attr === null ? path : `${path}/@${r.attr}`, r.offset, r.message);
    }
  }

  private guesser(known: readonly string[]): (name: string) => string | null {
    const guesses = new Map<string, string | null>();
    return (name) => {
      let guess = guesses.get(name);
      if (guess === undefined) {
        guess = guesses.size < MAX_GUESSES ? closest(name, known) : null;
        guesses.set(name, guess);
      }
      return guess;
    };
  }

  /** Sorts children by rule; reports unknown, duplicate, surplus and missing elements. */
  children(parent: XmlElement, parentPath: string, rules: readonly ElementRule[]): Map<string, Found[]> {
    const byName = new Map<string, Found[]>();
    const known = rules.map((r) => r.name);
    const knownList = known.join(', ');
    const guess = this.guesser(known);
    const tree = this.tree;
    // By name number, not by name: no string is hashed per child.
    const counts = new Int32Array(tree.nameCount);
    const ruleByNumber = new Map<number, ElementRule>();
    for (const r of rules) {
      const number = tree.numberOf(r.name);
      if (number !== -1) ruleByNumber.set(number, r);
    }
    const guessed = new Set<string>();
    // Past MAX_SAID of a kind here, problems are counted only: a later one can never be among
    // the first MAX_SAID reported, and saying 200,000 of them is most of the cost. Their paths
    // wait for the loop's end, when `counts` says whether a name repeats ("[n]" only then).
    const unknown: { child: number; n: number }[] = [];
    const tooMany: { child: number; rule: ElementRule }[] = [];
    let duplicates = 0;
    for (let child = parent.firstChild; child !== -1; child = tree.nextSibling(child)) {
      const number = tree.nameNumber(child);
      const n = ++counts[number]!;
      const rule = ruleByNumber.get(number);
      if (!rule) {
        if (unknown.length >= MAX_SAID) this.unsaid.add(tree.offset(child));
        else unknown.push({ child, n });
        continue;
      }
      if (rule.occurs === 'many' && rule.max !== undefined && n > rule.max) {
        // Said once, at the first one too many; the rest are not read at all.
        if (n === rule.max + 1) tooMany.push({ child, rule });
        continue;
      }
      const name = rule.name;
      const path = rule.occurs === 'many' || n > 1 ? `${parentPath}/${name}[${n}]` : `${parentPath}/${name}`;
      const list = byName.get(name) ?? [];
      if (rule.occurs !== 'many' && list.length > 0) {
        if (++duplicates > MAX_SAID) {
          this.unsaid.add(tree.offset(child));
          continue;
        }
        this.refs(child, path);
        this.add(
          path,
          tree.offset(child),
          `duplicate <${name}> (the first is at line ${this.src.line(list[0]!.el.offset)}): <${parent.name}> takes exactly one <${name}>; remove one of them`,
        );
        continue;
      }
      this.refs(child, path);
      list.push({ el: tree.element(child), path });
      byName.set(name, list);
    }
    for (const { child, n } of unknown) {
      const name = tree.name(child);
      const path = `${parentPath}/${name}${counts[tree.nameNumber(child)]! > 1 ? `[${n}]` : ''}`;
      const g = guess(name);
      if (g) guessed.add(g);
      this.add(path, tree.offset(child), this.unknownElement(name, parent.name, knownList, g));
      this.refs(child, path);
    }
    for (const { child, rule } of tooMany) {
      this.add(
        `${parentPath}/${rule.name}[${rule.max! + 1}]`,
        tree.offset(child),
        `too many <${rule.name}> elements: ${counts[tree.nameNumber(child)]} in <${parent.name}>, and at most ${rule.max} are allowed; ${rule.tooMany ?? 'remove the rest'}`,
      );
    }
    for (const rule of rules) {
      // "unknown <lable>: did you mean <label>?" already says it; "missing <label>" would be noise.
      if (rule.occurs === 'one' && !byName.has(rule.name) && !guessed.has(rule.name)) {
        this.add(`${parentPath}/${rule.name}`, parent.offset, `missing <${rule.name}>: ${rule.missing ?? `add <${rule.name}>`}`);
      }
    }
    return byName;
  }

  private unknownElement(name: string, parentName: string, knownList: string, guess: string | null): string {
    const home = HOMES.get(name);
    if (home !== undefined && home !== parentName) return `<${name}> belongs directly inside <${home}>, not inside <${parentName}>; move it`;
    const suggestion = guess ? `did you mean <${guess}>? ` : '';
    return `unknown element <${name}> in <${parentName}>: ${suggestion}known elements here are ${knownList}`;
  }

  attrs(el: XmlElement, path: string, known: readonly string[]): void {
    if (el.attrs.size === 0) return;
    const guess = this.guesser(known);
    const rest = known.length > 0 ? `; known attributes: ${known.join(', ')}` : `; <${el.name}> takes no attributes`;
    let said = 0;
    for (const [name, attr] of el.attrs) {
      if (known.includes(name)) continue;
      if (++said > MAX_SAID) {
        this.unsaid.add(attr.offset);
        continue;
      }
      const g = guess(name);
      this.add(`${path}/@${name}`, attr.offset, `unknown attribute ${name} on <${el.name}>${g ? `: did you mean ${g}?` : ''}${rest}`);
    }
  }

  /** Text content of a text-only element, or null (reported) when it has child elements. */
  text(found: Found): string | null {
    const { el, path } = found;
    let said = 0;
    for (const [name, attr] of el.attrs) {
      if (++said > MAX_SAID) {
        this.unsaid.add(attr.offset);
        continue;
      }
      this.add(`${path}/@${name}`, attr.offset, `<${el.name}> takes no attributes (got ${name}=${quote(attr.value)}); put the value between <${el.name}> and </${el.name}>`);
    }
    if (el.firstChild !== -1) {
      const c = this.tree.name(el.firstChild);
      this.add(`${path}/${c}`, this.tree.offset(el.firstChild), `<${el.name}> holds text only, not elements; remove <${c}>`);
      return null;
    }
    return el.text;
  }

  required(found: Found, what: string, example: string): string | null {
    const t = this.text(found);
    if (t === null) return null;
    if (t === '') {
      this.add(found.path, found.el.textOffset, `<${found.el.name}> is empty: ${what}, e.g. ${example}`);
      return null;
    }
    return t;
  }

  empty(found: Found): void {
    const { el, path } = found;
    if (el.firstChild !== -1) {
      const c = this.tree.name(el.firstChild);
      this.add(`${path}/${c}`, this.tree.offset(el.firstChild), `<${el.name}> takes attributes only, no child elements; remove <${c}>`);
    } else if (el.text !== '') {
      this.add(path, el.textOffset, `<${el.name}> takes attributes only, no text (got ${quote(el.text)})`);
    }
  }

  noText(found: Found): void {
    if (found.el.text !== '') {
      this.add(found.path, found.el.textOffset, `unexpected text ${quote(found.el.text)} directly in <${found.el.name}>; it holds elements only`);
    }
  }

  /** An attribute's trimmed value, or null (reported when the rule says what to give). */
  attr(el: XmlElement, path: string, rule: AttributeRule<unknown>): { value: string; path: string; offset: number } | null {
    const a = el.attrs.get(rule.name);
    const p = `${path}/@${rule.name}`;
    if (!a) {
      if (rule.absent === undefined) this.add(p, el.offset, `<${el.name}> is missing the ${rule.name} attribute: ${rule.ifEmpty}`);
      return null;
    }
    const value = a.value.trim();
    if (value === '' && rule.ifEmpty !== undefined) {
      this.add(p, a.offset, `${rule.name} on <${el.name}> is empty: ${rule.ifEmpty}`);
      return null;
    }
    return { value, path: p, offset: a.offset };
  }
}

// ---------------------------------------------------------------------------------------------
// The walk.

function checkText(c: Checker, rule: TextElement<unknown>, found: Found): unknown {
  const t = c.required(found, rule.ifEmpty.what, rule.ifEmpty.example);
  if (t === null) return null;
  const r = rule.value.check(t, rule.wording);
  if (r.ok) return r.value;
  c.add(found.path, found.el.textOffset, r.message);
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
        c.add(path, el.offset, `${group.exactlyOne.both}; got ${got}`);
      } else if (given.length === 0) {
        c.add(path, el.offset, group.exactlyOne.neither);
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
      if (!v.ok) c.add(r.path, r.offset, v.message);
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

/** The key that must differ among siblings, where it is said, and which place a later duplicate names. */
function uniqueKey(rule: ElementRule, unique: UniqueRule<unknown>, value: unknown, found: Found): { key: string; path: string; offset: number; firstOffset: number } | null {
  if (unique.attribute !== undefined) {
    const field = rule.content === 'attributes' ? rule.groups.flatMap((g) => g.attributes).find((a) => a.name === unique.attribute)?.field : undefined;
    const key = field === undefined ? undefined : (value as Fields)[field];
    if (typeof key !== 'string') return null;
    return { key, path: `${found.path}/@${unique.attribute}`, offset: found.el.attrs.get(unique.attribute)?.offset ?? found.el.offset, firstOffset: found.el.offset };
  }
  const key = unique.key ? unique.key(value) : String(value);
  return { key, path: found.path, offset: found.el.textOffset, firstOffset: found.el.textOffset };
}

/** The value, or null with the problem said, when the rest of the appliance makes it wrong. */
function refused(c: Checker, rule: ElementRule, found: Found, value: unknown, appliance: Fields, earlier: readonly unknown[] = []): boolean {
  const refusal =
    rule.content === 'text' && rule.refuse
      ? rule.refuse(value, appliance)
      : rule.content === 'attributes' && rule.refuse
        ? rule.refuse(value as Fields, earlier as Fields[])
        : null;
  if (refusal !== null) c.add(found.path, found.el.textOffset, refusal);
  return refusal !== null;
}

function checkMany(c: Checker, rule: ElementRule, all: Found[], appliance: Fields): unknown[] {
  const values: unknown[] = [];
  const seen = new Map<string, number>();
  for (const found of all) {
    const said = c.problems.length;
    const value = checkOne(c, rule, found, appliance);
    // A value already found wrong in itself is not judged against its siblings as well.
    if (value === null || (c.problems.length === said && refused(c, rule, found, value, appliance, values))) continue;
    const unique = rule.content === 'elements' ? undefined : (rule.unique as UniqueRule<unknown> | undefined);
    const k = unique ? uniqueKey(rule, unique, value, found) : null;
    if (unique && k) {
      const first = seen.get(k.key);
      if (first !== undefined) {
        c.add(k.path, k.offset, unique.say(k.key, ` (first at line ${c.src.line(first)})`));
        continue;
      }
      seen.set(k.key, k.firstOffset);
    }
    values.push(value);
  }
  return values;
}

function checkSingle(c: Checker, rule: ElementRule, found: Found | undefined, appliance: Fields): unknown {
  if (found === undefined) return null;
  const value = checkOne(c, rule, found, appliance);
  return value === null || refused(c, rule, found, value, appliance) ? null : value;
}

function checkChildren(c: Checker, parent: Found, rules: readonly ElementRule[], into: Fields, appliance: Fields): void {
  const kids = c.children(parent.el, parent.path, rules);
  for (const rule of rules) {
    const found = kids.get(rule.name) ?? [];
    if (rule.occurs === 'many') setField(into, rule.field, checkMany(c, rule, found, appliance));
    else setField(into, rule.field, checkSingle(c, rule, found[0], appliance));
  }
}

/**
 * Checks the document's root elements (normally one <appliance>). Returns the definition, or
 * null with the problems; `problems` is in the order found, not yet by place.
 */
export function checkDefinition(read: { tree: XmlTree; source: Source; unsaid: Unsaid }, context: DefinitionContext = {}): { definition: ApplianceDefinition | null; problems: RawProblem[] } {
  const { tree } = read;
  const c = new Checker(tree, read.source, read.unsaid);
  if (tree.roots.length === 0) {
    c.add('/', 0, `no root element; an appliance definition is one ${APPLIANCE_START_TAG} element`);
    return { definition: null, problems: c.problems };
  }
  for (const extra of tree.roots.slice(1, 1 + MAX_SAID)) {
    c.add(`/${tree.name(extra)}`, tree.offset(extra), `a second root element <${tree.name(extra)}>; everything belongs inside the one <appliance> element`);
  }
  for (const extra of tree.roots.slice(1 + MAX_SAID)) read.unsaid.add(tree.offset(extra));
  const definition = checkRoot(c, tree.element(tree.roots[0]!), context);
  c.unreportedRefs();
  return { definition: c.problems.length > 0 || read.unsaid.count > 0 ? null : definition, problems: c.problems };
}

/** The first direct child of that name's trimmed text, or null. */
function childText(tree: XmlTree, root: XmlElement, name: string): string | null {
  for (let child = root.firstChild; child !== -1; child = tree.nextSibling(child)) {
    if (tree.name(child) === name) return tree.element(child).text;
  }
  return null;
}

function checkRoot(c: Checker, root: XmlElement, context: DefinitionContext): ApplianceDefinition | null {
  const rootPath = `/${APPLIANCE.name}`;
  const { attribute, value: format } = APPLIANCE.formatVersion;
  if (root.name !== APPLIANCE.name) {
    c.add(`/${root.name}`, root.offset, `the root element must be ${APPLIANCE_START_TAG}; got <${root.name}>`);
    return null;
  }
  const v = root.attrs.get(attribute);
  if (!v) {
    c.add(`${rootPath}/@${attribute}`, root.offset, `<appliance> needs the definition format version: write ${APPLIANCE_START_TAG}`);
  } else if (v.value.trim() !== format) {
    // A future format would drown in spurious errors against today's rules; say only this.
    c.add(
      `${rootPath}/@${attribute}`,
      v.offset,
      `appliance definition format version ${quote(v.value)} is not supported: this storm reads version '${format}'; write ${APPLIANCE_START_TAG}, or upgrade storm if the channel publishes a newer format`,
    );
    return null;
  }
  const found = { el: root, path: rootPath };
  c.refs(root.index, rootPath);
  c.attrs(root, rootPath, [attribute, ...APPLIANCE.tolerated]);
  c.noText(found);
  const fields: Fields = { [APPLIANCE.formatVersion.field]: format };
  // The paper's definitions have no <name>: one given by whoever found the file, else the
  // folders', else the label's. Known before the walk, so "depends on itself" can be said.
  const given = childText(c.tree, root, 'name');
  const label = childText(c.tree, root, 'label');
  const derived = given !== null ? null : (context.name ?? nameFromFolders(context.folders ?? [], childText(c.tree, root, 'version')) ?? (label === null ? null : nameFromText(label)));
  checkChildren(c, found, APPLIANCE.children, fields, { name: given ?? derived });
  if (given === null) {
    if (derived !== null) fields['name'] = derived;
    else if (label !== null && label !== '') {
      c.add(
        `${rootPath}/name`,
        root.offset,
        `no <name>, and the label ${quote(label)} gives none (a name is lowercase letters, digits and hyphens); add the appliance's id as used in HCL, e.g. <name>webserv</name>`,
      );
    }
  }
  // The table's fields spell ApplianceDefinition (the JSON Schema test holds them to it), and a
  // definition is only returned when no rule found a problem, so no field is a placeholder.
  return fields as unknown as ApplianceDefinition;
}
