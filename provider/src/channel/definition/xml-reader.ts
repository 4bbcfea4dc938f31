// Positioned XML reading: text in, an element tree out, every element, attribute and text with
// its offset, so each problem can point at the line and column to fix. Also the first line of
// defence: the size cap, DOCTYPE/entity refusal and characters nobody should publish are checked
// on the raw text before anything is read, and no entity is ever expanded.
//
// The reader is storm's own, not a general XML parser: one pass over the text, no recursion
// (nesting is an explicit stack), so its time is linear in the input whatever its shape, and
// every well-formedness error is said in a publisher's words at the place to fix (an element
// left open is reported where it was opened). It reads the XML a definition can be: elements,
// attributes, text, CDATA, comments and the XML declaration; a DOCTYPE is refused before
// reading, processing instructions are reported.
//
// The pass records each element as numbers in typed arrays (name, offsets, parent, first child,
// next sibling, text chunks) and allocates nothing per element: a megabyte of "<x/>" is 260,000
// elements, and as many objects cost more than everything else together. An element becomes an
// object (XmlElement: its attributes and text decoded) only when the checker asks for it, which
// it does for the elements it knows, a bounded number.

import type { DefinitionProblem } from '../types.ts';
import { APPLIANCE_START_TAG } from './elements.ts';
import { MAX_DEFINITION_BYTES, encodingProblem, tooBigMessage } from './encoding.ts';
import { closest, quote } from './wording.ts';

export { MAX_DEFINITION_BYTES } from './encoding.ts';

/** Deeper than any definition needs (three levels); a bound so nothing downstream meets a pathological tree. */
export const MAX_DEPTH = 32;

/** Of one kind of problem in one place, more than this are counted rather than said (see ../definition.ts). */
export const MAX_SAID = 100;

export interface XmlAttribute {
  /** Decoded (references resolved, whitespace normalized as XML says), not trimmed. */
  value: string;
  /** Offset of the attribute's name. */
  offset: number;
}

/** A reference problem (undefined entity, bare "&"), kept until the element's path is known. */
export interface ReferenceProblem {
  /** The attribute it is in, or null for the element's text. */
  attr: string | null;
  offset: number;
  message: string;
}

/** An element the checker looks at: its attributes and text decoded. */
export interface XmlElement {
  /** Its number in the tree. */
  index: number;
  name: string;
  /** Offset of the start tag's "<". */
  offset: number;
  /** Offset of the first non-blank text or CDATA, where a problem with the text is; the start tag's when there is none. */
  textOffset: number;
  attrs: ReadonlyMap<string, XmlAttribute>;
  /**
   * Decoded text and CDATA directly inside it, concatenated and trimmed. Of an element with child
   * elements (where text is only ever a mistake to quote), the first TEXT_BESIDE_ELEMENTS
   * characters or so: 200,000 scraps of text between elements are not worth joining.
   */
  text: string;
  /** Its first child element's number, or -1. */
  firstChild: number;
}

/** A problem found while reading or checking, placed by its offset in the read text (null: the document as a whole). */
export interface RawProblem {
  path: string;
  offset: number | null;
  message: string;
}

/** Problems counted but not said: how many, and the first place among them. */
export class Unsaid {
  count = 0;
  offset: number | null = null;
  add(offset: number | null): void {
    this.count++;
    if (offset !== null && (this.offset === null || offset < this.offset)) this.offset = offset;
  }
}

/** Offsets into the read text → lines and columns, worked out only for what is reported. */
export class Source {
  private starts: number[] | null = null;
  // The last column worked out: the next one on the same line, further on, continues from it, so
  // placing problems in document order costs one pass however long the line.
  private last = { offset: -1, column: 0, lineStart: -1 };
  constructor(readonly text: string) {}

  private lineStarts(): number[] {
    if (this.starts === null) {
      const starts = [0];
      for (let i = this.text.indexOf('\n'); i !== -1; i = this.text.indexOf('\n', i + 1)) starts.push(i + 1);
      this.starts = starts;
    }
    return this.starts;
  }

  private lineIndex(offset: number): number {
    const starts = this.lineStarts();
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  line(offset: number): number {
    return this.lineIndex(offset) + 1;
  }

  /** 1-based, in characters (a character outside the BMP counts once), as editors count. */
  column(offset: number): number {
    const lineStart = this.lineStarts()[this.lineIndex(offset)]!;
    let from = lineStart;
    let column = 1;
    if (this.last.lineStart === lineStart && this.last.offset <= offset) ({ offset: from, column } = this.last);
    for (let i = from; i < offset; i++) {
      const c = this.text.charCodeAt(i);
      if (c < 0xdc00 || c > 0xdfff) column++;
    }
    this.last = { offset, column, lineStart };
    return column;
  }

  locate(p: RawProblem): DefinitionProblem {
    return p.offset === null ? { path: p.path, line: null, column: null, message: p.message } : { path: p.path, line: this.line(p.offset), column: this.column(p.offset), message: p.message };
  }
}

// ---------------------------------------------------------------------------------------------
// Characters.

const TAB = 0x09;
const LF = 0x0a;
const SPACE = 0x20;
const BANG = 0x21;
const DQUOTE = 0x22;
const AMP = 0x26;
const SQUOTE = 0x27;
const SLASH = 0x2f;
const SEMI = 0x3b;
const LT = 0x3c;
const EQ = 0x3d;
const GT = 0x3e;
const QUESTION = 0x3f;

const isSpace = (c: number): boolean => c === SPACE || c === LF || c === TAB || c === 0x0d;

// XML 1.0 (fifth edition) NameStartChar; a surrogate pair stands for a character in #x10000-#xEFFFF.
function isNameStart(c: number): boolean {
  if (c < 0x80) return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c === 0x3a;
  return (
    (c >= 0xc0 && c <= 0xd6) ||
    (c >= 0xd8 && c <= 0xf6) ||
    (c >= 0xf8 && c <= 0x2ff) ||
    (c >= 0x370 && c <= 0x37d) ||
    (c >= 0x37f && c <= 0x1fff) ||
    (c >= 0x200c && c <= 0x200d) ||
    (c >= 0x2070 && c <= 0x218f) ||
    (c >= 0x2c00 && c <= 0x2fef) ||
    (c >= 0x3001 && c <= 0xd7ff) ||
    (c >= 0xd800 && c <= 0xdfff) ||
    (c >= 0xf900 && c <= 0xfdcf) ||
    (c >= 0xfdf0 && c <= 0xfffd)
  );
}

function isNameChar(c: number): boolean {
  if (c < 0x80) return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x5f || c === 0x3a || c === 0x2d || c === 0x2e;
  return c === 0xb7 || (c >= 0x300 && c <= 0x36f) || (c >= 0x203f && c <= 0x2040) || isNameStart(c);
}

const hex = (cp: number): string => `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;

/**
 * Why a code point has no place in a definition, or null. XML forbids the C0 controls and
 * U+FFFE/U+FFFF; storm also refuses what XML merely discourages, because none of it means
 * anything to a reader and some of it does harm: C1 controls (text read in the wrong encoding),
 * private-use characters (meaning only in one font or program, and the catalog's own
 * placeholders are private-use) and noncharacters.
 */
export function refusedCharacter(cp: number): string | null {
  if (cp > 0x10ffff) return `${hex(cp)} is beyond Unicode; remove it`;
  if ((cp < 0x20 && cp !== TAB && cp !== LF && cp !== 0x0d) || (cp >= 0x7f && cp <= 0x9f)) {
    const c1 = cp >= 0x80 ? ' (text decoded in the wrong encoding, e.g. Windows-1252 quotes read as Latin-1?)' : ' (is this a binary file?)';
    return `control character ${hex(cp)} is not allowed in appliance definitions${c1}; remove it`;
  }
  if (cp >= 0xd800 && cp <= 0xdfff) return `a lone UTF-16 surrogate (${hex(cp)}) is not a character: the text was damaged on the way; save the file as UTF-8 again`;
  if ((cp >= 0xe000 && cp <= 0xf8ff) || (cp >= 0xf0000 && cp <= 0x10fffd && (cp & 0xfffe) !== 0xfffe)) {
    return `private-use character ${hex(cp)} is not allowed in appliance definitions (it means something only to one font or program); remove it or write what it stands for`;
  }
  if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) return `${hex(cp)} is not a character (a Unicode noncharacter); remove it`;
  return null;
}

// Everything refusedCharacter refuses, as one class, so the raw text is searched in one pass.
const REFUSED = new RegExp(
  `[\\u{0}-\\u{8}\\u{B}\\u{C}\\u{E}-\\u{1F}\\u{7F}-\\u{9F}\\u{D800}-\\u{DFFF}\\u{E000}-\\u{F8FF}\\u{FDD0}-\\u{FDEF}${Array.from(
    { length: 15 },
    (_, plane) => `\\u{${(plane * 0x10000 + 0xfffe).toString(16)}}\\u{${(plane * 0x10000 + 0xffff).toString(16)}}`,
  ).join('')}\\u{F0000}-\\u{10FFFF}]`,
  'u',
);

// ---------------------------------------------------------------------------------------------
// References: the five predefined entities and character references, nothing else (no DTD).

const PREDEFINED = [
  ['lt', '<'],
  ['gt', '>'],
  ['amp', '&'],
  ['quot', '"'],
  ['apos', "'"],
] as const;

function isRefChar(c: number): boolean {
  return c !== SEMI && c !== AMP && c !== LT && !isSpace(c);
}

/** What one reference is: where it ends, what it stands for (null: nothing, it is refused), and the problem with it. */
interface Ref {
  end: number;
  value: string | null;
  problem: string | null;
}
// Reused by every call: reading a megabyte of "&amp;" allocates nothing per reference.
const ref: Ref = { end: 0, value: null, problem: null };

function digitValue(c: number, hex: boolean): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (!hex) return -1;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/** Reads the reference at t[amp] ("&"), not past `end`, into `ref`; `decode` also makes the character of a character reference. */
function readRef(t: string, amp: number, end: number, decode: boolean): Ref {
  let k = amp + 1;
  while (k < end && isRefChar(t.charCodeAt(k))) k++;
  ref.problem = null;
  if (k >= end || t.charCodeAt(k) !== SEMI || k === amp + 1) {
    ref.end = amp + 1;
    ref.value = '&';
    ref.problem = `a bare "&" must be written &amp; (got ${quote(t.slice(amp, k < end && t.charCodeAt(k) === SEMI ? k + 1 : k))})`;
    return ref;
  }
  ref.end = k + 1;
  const len = k - amp - 1;
  for (let p = 0; p < PREDEFINED.length; p++) {
    const [name, value] = PREDEFINED[p]!;
    if (name.length === len && t.startsWith(name, amp + 1)) {
      ref.value = value;
      return ref;
    }
  }
  ref.value = null;
  if (t.charCodeAt(amp + 1) === 0x23 /* # */) {
    const hex = t.charCodeAt(amp + 2) === 0x78; /* x */
    const first = amp + (hex ? 3 : 2);
    let cp = 0;
    let ok = k > first && k - first <= (hex ? 6 : 7);
    for (let d = first; ok && d < k; d++) {
      const v = digitValue(t.charCodeAt(d), hex);
      if (v < 0) ok = false;
      else cp = cp * (hex ? 16 : 10) + v;
    }
    if (ok) {
      const why = refusedCharacter(cp);
      if (why === null) {
        if (decode) ref.value = String.fromCodePoint(cp);
        else ref.value = '';
      } else ref.problem = `character reference ${t.slice(amp, k + 1)}: ${why}`;
      return ref;
    }
  }
  ref.problem = `undefined entity ${t.slice(amp, k + 1)}: appliance definitions have no DTD, so only &amp; &lt; &gt; &quot; &apos; and character references like &#169; work; write the character itself`;
  return ref;
}

/** The first "&" in t[from..to), or -1; searched only there, since the next "&" may be far beyond. */
function ampersandIn(t: string, from: number, to: number): number {
  for (let k = from; k < to; k++) if (t.charCodeAt(k) === AMP) return k;
  return -1;
}

// In an attribute, XML turns literal tabs and line breaks into spaces; those written as references stay.
function literal(t: string, from: number, to: number, attribute: boolean): string {
  return attribute ? t.slice(from, to).replace(/[\t\n]/g, ' ') : t.slice(from, to);
}

/** t[from..to) with its references decoded (their problems were said while reading). */
function decodeRefs(t: string, from: number, to: number, attribute: boolean): string {
  let amp = ampersandIn(t, from, to);
  if (amp === -1) return literal(t, from, to, attribute);
  let out = '';
  let at = from;
  while (amp !== -1) {
    out += literal(t, at, amp, attribute);
    const r = readRef(t, amp, to, true);
    out += r.value ?? '';
    at = r.end;
    amp = ampersandIn(t, at, to);
  }
  return out + literal(t, at, to, attribute);
}

// ---------------------------------------------------------------------------------------------
// The tree.

const NONE = -1;

/** How much of the text beside child elements is kept: enough to quote it. */
const TEXT_BESIDE_ELEMENTS = 256;

// A name's hash, for numbering names without making strings of them; the reader works it out
// while it scans a tag's name, so the characters are read once.
const hashStep = (h: number, c: number): number => (Math.imul(h, 31) + c) | 0;

function nameHash(s: string, from: number, to: number): number {
  let h = 0;
  for (let k = from; k < to; k++) h = hashStep(h, s.charCodeAt(k));
  return h;
}

/** Elements as numbers; XmlElement objects on request. */
export class XmlTree {
  // Names by number: where each is first spelled, and its string once someone asks. Numbered
  // through an open-addressing table of hashes of the text in place, so a megabyte of distinct
  // names makes no string and no object until one is needed.
  private readonly nameFrom: Int32Array;
  private readonly nameLength: Int32Array;
  private names = 0;
  private readonly nameStrings = new Map<number, string>();
  private readonly slots: Int32Array;
  readonly nameId: Int32Array;
  /** Offset of each element's "<". */
  readonly start: Int32Array;
  /** Offset just past each start tag's ">" (or "/>"). */
  readonly tagEnd: Int32Array;
  readonly parentOf: Int32Array;
  readonly firstChildOf: Int32Array;
  readonly nextSiblingOf: Int32Array;
  /** Text and CDATA directly inside an element: a list of chunks per element. */
  readonly firstChunk: Int32Array;
  readonly chunkFrom: Int32Array;
  readonly chunkTo: Int32Array;
  readonly chunkNext: Int32Array;
  /** Negative: a CDATA section (its content, raw); else text with references. */
  readonly chunkKind: Int8Array;
  count = 0;
  chunks = 0;
  readonly roots: number[] = [];
  /** Reference problems by element, in document order of the elements. */
  readonly refProblems = new Map<number, ReferenceProblem[]>();
  private readonly made = new Map<number, XmlElement>();

  constructor(readonly text: string) {
    // Every element takes at least four characters ("<x/>"; more if open at the end, bounded by
    // the depth), so this is room for all of them at once, and no growing.
    const room = (text.length >> 2) + MAX_DEPTH + 2;
    this.nameId = new Int32Array(room);
    this.nameFrom = new Int32Array(room);
    this.nameLength = new Int32Array(room);
    // A power of two at least twice the most names there can be: probes stay short. A slot holds
    // a name's number plus one, so the zeroes a new array starts with mean "empty".
    let size = 16;
    while (size < room * 2) size *= 2;
    this.slots = new Int32Array(size);
    this.start = new Int32Array(room);
    this.tagEnd = new Int32Array(room);
    this.parentOf = new Int32Array(room);
    this.firstChildOf = new Int32Array(room);
    this.nextSiblingOf = new Int32Array(room);
    this.firstChunk = new Int32Array(room);
    // A chunk is at least a character and ends at markup of three or more ("<a>"), or at the end.
    this.chunkFrom = new Int32Array(room);
    this.chunkTo = new Int32Array(room);
    this.chunkNext = new Int32Array(room);
    this.chunkKind = new Int8Array(room);
  }

  /** How many different names the elements have. */
  get nameCount(): number {
    return this.names;
  }

  /** The number of the name s[from..to) whose hash is `h`, made on first sight when `s` is the text. */
  private lookUp(s: string, from: number, to: number, h: number, make: boolean): number {
    const t = this.text;
    const mask = this.slots.length - 1;
    for (let slot = h & mask; ; slot = (slot + 1) & mask) {
      const id = this.slots[slot]! - 1;
      if (id === NONE) {
        if (!make) return NONE;
        const made = this.names++;
        this.nameFrom[made] = from;
        this.nameLength[made] = to - from;
        this.slots[slot] = made + 1;
        return made;
      }
      const at = this.nameFrom[id]!;
      const length = this.nameLength[id]!;
      if (length === to - from) {
        let same = true;
        for (let k = 0; same && k < length; k++) same = t.charCodeAt(at + k) === s.charCodeAt(from + k);
        if (same) return id;
      }
    }
  }

  /** The number of the name text[from..to), whose nameHash() is `h`. */
  numberName(from: number, to: number, h: number): number {
    return this.lookUp(this.text, from, to, h, true);
  }

  /** The number of a name, or -1 when no element has it. */
  numberOf(name: string): number {
    return this.lookUp(name, 0, name.length, nameHash(name, 0, name.length), false);
  }

  nameOfNumber(id: number): string {
    let name = this.nameStrings.get(id);
    if (name === undefined) {
      name = this.text.slice(this.nameFrom[id]!, this.nameFrom[id]! + this.nameLength[id]!);
      this.nameStrings.set(id, name);
    }
    return name;
  }

  name(i: number): string {
    return this.nameOfNumber(this.nameId[i]!);
  }
  nameLengthOf(i: number): number {
    return this.nameLength[this.nameId[i]!]!;
  }
  /** The number of element `i`'s name, the same for every element of that name. */
  nameNumber(i: number): number {
    return this.nameId[i]!;
  }
  offset(i: number): number {
    return this.start[i]!;
  }
  parent(i: number): number {
    return this.parentOf[i]!;
  }
  firstChild(i: number): number {
    return this.firstChildOf[i]!;
  }
  nextSibling(i: number): number {
    return this.nextSiblingOf[i]!;
  }
  refs(i: number): readonly ReferenceProblem[] {
    return this.refProblems.get(i) ?? [];
  }

  /** The element as an object, its attributes and text decoded; made once. */
  element(i: number): XmlElement {
    let el = this.made.get(i);
    if (el === undefined) {
      const text = this.textOf(i);
      el = { index: i, name: this.name(i), offset: this.start[i]!, textOffset: text.offset, attrs: this.attributesOf(i), text: text.value, firstChild: this.firstChildOf[i]! };
      this.made.set(i, el);
    }
    return el;
  }

  private attributesOf(i: number): ReadonlyMap<string, XmlAttribute> {
    const t = this.text;
    const attrs = new Map<string, XmlAttribute>();
    let j = this.start[i]! + 1 + this.name(i).length;
    const end = this.tagEnd[i]!;
    // The reader has checked the tag; this only takes it apart.
    for (;;) {
      while (j < end && isSpace(t.charCodeAt(j))) j++;
      const c = t.charCodeAt(j);
      if (j >= end || c === GT || c === SLASH) return attrs;
      const nameStart = j;
      while (t.charCodeAt(j) !== EQ && !isSpace(t.charCodeAt(j))) j++;
      const name = t.slice(nameStart, j);
      j = t.indexOf('=', j) + 1;
      while (isSpace(t.charCodeAt(j))) j++;
      const close = t.indexOf(t[j]!, j + 1);
      attrs.set(name, { value: decodeRefs(t, j + 1, close, true), offset: nameStart });
      j = close + 1;
    }
  }

  private textOf(i: number): { value: string; offset: number } {
    const t = this.text;
    const limit = this.firstChildOf[i] === NONE ? Infinity : TEXT_BESIDE_ELEMENTS;
    let value = '';
    let offset = -1;
    for (let k = this.firstChunk[i]!; k !== NONE && value.length < limit; k = this.chunkNext[k]!) {
      const from = this.chunkFrom[k]!;
      const to = this.chunkTo[k]!;
      if (offset === -1) {
        let s = from;
        while (s < to && isSpace(t.charCodeAt(s))) s++;
        if (s < to) offset = s;
        else continue;
      }
      value += this.chunkKind[k]! < 0 ? t.slice(from, to) : decodeRefs(t, from, to, false);
    }
    return { value: value.trim(), offset: offset === -1 ? this.start[i]! : offset };
  }
}

/**
 * The tree, or null when the document could not be read; and the problems found on the way (for
 * a null tree, the reasons).
 */
export interface XmlReading {
  tree: XmlTree | null;
  problems: RawProblem[];
  unsaid: Unsaid;
  source: Source;
}

// ---------------------------------------------------------------------------------------------
// Reading.

/** A well-formedness error: reading stops here. */
class Stop {
  constructor(
    readonly offset: number,
    readonly message: string,
  ) {}
}

const XML_DECLARATION = /^<\?xml([ \t\n][^]*?)?\?>/;
const DECLARATION_BODY = /^[ \t\n]+version[ \t\n]*=[ \t\n]*(["'])([^"']*)\1(?:[ \t\n]+encoding[ \t\n]*=[ \t\n]*(["'])[A-Za-z][A-Za-z0-9._-]*\3)?(?:[ \t\n]+standalone[ \t\n]*=[ \t\n]*(["'])(?:yes|no)\4)?[ \t\n]*$/;
const DECLARATION_EXAMPLE = "<?xml version='1.0' encoding='utf-8'?>";

function describeChar(text: string, i: number): string {
  if (i >= text.length) return 'the end of the file';
  const cp = text.codePointAt(i)!;
  return cp > SPACE && cp < 0x7f ? `"${String.fromCodePoint(cp)}"` : cp === SPACE ? 'a space' : cp === LF ? 'a line break' : hex(cp);
}

/** The most attributes one element may have: bounds the duplicate check, and what the checker is handed. */
export const MAX_ATTRIBUTES = 64;

function sameText(t: string, a: number, aEnd: number, b: number, bEnd: number): boolean {
  if (aEnd - a !== bEnd - b) return false;
  for (let k = 0; k < aEnd - a; k++) if (t.charCodeAt(a + k) !== t.charCodeAt(b + k)) return false;
  return true;
}

class Reader {
  private i = 0;
  private readonly t: string;
  readonly tree: XmlTree;
  /** Open elements, innermost last. */
  private readonly stack: number[] = [];
  /** The last chunk of each open element, parallel to the stack. */
  private readonly lastChunk: number[] = [];
  /** The last child of each open element (and of the document), parallel to the stack plus one. */
  private readonly lastChild: number[] = [NONE];
  readonly problems: RawProblem[] = [];
  readonly unsaid = new Unsaid();
  private processingInstructions = 0;
  private saidOutside = false;
  // Where the next "&", "<" and "]]>" are at or after the place being read (-1: none): each is
  // searched for once per occurrence, not once per text, so many small texts stay linear.
  private nextAmp = -2;
  private nextLt = -2;
  private nextCdataEnd = -2;
  private lastNameId = -1;
  private lastNameFrom = 0;
  private lastNameTo = 0;
  private lastNameHash = 0;
  private scannedHash = 0;
  // The attribute names of the start tag being read, as offsets and hashes, for the duplicate check.
  private readonly attrStarts = new Int32Array(MAX_ATTRIBUTES);
  private readonly attrEnds = new Int32Array(MAX_ATTRIBUTES);
  private readonly attrHashes = new Int32Array(MAX_ATTRIBUTES);

  constructor(
    text: string,
    private readonly src: Source,
  ) {
    this.t = text;
    this.tree = new XmlTree(text);
  }

  private ltFrom(from: number): number {
    if (this.nextLt !== -1 && this.nextLt < from) this.nextLt = this.t.indexOf('<', from);
    return this.nextLt;
  }
  private ampFrom(from: number): number {
    if (this.nextAmp !== -1 && this.nextAmp < from) this.nextAmp = this.t.indexOf('&', from);
    return this.nextAmp;
  }
  private cdataEndFrom(from: number): number {
    if (this.nextCdataEnd !== -1 && this.nextCdataEnd < from) this.nextCdataEnd = this.t.indexOf(']]>', from);
    return this.nextCdataEnd;
  }

  read(): XmlTree {
    const t = this.t;
    this.declaration();
    while (this.i < t.length) {
      const lt = this.ltFrom(this.i);
      const end = lt === -1 ? t.length : lt;
      if (end > this.i) this.content(this.i, end);
      if (lt === -1) break;
      const c = t.charCodeAt(lt + 1);
      if (c === SLASH) this.endTag(lt);
      else if (c === BANG) this.markup(lt);
      else if (c === QUESTION) this.processingInstruction(lt);
      else this.startTag(lt);
    }
    if (this.stack.length > 0) {
      const open = this.stack.at(-1)!;
      const others = this.stack.slice(0, -1).map((e) => `<${this.tree.name(e)}> (line ${this.src.line(this.tree.offset(e))})`);
      const outer = others.length > 0 ? `; ${others.join(', ')} ${others.length > 1 ? 'are' : 'is'} not closed either` : '';
      const name = this.tree.name(open);
      throw new Stop(this.tree.offset(open), `<${name}> is never closed: the file ends first; add </${name}> after its content${outer}`);
    }
    return this.tree;
  }

  private declaration(): void {
    const t = this.t;
    const m = XML_DECLARATION.exec(t);
    if (!m) {
      if (t.startsWith('<?xml') && (t.length === 5 || isSpace(t.charCodeAt(5)) || t.charCodeAt(5) === QUESTION)) {
        throw new Stop(0, `the XML declaration is never finished; write ${DECLARATION_EXAMPLE}`);
      }
      return;
    }
    const body = DECLARATION_BODY.exec(m[1] ?? '');
    if (!body) throw new Stop(0, `the XML declaration ${quote(m[0])} is not one; write ${DECLARATION_EXAMPLE} (or leave it out)`);
    if (body[2] !== '1.0') throw new Stop(0, `XML version ${quote(body[2]!)} is not supported: appliance definitions are XML 1.0; write ${DECLARATION_EXAMPLE}`);
    this.i = m[0].length;
  }

  private addChunk(el: number, from: number, to: number, cdata: boolean): void {
    const tree = this.tree;
    // Unreachable by the arithmetic in XmlTree's constructor; a typed array would drop the write silently.
    if (tree.chunks >= tree.chunkFrom.length) throw new Stop(from, 'more text than the reader has room for');
    const k = tree.chunks++;
    tree.chunkFrom[k] = from;
    tree.chunkTo[k] = to;
    tree.chunkNext[k] = NONE;
    tree.chunkKind[k] = cdata ? -1 : 0;
    const top = this.lastChunk.length - 1;
    const last = this.lastChunk[top]!;
    if (last === NONE) tree.firstChunk[el] = k;
    else tree.chunkNext[last] = k;
    this.lastChunk[top] = k;
  }

  /** Text or whitespace between markup, from..to. */
  private content(from: number, to: number): void {
    const t = this.t;
    const open = this.stack.length > 0 ? this.stack[this.stack.length - 1]! : NONE;
    let k = from;
    while (k < to && isSpace(t.charCodeAt(k))) k++;
    if (open === NONE) {
      if (k < to && !this.saidOutside) {
        this.saidOutside = true;
        this.problems.push({ path: '/', offset: k, message: `text outside the <appliance> element (${quote(t.slice(k, to).trim())}); everything belongs inside <appliance>…</appliance>` });
      }
      return;
    }
    // Blank, and nothing before it: it would be trimmed anyway.
    if (k === to && this.lastChunk[this.lastChunk.length - 1] === NONE) return;
    const cdataEnd = this.cdataEndFrom(from);
    if (cdataEnd !== -1 && cdataEnd < to) throw new Stop(cdataEnd, '"]]>" may not appear in text; write ]]&gt;');
    this.checkRefs(open, null, from, to);
    this.addChunk(open, from, to, false);
  }

  /** Says what is wrong with the references in t[from..to), which belongs to element `el`. */
  private checkRefs(el: number, attr: string | null, from: number, to: number): void {
    for (let amp = this.ampFrom(from); amp !== -1 && amp < to; amp = this.ampFrom(amp + 1)) {
      const r = readRef(this.t, amp, to, false);
      if (r.problem !== null) this.refProblem(el, attr, amp, r.problem);
    }
  }

  private refProblem(el: number, attr: string | null, offset: number, message: string): void {
    const problems = this.tree.refProblems;
    const list = problems.get(el);
    // Bounded in each element and in how many elements have any, both in document order.
    if (list === undefined ? problems.size >= MAX_SAID : list.length >= MAX_SAID) return this.unsaid.add(offset);
    if (list === undefined) problems.set(el, [{ attr, offset, message }]);
    else list.push({ attr, offset, message });
  }

  private name(at: number): number {
    const t = this.t;
    if (at >= t.length || !isNameStart(t.charCodeAt(at))) return at;
    let j = at + 1;
    while (j < t.length && isNameChar(t.charCodeAt(j))) j++;
    return j;
  }

  /** The number of the name t[from..to), whose hash is `h`. */
  private nameIdOf(from: number, to: number, h: number): number {
    // Siblings tend to share a name: the last one is compared before the table is asked.
    const last = this.lastNameId;
    if (last !== NONE && this.lastNameHash === h && sameText(this.t, this.lastNameFrom, this.lastNameTo, from, to)) return last;
    this.lastNameId = this.tree.numberName(from, to, h);
    this.lastNameFrom = from;
    this.lastNameTo = to;
    this.lastNameHash = h;
    return this.lastNameId;
  }

  /** Where the element name at `at` ends (at itself: none), its hash in `scannedHash`. */
  private tagName(at: number): number {
    const t = this.t;
    const n = t.length;
    if (at >= n) return at;
    let c = t.charCodeAt(at);
    if (!isNameStart(c)) return at;
    let h = hashStep(0, c);
    let j = at + 1;
    while (j < n) {
      c = t.charCodeAt(j);
      if (!isNameChar(c)) break;
      h = hashStep(h, c);
      j++;
    }
    this.scannedHash = h;
    return j;
  }

  private skipSpace(at: number): number {
    const t = this.t;
    let j = at;
    while (j < t.length && isSpace(t.charCodeAt(j))) j++;
    return j;
  }

  private startTag(lt: number): void {
    const t = this.t;
    const nameEnd = this.tagName(lt + 1);
    if (nameEnd === lt + 1) {
      throw new Stop(lt, `a "<" that does not start a tag must be written &lt; (it is followed by ${describeChar(t, lt + 1)})`);
    }
    const tree = this.tree;
    const el = tree.count;
    // Unreachable by the arithmetic in XmlTree's constructor; a typed array would drop the write silently.
    if (el >= tree.start.length) throw new Stop(lt, 'more elements than the reader has room for');
    const id = this.nameIdOf(lt + 1, nameEnd, this.scannedHash);
    let j = nameEnd;
    let selfClosing = false;
    let attributes = 0;
    for (;;) {
      const before = j;
      j = this.skipSpace(j);
      const c = t.charCodeAt(j);
      if (c === GT) {
        j++;
        break;
      }
      if (c === SLASH && t.charCodeAt(j + 1) === GT) {
        selfClosing = true;
        j += 2;
        break;
      }
      if (j >= t.length) throw new Stop(lt, `the start tag <${t.slice(lt + 1, nameEnd)} is never finished: end it with > (or /> for an element without content)`);
      const attrEnd = this.name(j);
      if (attrEnd === j) throw new Stop(j, `unexpected ${describeChar(t, j)} in the start tag <${t.slice(lt + 1, nameEnd)}>; attributes are written name='value'`);
      if (j === before) throw new Stop(j, `put a space before the attribute ${t.slice(j, attrEnd)} in <${t.slice(lt + 1, nameEnd)}>`);
      let k = this.skipSpace(attrEnd);
      if (t.charCodeAt(k) !== EQ) throw new Stop(j, `the attribute ${t.slice(j, attrEnd)} on <${t.slice(lt + 1, nameEnd)}> needs a value: write ${t.slice(j, attrEnd)}='…'`);
      k = this.skipSpace(k + 1);
      const q = t.charCodeAt(k);
      if (q !== DQUOTE && q !== SQUOTE) throw new Stop(k, `the value of ${t.slice(j, attrEnd)} on <${t.slice(lt + 1, nameEnd)}> must be in quotes: ${t.slice(j, attrEnd)}='…'`);
      const close = t.indexOf(q === DQUOTE ? '"' : "'", k + 1);
      if (close === -1) throw new Stop(k, `the value of ${t.slice(j, attrEnd)} on <${t.slice(lt + 1, nameEnd)}> is never closed: end it with ${q === DQUOTE ? '"' : "'"}`);
      const rawLt = this.ltFrom(k + 1);
      if (rawLt !== -1 && rawLt < close) throw new Stop(rawLt, `attribute ${t.slice(j, attrEnd)} of <${t.slice(lt + 1, nameEnd)}> contains a raw "<"; write it as &lt;`);
      if (attributes === MAX_ATTRIBUTES) {
        throw new Stop(j, `<${t.slice(lt + 1, nameEnd)}> has more than ${MAX_ATTRIBUTES} attributes; no element of an appliance definition takes more than 7 (<boot>); remove the rest`);
      }
      // Duplicates: compared in place, by hash first, so a tag costs no strings.
      const hash = nameHash(t, j, attrEnd);
      for (let a = 0; a < attributes; a++) {
        if (this.attrHashes[a] === hash && sameText(t, this.attrStarts[a]!, this.attrEnds[a]!, j, attrEnd)) {
          throw new Stop(j, `the attribute ${t.slice(j, attrEnd)} appears twice on <${t.slice(lt + 1, nameEnd)}> (first at column ${this.src.column(this.attrStarts[a]!)}); keep one`);
        }
      }
      this.attrStarts[attributes] = j;
      this.attrEnds[attributes] = attrEnd;
      this.attrHashes[attributes] = hash;
      attributes++;
      const amp = this.ampFrom(k + 1);
      if (amp !== -1 && amp < close) this.checkRefs(el, t.slice(j, attrEnd), k + 1, close);
      j = close + 1;
    }
    // Recorded only now that the tag is whole.
    tree.count++;
    tree.nameId[el] = id;
    tree.start[el] = lt;
    tree.tagEnd[el] = j;
    tree.firstChildOf[el] = NONE;
    tree.nextSiblingOf[el] = NONE;
    tree.firstChunk[el] = NONE;
    const depth = this.stack.length;
    const parent = depth > 0 ? this.stack[depth - 1]! : NONE;
    tree.parentOf[el] = parent;
    const previous = this.lastChild[depth]!;
    if (previous !== NONE) tree.nextSiblingOf[previous] = el;
    else if (parent !== NONE) tree.firstChildOf[parent] = el;
    this.lastChild[depth] = el;
    if (parent === NONE) tree.roots.push(el);
    this.i = j;
    if (selfClosing) return;
    if (depth >= MAX_DEPTH) {
      throw new Stop(lt, `<${t.slice(lt + 1, nameEnd)}> is nested ${depth + 1} elements deep; appliance definitions are at most 3 deep and storm reads at most ${MAX_DEPTH}`);
    }
    this.stack.push(el);
    this.lastChunk.push(NONE);
    this.lastChild.push(NONE);
  }

  private endTag(lt: number): void {
    const t = this.t;
    const nameEnd = this.name(lt + 2);
    const gt = this.skipSpace(nameEnd);
    if (nameEnd === lt + 2) throw new Stop(lt, `"</" must be followed by the name of the element it closes (got ${describeChar(t, lt + 2)})`);
    if (t.charCodeAt(gt) !== GT) throw new Stop(lt, `the end tag </${t.slice(lt + 2, nameEnd)} is never finished: end it with >`);
    this.i = gt + 1;
    const tree = this.tree;
    const depth = this.stack.length;
    if (depth === 0) throw new Stop(lt, `</${t.slice(lt + 2, nameEnd)}> closes nothing: no element is open here`);
    const open = this.stack[depth - 1]!;
    const openAt = tree.offset(open) + 1;
    if (sameText(t, openAt, openAt + tree.nameLengthOf(open), lt + 2, nameEnd)) {
      this.stack.pop();
      this.lastChunk.pop();
      this.lastChild.pop();
      return;
    }
    const name = t.slice(lt + 2, nameEnd);
    const openName = tree.name(open);
    if (this.stack.some((e) => tree.name(e) === name)) {
      throw new Stop(tree.offset(open), `<${openName}> is never closed: </${name}> at line ${this.src.line(lt)} comes first; add </${openName}> before it`);
    }
    const guess = closest(name, [openName]);
    throw new Stop(
      lt,
      `</${name}> does not match the open <${openName}> (line ${this.src.line(tree.offset(open))})${guess ? `; write </${openName}>` : `; close <${openName}> with </${openName}>`}`,
    );
  }

  private markup(lt: number): void {
    const t = this.t;
    if (t.startsWith('<!--', lt)) {
      const close = t.indexOf('-->', lt + 4);
      if (close === -1) throw new Stop(lt, 'a comment is never closed: end it with -->');
      const dashes = t.indexOf('--', lt + 4);
      if (dashes < close) throw new Stop(dashes, 'a comment may not contain "--" (XML forbids it); write something else');
      this.i = close + 3;
      return;
    }
    if (t.startsWith('<![CDATA[', lt)) {
      const close = t.indexOf(']]>', lt + 9);
      if (close === -1) throw new Stop(lt, 'a CDATA section is never closed: end it with ]]>');
      if (this.stack.length === 0) throw new Stop(lt, 'a CDATA section outside the <appliance> element; everything belongs inside <appliance>…</appliance>');
      this.addChunk(this.stack[this.stack.length - 1]!, lt + 9, close, true);
      this.i = close + 3;
      return;
    }
    // <!DOCTYPE and <!ENTITY are refused before reading; anything else is no markup a definition has.
    throw new Stop(lt, `unexpected "<!": only comments <!-- … --> and CDATA sections <![CDATA[ … ]]> start that way in an appliance definition`);
  }

  private processingInstruction(lt: number): void {
    const t = this.t;
    const targetEnd = this.name(lt + 2);
    const target = t.slice(lt + 2, targetEnd);
    if (target === '') throw new Stop(lt, `"<?" must be followed by a name (it starts a processing instruction); to write "<?" as text, write &lt;?`);
    if (target === 'xml') {
      throw new Stop(lt, `the XML declaration must be the very first thing in the file (line 1, column 1, before any space or comment); move it there or remove it`);
    }
    const close = t.indexOf('?>', lt + 2);
    if (close === -1) throw new Stop(lt, `the processing instruction <?${target} is never closed: end it with ?> (or better, remove it)`);
    this.i = close + 2;
    if (++this.processingInstructions > MAX_SAID) return this.unsaid.add(lt);
    this.problems.push({
      path: '/',
      offset: lt,
      message: `processing instruction <?${target} …?> is not allowed in appliance definitions (only the XML declaration ${DECLARATION_EXAMPLE} at the very start is); remove it`,
    });
  }
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

/**
 * Reads a definition document; `doc` names it in messages about the document as a whole.
 * `sizeChecked`: the caller has held the document's bytes to the size cap already.
 */
export function readXml(xml: string, doc: string, sizeChecked = false): XmlReading {
  const refused = (src: Source, offset: number | null, message: string): XmlReading => ({ tree: null, problems: [{ path: '/', offset, message }], unsaid: new Unsaid(), source: src });
  // A character is one to four bytes: only a string that long could be over.
  if (!sizeChecked && xml.length > MAX_DEFINITION_BYTES / 4) {
    const bytes = utf8Length(xml);
    if (bytes > MAX_DEFINITION_BYTES) return refused(new Source(''), null, tooBigMessage(bytes, doc));
  }
  // XML normalizes line ends before anything else; doing it here keeps offsets and lines honest.
  const text = (xml.startsWith('\uFEFF') ? xml.slice(1) : xml).replace(/\r\n?/g, '\n');
  const src = new Source(text);

  const declared = encodingProblem(text.slice(0, 256));
  if (declared) return refused(src, declared.offset, declared.message);

  // Checked on the raw text, before anything reads it, and even inside comments or CDATA: a
  // DOCTYPE is the door to entity expansion and external entities, and no definition needs one.
  const doctype = /<!DOCTYPE|<!ENTITY/i.exec(text);
  if (doctype) {
    return refused(
      src,
      doctype.index,
      'DOCTYPE declarations and entities are not allowed in appliance definitions (they enable entity expansion such as "billion laughs" and external entities/XXE); remove the <!DOCTYPE …> and write characters directly or as &amp; &lt; &gt; &quot; &apos; or &#…;',
    );
  }

  if (text.trim() === '') return refused(src, 0, `${doc} is empty; an appliance definition starts with ${APPLIANCE_START_TAG}`);

  const bad = REFUSED.exec(text);
  if (bad) return refused(src, bad.index, refusedCharacter(bad[0].codePointAt(0)!)!);

  const reader = new Reader(text, src);
  try {
    return { tree: reader.read(), problems: reader.problems, unsaid: reader.unsaid, source: src };
  } catch (e) {
    if (!(e instanceof Stop)) throw e;
    return { tree: null, problems: [...reader.problems, { path: '/', offset: e.offset, message: e.message }], unsaid: reader.unsaid, source: src };
  }
}
