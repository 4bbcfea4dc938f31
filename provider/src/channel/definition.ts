// The one parser/validator for appliance definitions (format in ./types.ts). The provider, the
// `storm` CLI and the catalog site all call this, so a publisher sees the same verdict and the
// same wording wherever a definition is checked. Pure on purpose (string in, result out): the
// site bundles it, and a parser of untrusted documents has no business touching files or network.

import { XMLParser, XMLValidator } from 'fast-xml-parser';
import type {
  ApplianceDefinition,
  BaseLayerRef,
  BootSpec,
  Dependency,
  DefinitionProblem,
  DiskSpec,
  ImageRef,
  ParseResult,
} from './types.ts';

/** The only definition format version this storm reads (the paper's `<appliance version='1.0'>`). */
export const DEFINITION_FORMAT_VERSION = '1.0';

/** Definitions are metadata; the image lives behind <url>. Anything bigger is a mistake or an attack. */
export const MAX_DEFINITION_BYTES = 1024 * 1024;

export type JsonSchema = { [keyword: string]: unknown };

// Shared by the validator and the JSON Schema; appliance-definition.xsd spells the same
// patterns by hand (XSD patterns are implicitly anchored), and a test keeps them in step.
const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}$/;
const SHA256_RE = /^[0-9a-f]{64}$/;
const DIGITS_RE = /^[0-9]+$/;
const DISK_NAME_RE = /^[a-z][a-z0-9_-]{0,31}$/;
// No '/' and no leading '.', so a disk file can never name something outside the image ('..').
const DISK_FILE_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,254}$/;
const OSTYPE_RE = /^[a-z][a-z0-9_-]{0,31}$/;
const WEBPANEL_RE = /^\/[^\s]*$/;
const HTTP_URL_RE = /^https?:\/\/[^\s/?#@]+([/?#][^\s]*)?$/;
const DISK_TYPES = ['system', 'swap', 'user'] as const;

const EXAMPLE_SHA = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

// ---------------------------------------------------------------------------------------------
// Source positions. fast-xml-parser gives no line numbers for elements, so a small tokenizer
// walks the text once and records every start tag (and its attributes) in document order; the
// parser's ordered tree is then matched to those tags one for one.

interface StartTag {
  name: string;
  offset: number;
  /** Index just past the tag's '>' — where its content starts. */
  end: number;
  attrs: Map<string, number>;
}

interface ScanResult {
  tags: StartTag[];
  problems: DefinitionProblem[];
}

class Lines {
  private readonly starts: number[] = [0];
  constructor(text: string) {
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) this.starts.push(i + 1);
  }
  at(offset: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  }
}

const NAME_CHAR = /[^\s/>=]/;

function scan(xml: string, lines: Lines): ScanResult {
  const tags: StartTag[] = [];
  const problems: DefinitionProblem[] = [];
  let depth = 0;
  let i = 0;
  let saidOutside = false;
  const piTarget = /[^\s?]*/y;
  const textOutside = (from: number, to: number): void => {
    if (depth !== 0 || saidOutside) return;
    const m = /\S/.exec(xml.slice(from, to));
    if (m) {
      saidOutside = true;
      const at = from + m.index;
      problems.push({
        path: '/',
        line: lines.at(at),
        message: `text outside the <appliance> element (${quote(xml.slice(at, to).trim())}); everything belongs inside <appliance>…</appliance>`,
      });
    }
  };
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    if (lt === -1) {
      textOutside(i, xml.length);
      break;
    }
    textOutside(i, lt);
    if (xml.startsWith('<!--', lt)) {
      const close = xml.indexOf('-->', lt + 4);
      i = close === -1 ? xml.length : close + 3;
    } else if (xml.startsWith('<![CDATA[', lt)) {
      const close = xml.indexOf(']]>', lt + 9);
      i = close === -1 ? xml.length : close + 3;
    } else if (xml.startsWith('<?', lt)) {
      const close = xml.indexOf('?>', lt + 2);
      piTarget.lastIndex = lt + 2;
      const target = piTarget.exec(xml)![0];
      // A misplaced XML declaration is the well-formedness check's to report; other PIs are ours.
      if (target.toLowerCase() !== 'xml') {
        problems.push({
          path: '/',
          line: lines.at(lt),
          message: `processing instruction <?${target} …?> is not allowed in appliance definitions (only the XML declaration <?xml version='1.0' encoding='utf-8'?> at the very start is); remove it`,
        });
      }
      i = close === -1 ? xml.length : close + 2;
    } else if (xml.startsWith('</', lt)) {
      const close = xml.indexOf('>', lt);
      depth--;
      i = close === -1 ? xml.length : close + 1;
    } else if (xml.startsWith('<!', lt)) {
      // DOCTYPE is refused before scanning; anything else here is malformed and the
      // well-formedness check has the better message.
      const close = xml.indexOf('>', lt);
      i = close === -1 ? xml.length : close + 1;
    } else {
      let j = lt + 1;
      while (j < xml.length && NAME_CHAR.test(xml[j]!)) j++;
      const tag: StartTag = { name: xml.slice(lt + 1, j), offset: lt, end: xml.length, attrs: new Map() };
      let selfClosing = false;
      while (j < xml.length) {
        while (j < xml.length && /\s/.test(xml[j]!)) j++;
        if (xml[j] === '>') {
          j++;
          break;
        }
        if (xml.startsWith('/>', j)) {
          selfClosing = true;
          j += 2;
          break;
        }
        const nameStart = j;
        while (j < xml.length && NAME_CHAR.test(xml[j]!)) j++;
        const attrName = xml.slice(nameStart, j);
        while (j < xml.length && /\s/.test(xml[j]!)) j++;
        if (xml[j] !== '=') break;
        j++;
        while (j < xml.length && /\s/.test(xml[j]!)) j++;
        const q = xml[j];
        if (q !== '"' && q !== "'") break;
        const valueEnd = xml.indexOf(q, j + 1);
        if (valueEnd === -1) break;
        if (!tag.attrs.has(attrName)) tag.attrs.set(attrName, nameStart);
        if (xml.slice(j + 1, valueEnd).includes('<')) {
          problems.push({
            path: '/',
            line: lines.at(nameStart),
            message: `attribute ${attrName} of <${tag.name}> contains a raw "<"; write it as &lt;`,
          });
        }
        j = valueEnd + 1;
      }
      tag.end = j;
      tags.push(tag);
      if (!selfClosing) depth++;
      i = j;
    }
  }
  return { tags, problems };
}

// ---------------------------------------------------------------------------------------------
// The document as a small element tree with positions and decoded text.

interface Attr {
  value: string;
  line: number | null;
}

interface El {
  name: string;
  line: number | null;
  textLine: number | null;
  attrs: Map<string, Attr>;
  children: El[];
  /** Decoded text and CDATA, concatenated and trimmed. */
  text: string;
  /** Bad entity or character references, reported once the element's path is known. */
  refProblems: { attr: string | null; line: number | null; message: string }[];
}

type FxpNode = Record<string, unknown>;

const PREDEFINED: ReadonlyMap<string, string> = new Map([
  ['lt', '<'],
  ['gt', '>'],
  ['amp', '&'],
  ['quot', '"'],
  ['apos', "'"],
]);

function isXmlChar(cp: number): boolean {
  return (
    cp === 0x9 ||
    cp === 0xa ||
    cp === 0xd ||
    (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

// fast-xml-parser runs with entity processing off (so nothing it does can expand an entity);
// the five predefined entities and character references are decoded here, and nothing else.
function decodeRefs(raw: string, report: (message: string) => void): string {
  return raw.replace(/&([^;&\s<]*);?/g, (whole, ref: string) => {
    if (whole.endsWith(';')) {
      const named = PREDEFINED.get(ref);
      if (named !== undefined) return named;
      const num = /^#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}))$/.exec(ref);
      if (num) {
        const cp = num[1] !== undefined ? parseInt(num[1], 16) : parseInt(num[2]!, 10);
        if (isXmlChar(cp)) return String.fromCodePoint(cp);
        report(`character reference &${ref}; is not a legal XML character; remove it`);
        return '';
      }
      report(
        `undefined entity &${ref};: appliance definitions have no DTD, so only &amp; &lt; &gt; &quot; &apos; and character references like &#169; work; write the character itself`,
      );
      return '';
    }
    report(`a bare "&" must be written &amp; (got ${quote(whole)})`);
    return whole;
  });
}

function buildTree(nodes: FxpNode[], tags: StartTag[], xml: string, lines: Lines): El[] {
  let cursor = 0;
  let aligned = true;
  const build = (list: FxpNode[]): El[] => {
    const out: El[] = [];
    for (const node of list) {
      const name = Object.keys(node).find((k) => k !== ':@' && k !== '#text' && k !== '#cdata');
      if (name === undefined) continue;
      const tag = aligned ? tags[cursor++] : undefined;
      // Both walks are in document order, so a mismatch means the tokenizer misread something;
      // positions after it would be wrong, and no line beats a wrong line.
      if (!tag || tag.name !== name) aligned = false;
      const at = aligned && tag ? tag : undefined;
      const line = at ? lines.at(at.offset) : null;
      let textLine = line;
      if (at) {
        const m = /\S/.exec(xml.slice(at.end, at.end + 4096));
        if (m) textLine = lines.at(at.end + m.index);
      }
      const el: El = { name, line, textLine, attrs: new Map(), children: [], text: '', refProblems: [] };
      const rawAttrs = node[':@'];
      if (rawAttrs && typeof rawAttrs === 'object') {
        for (const [k, v] of Object.entries(rawAttrs as Record<string, unknown>)) {
          const off = at?.attrs.get(k);
          const attrLine = off !== undefined ? lines.at(off) : line;
          const value = decodeRefs(String(v), (message) => el.refProblems.push({ attr: k, line: attrLine, message }));
          el.attrs.set(k, { value, line: attrLine });
        }
      }
      const children = Array.isArray(node[name]) ? (node[name] as FxpNode[]) : [];
      let text = '';
      for (const child of children) {
        if (typeof child['#text'] === 'string' || typeof child['#text'] === 'number') {
          text += decodeRefs(String(child['#text']), (message) => el.refProblems.push({ attr: null, line: textLine, message }));
        } else if (Array.isArray(child['#cdata'])) {
          for (const c of child['#cdata'] as FxpNode[]) if (c['#text'] !== undefined) text += String(c['#text']);
        }
      }
      el.text = text.trim();
      el.children = build(children);
      out.push(el);
    }
    return out;
  };
  return build(nodes);
}

// ---------------------------------------------------------------------------------------------
// Small helpers for messages.

function quote(value: string): string {
  const v = value.length > 80 ? `${value.slice(0, 77)}...` : value;
  return JSON.stringify(v);
}

// Edit distance counting a swap of neighbours as one edit: "tpye" is one typo away from "type".
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

function closest(name: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  for (const k of known) {
    const d = k.toLowerCase() === name.toLowerCase() ? 0 : distance(name.toLowerCase(), k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  const limit = name.length <= 4 ? 1 : 2;
  return bestD <= limit ? best : null;
}

function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

// "512MB" in <memory> is the commonest mistake; work out the number that was meant.
function convertUnits(raw: string, unit: 'KiB' | 'MiB'): { amount: string; value: number } | null {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt])i?b?$/i.exec(raw.trim());
  if (!m) return null;
  const power = 'kmgt'.indexOf(m[2]!.toLowerCase()) - (unit === 'KiB' ? 0 : 1);
  const value = Number(m[1]) * 1024 ** power;
  if (!Number.isSafeInteger(value) || value < 1) return null;
  return { amount: `${m[1]} ${m[2]!.toUpperCase()}iB`, value };
}

// ---------------------------------------------------------------------------------------------
// Validation.

interface ChildRule {
  name: string;
  required: boolean;
  repeat: boolean;
  /** Said when the element is missing: what to add. */
  missing: string;
}

const APPLIANCE_CHILDREN: ChildRule[] = [
  { name: 'name', required: true, repeat: false, missing: "add the appliance's id as used in HCL, e.g. <name>webserv</name> (lowercase letters, digits and hyphens)" },
  { name: 'label', required: true, repeat: false, missing: 'add a short human title, e.g. <label>Simple Web Server</label>' },
  { name: 'description', required: true, repeat: false, missing: 'add a sentence or two on what the appliance does, e.g. <description>A very simple and efficient test web server.</description>' },
  { name: 'version', required: true, repeat: false, missing: "add the appliance's version, e.g. <version>1.0.0-0</version>" },
  { name: 'size', required: true, repeat: false, missing: "add the appliance's disk size in MiB, e.g. <size>1024</size>" },
  { name: 'url', required: true, repeat: false, missing: "add the absolute http(s) URL of the appliance's qcow2 image, e.g. <url>https://images.example/webserv-1.0.0-0.qcow2</url>" },
  { name: 'sha256', required: true, repeat: false, missing: 'add the SHA-256 of the image at <url> (64 lowercase hex digits, as printed by sha256sum); storm refuses downloads that do not match it' },
  { name: 'sig', required: false, repeat: false, missing: '' },
  { name: 'base', required: true, repeat: false, missing: "every appliance stands on a base-OS layer; add e.g. <base name='debian-12' url='https://images.example/debian-12.qcow2' sha256='…'/>" },
  { name: 'boot', required: false, repeat: false, missing: '' },
  { name: 'provides', required: false, repeat: true, missing: '' },
  { name: 'webpanel', required: false, repeat: false, missing: '' },
  { name: 'hardware', required: true, repeat: false, missing: 'add <hardware> with <cpus>, <memory> (KiB) and <ostype>, e.g. <hardware><cpus>1</cpus><memory>524288</memory><ostype>linux</ostype></hardware>' },
  { name: 'dependency', required: false, repeat: true, missing: '' },
];

const HARDWARE_CHILDREN: ChildRule[] = [
  { name: 'cpus', required: true, repeat: false, missing: 'add the number of virtual CPUs, e.g. <cpus>1</cpus>' },
  { name: 'memory', required: true, repeat: false, missing: 'add the memory in KiB (the paper\'s unit), e.g. <memory>524288</memory> for 512 MiB' },
  { name: 'ostype', required: true, repeat: false, missing: 'add the guest OS type, e.g. <ostype>linux</ostype>' },
  { name: 'disk', required: false, repeat: true, missing: '' },
];

const ROOT_ATTRS = ['version', 'xmlns:xsi', 'xsi:noNamespaceSchemaLocation'];
const BASE_ATTRS = ['name', 'url', 'sha256', 'sig'];
const BOOT_ATTRS = ['kernel', 'kernel-sha256', 'kernel-sig', 'initrd', 'initrd-sha256', 'initrd-sig', 'cmdline'];
const DISK_ATTRS = ['name', 'type', 'file', 'size'];

interface Found {
  el: El;
  path: string;
}

class Checker {
  readonly problems: DefinitionProblem[] = [];
  private readonly refsReported = new Set<El>();

  add(path: string, line: number | null, message: string): void {
    this.problems.push({ path, line, message });
  }

  refs(el: El, path: string): void {
    this.refsReported.add(el);
    for (const r of el.refProblems) this.add(r.attr === null ? path : `${path}/@${r.attr}`, r.line, r.message);
  }

  /** Reference problems in elements no rule visited (inside an unknown element, say). */
  unreportedRefs(roots: El[]): void {
    const walk = (el: El, path: string): void => {
      if (!this.refsReported.has(el)) for (const r of el.refProblems) this.add(r.attr === null ? path : `${path}/@${r.attr}`, r.line, r.message);
      for (const c of el.children) walk(c, `${path}/${c.name}`);
    };
    for (const r of roots) walk(r, `/${r.name}`);
  }

  /** Sorts children by rule; reports unknown, duplicate and missing elements. */
  children(parent: El, parentPath: string, rules: ChildRule[]): Map<string, Found[]> {
    const byName = new Map<string, Found[]>();
    const counts = new Map<string, number>();
    const guessed = new Set<string>();
    const known = rules.map((r) => r.name);
    for (const child of parent.children) {
      const n = (counts.get(child.name) ?? 0) + 1;
      counts.set(child.name, n);
      const rule = rules.find((r) => r.name === child.name);
      if (!rule) {
        const total = parent.children.filter((c) => c.name === child.name).length;
        const path = `${parentPath}/${child.name}${total > 1 ? `[${n}]` : ''}`;
        const guess = closest(child.name, known);
        if (guess) guessed.add(guess);
        this.add(path, child.line, this.unknownElement(child.name, parent.name, known, guess));
        this.refs(child, path);
        continue;
      }
      const path = rule.repeat || n > 1 ? `${parentPath}/${child.name}[${n}]` : `${parentPath}/${child.name}`;
      this.refs(child, path);
      const list = byName.get(child.name) ?? [];
      if (!rule.repeat && list.length > 0) {
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
      if (rule.required && !byName.has(rule.name) && !guessed.has(rule.name)) {
        this.add(`${parentPath}/${rule.name}`, parent.line, `missing <${rule.name}>: ${rule.missing}`);
      }
    }
    return byName;
  }

  private unknownElement(name: string, parentName: string, known: string[], guess: string | null): string {
    const home =
      HARDWARE_CHILDREN.some((r) => r.name === name) && parentName !== 'hardware'
        ? 'hardware'
        : APPLIANCE_CHILDREN.some((r) => r.name === name) && parentName !== 'appliance'
          ? 'appliance'
          : null;
    if (home) return `<${name}> belongs directly inside <${home}>, not inside <${parentName}>; move it`;
    const suggestion = guess ? `did you mean <${guess}>? ` : '';
    return `unknown element <${name}> in <${parentName}>: ${suggestion}known elements here are ${known.join(', ')}`;
  }

  attrs(el: El, path: string, known: string[]): void {
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

  positiveInt(raw: string, path: string, line: number | null, what: string, unit?: 'KiB' | 'MiB'): number | null {
    if (DIGITS_RE.test(raw)) {
      const n = Number(raw);
      if (Number.isSafeInteger(n) && n >= 1) return n;
    }
    const meant = unit ? convertUnits(raw, unit) : null;
    // The example in `what` may already be that conversion ("524288 for 512 MiB"); say it once.
    const hint = meant && !what.includes(`${meant.value} for ${meant.amount}`) ? ` (for ${meant.amount} write ${meant.value})` : '';
    this.add(path, line, `${what}; got ${quote(raw)}${hint}`);
    return null;
  }

  httpUrl(raw: string, path: string, line: number | null, what: string, example: string): string | null {
    let ok = HTTP_URL_RE.test(raw);
    if (ok) {
      try {
        const u = new URL(raw);
        ok = (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
      } catch {
        ok = false;
      }
    }
    if (ok) return raw;
    const why = /^[a-z][a-z0-9+.-]*:/i.test(raw) && !/^https?:/i.test(raw)
      ? ' (only http and https are fetched)'
      : /^https?:\/\/[^/?#]*@/i.test(raw)
        ? ' (no user:password@ in published URLs)'
        : '';
    this.add(path, line, `${what} must be an absolute http:// or https:// URL${why}, e.g. ${example}; got ${quote(raw)}`);
    return null;
  }

  sha256(raw: string, path: string, line: number | null, what: string): string | null {
    if (SHA256_RE.test(raw)) return raw;
    let hint = '';
    if (/^[0-9a-fA-F]{64}$/.test(raw)) hint = ' (write it in lowercase)';
    else if (/^sha256[:-]/i.test(raw)) hint = ' (leave out the "sha256:" prefix)';
    else if (/^[0-9a-fA-F]+$/.test(raw)) hint = ` (that is ${raw.length} hex digits, not 64)`;
    this.add(path, line, `${what} must be 64 lowercase hex digits, the SHA-256 as printed by sha256sum${hint}, e.g. ${EXAMPLE_SHA}; got ${quote(raw)}`);
    return null;
  }

  name(raw: string, path: string, line: number | null, what: string): string | null {
    if (NAME_RE.test(raw)) return raw;
    const fixed = raw.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63);
    const hint = fixed && NAME_RE.test(fixed) ? `, e.g. ${quote(fixed)}` : ', e.g. "webserv"';
    this.add(path, line, `${what} must be 1-63 lowercase letters, digits and hyphens, not starting or ending with a hyphen${hint}; got ${quote(raw)}`);
    return null;
  }

  version(raw: string, path: string, line: number | null, what: string): string | null {
    if (VERSION_RE.test(raw)) return raw;
    this.add(path, line, `${what} must be up to 64 letters, digits and . _ + ~ - starting with a letter or digit (no spaces or ':'), e.g. 1.0.0-0; got ${quote(raw)}`);
    return null;
  }

  attr(el: El, path: string, name: string, missing: string): { value: string; path: string; line: number | null } | null {
    const a = el.attrs.get(name);
    const p = `${path}/@${name}`;
    if (!a) {
      this.add(p, el.line, `<${el.name}> is missing the ${name} attribute: ${missing}`);
      return null;
    }
    const value = a.value.trim();
    if (value === '') {
      this.add(p, a.line, `${name} on <${el.name}> is empty: ${missing}`);
      return null;
    }
    return { value, path: p, line: a.line };
  }
}

function checkBase(c: Checker, found: Found): BaseLayerRef {
  const { el, path } = found;
  c.attrs(el, path, BASE_ATTRS);
  c.empty(found);
  const name = c.attr(el, path, 'name', "give the base layer's name, e.g. name='debian-12'");
  const url = c.attr(el, path, 'url', "give the absolute http(s) URL of the base image, e.g. url='https://images.example/debian-12.qcow2'");
  const sha = c.attr(el, path, 'sha256', 'give the SHA-256 of the base image (64 lowercase hex digits, as printed by sha256sum)');
  const sig = el.attrs.has('sig') ? c.attr(el, path, 'sig', 'give the URL of the detached signature, or leave the attribute out') : null;
  return {
    name: (name && c.name(name.value, name.path, name.line, 'the base name')) ?? '',
    url: (url && c.httpUrl(url.value, url.path, url.line, 'the base url', 'https://images.example/debian-12.qcow2')) ?? '',
    sha256: (sha && c.sha256(sha.value, sha.path, sha.line, 'the base sha256')) ?? '',
    sig: (sig && c.httpUrl(sig.value, sig.path, sig.line, 'the base sig', 'https://images.example/debian-12.qcow2.sig')) ?? null,
  };
}

function checkBoot(c: Checker, found: Found): BootSpec {
  const { el, path } = found;
  c.attrs(el, path, BOOT_ATTRS);
  c.empty(found);
  const image = (part: 'kernel' | 'initrd'): ImageRef => {
    const url = c.attr(el, path, part, `give the absolute http(s) URL of the ${part}, e.g. ${part}='https://images.example/vmlinuz'`);
    const sha = c.attr(el, path, `${part}-sha256`, `give the SHA-256 of the ${part} (64 lowercase hex digits)`);
    const sig = el.attrs.has(`${part}-sig`) ? c.attr(el, path, `${part}-sig`, 'give the URL of the detached signature, or leave the attribute out') : null;
    return {
      url: (url && c.httpUrl(url.value, url.path, url.line, `the ${part} url`, `https://images.example/${part === 'kernel' ? 'vmlinuz' : 'initrd.img'}`)) ?? '',
      sha256: (sha && c.sha256(sha.value, sha.path, sha.line, `${part}-sha256`)) ?? '',
      sig: (sig && c.httpUrl(sig.value, sig.path, sig.line, `${part}-sig`, `https://images.example/${part}.sig`)) ?? null,
    };
  };
  return { kernel: image('kernel'), initrd: image('initrd'), cmdline: el.attrs.get('cmdline')?.value.trim() ?? '' };
}

function checkDisk(c: Checker, found: Found): DiskSpec {
  const { el, path } = found;
  c.attrs(el, path, DISK_ATTRS);
  c.empty(found);
  const name = c.attr(el, path, 'name', "give the disk's device name, e.g. name='hda1'");
  const type = c.attr(el, path, 'type', "give the disk's type: type='system', 'swap' or 'user'");
  const file = el.attrs.get('file');
  const size = el.attrs.get('size');
  let diskName = '';
  if (name) {
    if (DISK_NAME_RE.test(name.value)) diskName = name.value;
    else c.add(name.path, name.line, `disk name must be a device name of lowercase letters, digits, _ and - starting with a letter, e.g. hda1 or vdb; got ${quote(name.value)}`);
  }
  let diskType: DiskSpec['type'] = 'system';
  if (type) {
    const t = DISK_TYPES.find((d) => d === type.value);
    if (t) diskType = t;
    else {
      const guess = closest(type.value, DISK_TYPES);
      c.add(type.path, type.line, `disk type must be one of ${DISK_TYPES.join(', ')}${guess ? ` (did you mean ${guess}?)` : ''}; got ${quote(type.value)}`);
    }
  }
  let diskFile: string | null = null;
  let sizeMib: number | null = null;
  if (file && size) {
    c.add(path, el.line, `a disk takes either file (an image file inside the appliance) or size (a new empty disk, in MiB), not both; got file=${quote(file.value)} and size=${quote(size.value)}`);
  } else if (!file && !size) {
    c.add(path, el.line, "a disk needs file='…' (an image file inside the appliance, e.g. file='sys.img') or size='…' (a new empty disk in MiB, e.g. size='128')");
  }
  if (file) {
    const f = file.value.trim();
    if (DISK_FILE_RE.test(f)) diskFile = f;
    else c.add(`${path}/@file`, file.line, `disk file must be a plain file name inside the appliance image (letters, digits, . _ -, no "/" and not starting with "."), e.g. sys.img; got ${quote(file.value)}`);
  }
  if (size) {
    sizeMib = c.positiveInt(size.value.trim(), `${path}/@size`, size.line, 'disk size must be a whole number of MiB, at least 1, e.g. 128', 'MiB');
  }
  return { name: diskName, type: diskType, file: diskFile, sizeMib };
}

function checkAppliance(c: Checker, root: El): ApplianceDefinition | null {
  const rootPath = '/appliance';
  if (root.name !== 'appliance') {
    c.add(`/${root.name}`, root.line, `the root element must be <appliance version='${DEFINITION_FORMAT_VERSION}'>; got <${root.name}>`);
    return null;
  }
  const v = root.attrs.get('version');
  if (!v) {
    c.add(`${rootPath}/@version`, root.line, `<appliance> needs the definition format version: write <appliance version='${DEFINITION_FORMAT_VERSION}'>`);
  } else if (v.value.trim() !== DEFINITION_FORMAT_VERSION) {
    // A future format would drown in spurious errors against today's rules; say only this.
    c.add(
      `${rootPath}/@version`,
      v.line,
      `appliance definition format version ${quote(v.value)} is not supported: this storm reads version '${DEFINITION_FORMAT_VERSION}'; write <appliance version='${DEFINITION_FORMAT_VERSION}'>, or upgrade storm if the channel publishes a newer format`,
    );
    return null;
  }
  c.refs(root, rootPath);
  c.attrs(root, rootPath, ROOT_ATTRS);
  c.noText({ el: root, path: rootPath });

  const kids = c.children(root, rootPath, APPLIANCE_CHILDREN);
  const one = (n: string): Found | undefined => kids.get(n)?.[0];
  const many = (n: string): Found[] => kids.get(n) ?? [];
  const at = (f: Found): number | null => f.el.textLine;

  const textOf = (n: string, what: string, example: string): { value: string; f: Found } | null => {
    const f = one(n);
    if (!f) return null;
    const value = c.required(f, what, example);
    return value === null ? null : { value, f };
  };

  const nameT = textOf('name', "give the appliance's id as used in HCL", 'webserv');
  const name = nameT ? c.name(nameT.value, nameT.f.path, at(nameT.f), 'name') : null;
  const label = textOf('label', 'give a short human title', 'Simple Web Server');
  const description = textOf('description', 'say what the appliance does', 'A very simple and efficient test web server.');
  const versionT = textOf('version', "give the appliance's version", '1.0.0-0');
  const version = versionT ? c.version(versionT.value, versionT.f.path, at(versionT.f), 'version') : null;
  const sizeT = textOf('size', "give the appliance's disk size in MiB", '1024');
  const sizeMib = sizeT
    ? c.positiveInt(sizeT.value, sizeT.f.path, at(sizeT.f), "size must be a whole number of MiB (the appliance's disk), e.g. 1024 for 1 GiB", 'MiB')
    : null;
  const urlT = textOf('url', "give the URL of the appliance's image", 'https://images.example/webserv-1.0.0-0.qcow2');
  const url = urlT ? c.httpUrl(urlT.value, urlT.f.path, at(urlT.f), 'url', 'https://images.example/webserv-1.0.0-0.qcow2') : null;
  const shaT = textOf('sha256', 'give the SHA-256 of the image (as printed by sha256sum)', EXAMPLE_SHA);
  const sha = shaT ? c.sha256(shaT.value, shaT.f.path, at(shaT.f), 'sha256') : null;
  const sigT = textOf('sig', 'give the URL of the detached signature, or leave <sig> out', 'https://images.example/webserv-1.0.0-0.qcow2.sig');
  const sig = sigT ? c.httpUrl(sigT.value, sigT.f.path, at(sigT.f), 'sig', 'https://images.example/webserv-1.0.0-0.qcow2.sig') : null;
  const baseF = one('base');
  const base = baseF ? checkBase(c, baseF) : null;
  const bootF = one('boot');
  const boot = bootF ? checkBoot(c, bootF) : null;

  const provides: string[] = [];
  const providesSeen = new Map<string, number | null>();
  for (const f of many('provides')) {
    const t = c.required(f, 'name the service this appliance provides', 'webserv');
    if (t === null) continue;
    const p = c.name(t, f.path, at(f), 'provides');
    if (p === null) continue;
    if (providesSeen.has(p)) {
      const first = providesSeen.get(p);
      c.add(f.path, at(f), `duplicate <provides>${p}</provides>${first != null ? ` (first at line ${first})` : ''}; list each service once`);
      continue;
    }
    providesSeen.set(p, at(f));
    provides.push(p);
  }

  const webT = textOf('webpanel', "give the path of the appliance's web panel, or leave <webpanel> out", '/upload.php');
  let webpanel: string | null = null;
  if (webT) {
    if (WEBPANEL_RE.test(webT.value)) webpanel = webT.value;
    else c.add(webT.f.path, at(webT.f), `webpanel must be a path on the appliance's own web server, starting with "/" and without spaces, e.g. /upload.php; got ${quote(webT.value)}`);
  }

  let cpus: number | null = null;
  let memoryKib: number | null = null;
  let ostype: string | null = null;
  const disks: DiskSpec[] = [];
  const hwF = one('hardware');
  if (hwF) {
    c.attrs(hwF.el, hwF.path, []);
    c.noText(hwF);
    const hw = c.children(hwF.el, hwF.path, HARDWARE_CHILDREN);
    const cpusF = hw.get('cpus')?.[0];
    const cpusT = cpusF ? c.required(cpusF, 'give the number of virtual CPUs', '1') : null;
    if (cpusF && cpusT !== null) cpus = c.positiveInt(cpusT, cpusF.path, at(cpusF), 'cpus must be a whole number of virtual CPUs, at least 1, e.g. 1');
    const memF = hw.get('memory')?.[0];
    const memT = memF ? c.required(memF, "give the memory in KiB (the paper's unit)", '524288') : null;
    if (memF && memT !== null) {
      memoryKib = c.positiveInt(memT, memF.path, at(memF), "memory must be a whole number of KiB (the paper's unit), e.g. 524288 for 512 MiB", 'KiB');
    }
    const osF = hw.get('ostype')?.[0];
    const osT = osF ? c.required(osF, 'give the guest OS type', 'linux') : null;
    if (osF && osT !== null) {
      if (OSTYPE_RE.test(osT)) ostype = osT;
      else c.add(osF.path, at(osF), `ostype must be a lowercase OS type word (letters, digits, _ and -), e.g. linux; got ${quote(osT)}`);
    }
    const diskNames = new Map<string, number | null>();
    for (const f of hw.get('disk') ?? []) {
      const d = checkDisk(c, f);
      if (d.name !== '') {
        if (diskNames.has(d.name)) {
          const first = diskNames.get(d.name);
          c.add(`${f.path}/@name`, f.el.attrs.get('name')?.line ?? f.el.line, `duplicate disk name ${quote(d.name)}${first != null ? ` (first at line ${first})` : ''}; give each disk its own name`);
        } else diskNames.set(d.name, f.el.line);
      }
      disks.push(d);
    }
  }

  const dependencies: Dependency[] = [];
  const depSeen = new Map<string, number | null>();
  for (const f of many('dependency')) {
    const t = c.required(f, 'name the appliance depended on as name[:version]', 'emailserv:1.0.0-0');
    if (t === null) continue;
    const colon = t.indexOf(':');
    const depName = colon === -1 ? t : t.slice(0, colon);
    const depVersion = colon === -1 ? null : t.slice(colon + 1);
    const nameOk = NAME_RE.test(depName);
    const versionOk = depVersion === null || VERSION_RE.test(depVersion);
    if (!nameOk || !versionOk) {
      const which = /\s/.test(t)
        ? "separate name and version with ':', not a space"
        : !nameOk
        ? `the name ${quote(depName)} is not an appliance name (lowercase letters, digits, hyphens)`
        : `the version ${quote(depVersion ?? '')} is not a version (letters, digits, . _ + ~ -)`;
      c.add(f.path, at(f), `dependency must be name[:version], e.g. emailserv:1.0.0-0 or firewall; ${which}; got ${quote(t)}`);
      continue;
    }
    if (name !== null && depName === name) {
      c.add(f.path, at(f), `an appliance cannot depend on itself; remove <dependency>${t}</dependency>`);
      continue;
    }
    if (depSeen.has(depName)) {
      const first = depSeen.get(depName);
      c.add(f.path, at(f), `duplicate dependency on ${depName}${first != null ? ` (first at line ${first})` : ''}; list each appliance once`);
      continue;
    }
    depSeen.set(depName, at(f));
    dependencies.push({ name: depName, version: depVersion });
  }

  if (c.problems.length > 0) return null;
  return {
    formatVersion: DEFINITION_FORMAT_VERSION,
    name: name!,
    label: label!.value,
    description: description!.value,
    version: version!,
    sizeMib: sizeMib!,
    image: { url: url!, sha256: sha!, sig },
    base: base!,
    boot,
    provides,
    webpanel,
    hardware: { cpus: cpus!, memoryKib: memoryKib!, ostype: ostype!, disks },
    dependencies,
  };
}

// ---------------------------------------------------------------------------------------------
// The API.

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  // Off, not merely limited: with it off the parser never expands anything, and the few
  // references XML needs without a DTD are decoded by decodeRefs.
  processEntities: false,
  htmlEntities: false,
  trimValues: false,
  cdataPropName: '#cdata',
  ignoreDeclaration: true,
  ignorePiTags: true,
  allowBooleanAttributes: false,
});

function byLine(problems: DefinitionProblem[]): DefinitionProblem[] {
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => (a.p.line ?? 0) - (b.p.line ?? 0) || a.i - b.i)
    .map(({ p }) => p);
}

/**
 * Parses and validates an appliance definition, collecting every problem rather than stopping at
 * the first. `source` names the document in messages about the document as a whole.
 */
export function parseApplianceDefinition(xml: string, source?: string): ParseResult {
  const doc = source ?? 'the definition';
  const bytes = utf8Length(xml);
  if (bytes > MAX_DEFINITION_BYTES) {
    const mib = bytes / (1024 * 1024);
    return {
      ok: false,
      problems: [
        {
          path: '/',
          line: null,
          message: `${doc} is ${mib.toFixed(1)} MiB; appliance definitions are limited to 1 MiB (they are metadata: the image itself goes behind <url>)`,
        },
      ],
    };
  }
  // XML normalizes line ends before anything else; doing it here keeps offsets and lines honest.
  const text = (xml.startsWith('\uFEFF') ? xml.slice(1) : xml).replace(/\r\n?/g, '\n');
  const lines = new Lines(text);

  // Checked on the raw text, before any parser sees it, and even inside comments or CDATA: a
  // DOCTYPE is the door to entity expansion and external entities, and no definition needs one.
  const doctype = /<!DOCTYPE|<!ENTITY/i.exec(text);
  if (doctype) {
    return {
      ok: false,
      problems: [
        {
          path: '/',
          line: lines.at(doctype.index),
          message:
            'DOCTYPE declarations and entities are not allowed in appliance definitions (they enable entity expansion such as "billion laughs" and external entities/XXE); remove the <!DOCTYPE …> and write characters directly or as &amp; &lt; &gt; &quot; &apos; or &#…;',
        },
      ],
    };
  }

  if (text.trim() === '') {
    return { ok: false, problems: [{ path: '/', line: 1, message: `${doc} is empty; an appliance definition starts with <appliance version='${DEFINITION_FORMAT_VERSION}'>` }] };
  }

  const bad = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/.exec(text);
  if (bad) {
    return {
      ok: false,
      problems: [
        {
          path: '/',
          line: lines.at(bad.index),
          message: `control character U+${bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')} is not allowed in XML; remove it (is this a binary file?)`,
        },
      ],
    };
  }

  const wf = XMLValidator.validate(text, { allowBooleanAttributes: false });
  if (wf !== true) {
    return {
      ok: false,
      problems: [
        {
          path: '/',
          line: wf.err.line,
          message: `not well-formed XML: ${wf.err.msg} (line ${wf.err.line}, column ${wf.err.col}); fix the XML syntax first`,
        },
      ],
    };
  }

  const scanned = scan(text, lines);
  const problems: DefinitionProblem[] = [...scanned.problems];

  let nodes: FxpNode[];
  try {
    nodes = parser.parse(text) as FxpNode[];
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const named = /"([^"]+)"/.exec(msg)?.[1];
    const tag = named ? scanned.tags.find((t) => t.name === named || t.attrs.has(named)) : undefined;
    problems.push({ path: '/', line: tag ? lines.at(tag.offset) : null, message: `refused by the XML parser: ${msg}` });
    return { ok: false, problems: byLine(problems) };
  }

  const roots = buildTree(nodes, scanned.tags, text, lines);
  if (roots.length === 0) {
    problems.push({ path: '/', line: 1, message: `no root element; an appliance definition is one <appliance version='${DEFINITION_FORMAT_VERSION}'> element` });
    return { ok: false, problems: byLine(problems) };
  }
  for (const extra of roots.slice(1)) {
    problems.push({ path: `/${extra.name}`, line: extra.line, message: `a second root element <${extra.name}>; everything belongs inside the one <appliance> element` });
  }

  const checker = new Checker();
  const definition = checkAppliance(checker, roots[0]!);
  checker.unreportedRefs(roots);
  problems.push(...checker.problems);
  if (problems.length > 0 || definition === null) return { ok: false, problems: byLine(problems) };
  return { ok: true, definition };
}

/** One line per problem, `file:line: path: message`, as compilers print them. */
export function formatProblems(problems: DefinitionProblem[], source?: string): string {
  const file = source ?? '<definition>';
  return problems.map((p) => `${file}${p.line !== null ? `:${p.line}` : ''}: ${p.path}: ${p.message}`).join('\n');
}

// ---------------------------------------------------------------------------------------------
// Serialization: one canonical spelling, so a definition written by storm diffs cleanly.

function escText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#13;');
}

// Tabs and newlines are escaped because XML attribute-value normalization would turn them
// into spaces in any conforming parser.
function escAttr(s: string): string {
  return escText(s).replace(/'/g, '&apos;').replace(/\n/g, '&#10;').replace(/\t/g, '&#9;');
}

function attrs(pairs: [string, string | number | null][]): string {
  return pairs
    .filter((p): p is [string, string | number] => p[1] !== null)
    .map(([k, v]) => ` ${k}='${escAttr(String(v))}'`)
    .join('');
}

export function serializeApplianceDefinition(def: ApplianceDefinition): string {
  const out: string[] = ["<?xml version='1.0' encoding='utf-8'?>", `<appliance version='${escAttr(def.formatVersion)}'>`];
  const el = (indent: string, name: string, value: string | number): void => {
    out.push(`${indent}<${name}>${escText(String(value))}</${name}>`);
  };
  const i1 = '  ';
  const i2 = '    ';
  el(i1, 'name', def.name);
  el(i1, 'label', def.label);
  el(i1, 'description', def.description);
  el(i1, 'version', def.version);
  el(i1, 'size', def.sizeMib);
  el(i1, 'url', def.image.url);
  el(i1, 'sha256', def.image.sha256);
  if (def.image.sig !== null) el(i1, 'sig', def.image.sig);
  out.push(`${i1}<base${attrs([['name', def.base.name], ['url', def.base.url], ['sha256', def.base.sha256], ['sig', def.base.sig]])}/>`);
  if (def.boot) {
    const b = def.boot;
    out.push(
      `${i1}<boot${attrs([
        ['kernel', b.kernel.url],
        ['kernel-sha256', b.kernel.sha256],
        ['kernel-sig', b.kernel.sig],
        ['initrd', b.initrd.url],
        ['initrd-sha256', b.initrd.sha256],
        ['initrd-sig', b.initrd.sig],
        ['cmdline', b.cmdline === '' ? null : b.cmdline],
      ])}/>`,
    );
  }
  for (const p of def.provides) el(i1, 'provides', p);
  if (def.webpanel !== null) el(i1, 'webpanel', def.webpanel);
  out.push(`${i1}<hardware>`);
  el(i2, 'cpus', def.hardware.cpus);
  el(i2, 'memory', def.hardware.memoryKib);
  el(i2, 'ostype', def.hardware.ostype);
  for (const d of def.hardware.disks) {
    out.push(`${i2}<disk${attrs([['name', d.name], ['type', d.type], ['file', d.file], ['size', d.sizeMib]])}/>`);
  }
  out.push(`${i1}</hardware>`);
  for (const d of def.dependencies) el(i1, 'dependency', d.version === null ? d.name : `${d.name}:${d.version}`);
  out.push('</appliance>', '');
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// JSON Schema of the parsed object, for publishers who generate definitions from JSON.

export function definitionJsonSchema(): JsonSchema {
  const str = (pattern: RegExp, description: string): JsonSchema => ({ type: 'string', pattern: pattern.source, description });
  const posInt = (description: string): JsonSchema => ({ type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description });
  const nonEmpty = (description: string): JsonSchema => ({ type: 'string', minLength: 1, pattern: '\\S', description });
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'storm appliance definition',
    description:
      'The parsed form of a storm appliance definition (the XML format of the STORM paper, Figure 2, plus storm\'s name, sha256, base and boot). Produced by parseApplianceDefinition; serializeApplianceDefinition writes it back as XML.',
    type: 'object',
    additionalProperties: false,
    required: ['formatVersion', 'name', 'label', 'description', 'version', 'sizeMib', 'image', 'base', 'boot', 'provides', 'webpanel', 'hardware', 'dependencies'],
    properties: {
      formatVersion: { const: DEFINITION_FORMAT_VERSION, description: "<appliance version='1.0'>" },
      name: { $ref: '#/$defs/name', description: '<name>: the id used in HCL' },
      label: nonEmpty('<label>: a short human title'),
      description: nonEmpty('<description>'),
      version: { $ref: '#/$defs/version', description: "<version>: the appliance's version" },
      sizeMib: posInt("<size>: the appliance's disk in MiB"),
      image: { $ref: '#/$defs/imageRef', description: '<url>, <sha256>, <sig>: the appliance layer (a qcow2 overlay on the base)' },
      base: {
        description: '<base>: the base-OS layer the appliance stands on',
        type: 'object',
        additionalProperties: false,
        required: ['name', 'url', 'sha256', 'sig'],
        properties: {
          name: { $ref: '#/$defs/name' },
          url: { $ref: '#/$defs/httpUrl' },
          sha256: { $ref: '#/$defs/sha256' },
          sig: { anyOf: [{ $ref: '#/$defs/httpUrl' }, { type: 'null' }] },
        },
      },
      boot: {
        description: '<boot>: direct kernel boot, or null to boot from the disk',
        anyOf: [
          {
            type: 'object',
            additionalProperties: false,
            required: ['kernel', 'initrd', 'cmdline'],
            properties: {
              kernel: { $ref: '#/$defs/imageRef' },
              initrd: { $ref: '#/$defs/imageRef' },
              cmdline: { type: 'string' },
            },
          },
          { type: 'null' },
        ],
      },
      provides: { type: 'array', uniqueItems: true, items: { $ref: '#/$defs/name' }, description: '<provides>, zero or more' },
      webpanel: { anyOf: [str(WEBPANEL_RE, "a path on the appliance's own web server"), { type: 'null' }], description: '<webpanel>' },
      hardware: {
        type: 'object',
        additionalProperties: false,
        required: ['cpus', 'memoryKib', 'ostype', 'disks'],
        properties: {
          cpus: posInt('<cpus>: virtual CPUs'),
          memoryKib: posInt("<memory>: KiB, the paper's unit (524288 = 512 MiB)"),
          ostype: str(OSTYPE_RE, '<ostype>, e.g. linux'),
          disks: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['name', 'type', 'file', 'sizeMib'],
              properties: {
                name: str(DISK_NAME_RE, 'device name, e.g. hda1'),
                type: { enum: [...DISK_TYPES] },
                file: { anyOf: [str(DISK_FILE_RE, 'an image file inside the appliance'), { type: 'null' }] },
                sizeMib: { anyOf: [posInt('a new empty disk, MiB'), { type: 'null' }] },
              },
              description: 'exactly one of file and sizeMib is non-null',
              oneOf: [
                { properties: { file: { type: 'string' }, sizeMib: { type: 'null' } } },
                { properties: { file: { type: 'null' }, sizeMib: { type: 'integer' } } },
              ],
            },
          },
        },
      },
      dependencies: {
        type: 'array',
        description: '<dependency>name[:version]</dependency>, zero or more; each name at most once, never the appliance itself',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['name', 'version'],
          properties: {
            name: { $ref: '#/$defs/name' },
            version: { anyOf: [{ $ref: '#/$defs/version' }, { type: 'null' }], description: 'null: any version' },
          },
        },
      },
    },
    $defs: {
      name: str(NAME_RE, 'lowercase letters, digits and hyphens, 1-63 characters'),
      version: str(VERSION_RE, 'letters, digits and . _ + ~ -, e.g. 1.0.0-0'),
      sha256: str(SHA256_RE, '64 lowercase hex digits, as printed by sha256sum'),
      httpUrl: { type: 'string', pattern: HTTP_URL_RE.source, format: 'uri', description: 'absolute http:// or https:// URL' },
      imageRef: {
        type: 'object',
        additionalProperties: false,
        required: ['url', 'sha256', 'sig'],
        properties: {
          url: { $ref: '#/$defs/httpUrl' },
          sha256: { $ref: '#/$defs/sha256' },
          sig: { anyOf: [{ $ref: '#/$defs/httpUrl' }, { type: 'null' }], description: "URL of the detached signature (storm's Ed25519 format)" },
        },
      },
    },
  };
}
