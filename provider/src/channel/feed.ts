// A channel's feed read back into listings: RSS 2.0 as the catalog site writes it
// (catalog-site/src/lib/feed.ts), with storm's elements in CHANNEL_FEED_NAMESPACE (../rules.ts).
//
//   <?xml version="1.0" encoding="UTF-8"?>                            optional; UTF-8 only
//   <rss version="2.0" xmlns:storm="https://storm.invalid/xmlns/channel/1">
//     <channel>
//       <title>the channel's title</title>
//       <item>                                                        one per appliance version
//         <title>label</title> <link>page</link> <description>HTML, escaped</description>
//         <enclosure url="IMAGE-URL" length="BYTES (0: not known)" type="…"/>
//         <storm:name>NAME</storm:name>  <storm:version>VERSION</storm:version>
//         <storm:definition>URL</storm:definition>  <storm:definition-sha256>HEX</storm:definition-sha256>?
//         <storm:sha256>HEX, the image's</storm:sha256>  <storm:signature>URL</storm:signature>?
//         <storm:base name="NAME" url="URL" sha256="HEX" sig="URL"?/>?   none: a single-layer appliance
//         <storm:provides>NAME</storm:provides>*  <storm:dependency>NAME[:VERSION]</storm:dependency>*
//       </item>
//     </channel>
//   </rss>
//
// Anything else is allowed and ignored. What storm reads must be what the catalog could have
// written: names and versions by the rules every part of storm shares (they become volume names
// on a server), checksums as sha256sum prints them, absolute URLs (a relative one would be read
// against the provider's working directory: a feed could name files on the user's machine), each
// appliance version once. A feed that breaks a rule is refused whole, saying where and what: a
// user cannot fix a channel, but can tell its publisher exactly what to fix, and a listing with
// holes would resolve dependencies differently from the one the publisher meant.
//
// The reader is storm's own, not an RSS library: one pass over the text with an explicit stack,
// nothing expanded (no DTD; only XML's five entities and character references), a size cap
// checked before anything is read, so its time is linear in the input whatever its shape. The
// rss-parser it replaces was not: its description snippet (a regex) took 4.5 s on 94 KiB of
// "a&lt;p" and grows with the square of it, its XML builder overflowed the stack on a description
// 10,000 elements deep, and it read 8.5 MiB in 1.3 s, so a feed at the cap took longer than the
// two seconds storm allows a feed.
import { CHANNEL_FEED_NAMESPACE, MAX_CHANNEL_DOCUMENT_BYTES, MIB, NAME_PATTERN, NAME_RULE, SHA256_PATTERN, VERSION_PATTERN, VERSION_RULE } from '../rules.ts';

export interface ChannelImage {
  url: string;
  sha256: string;
  sig: string | null;
}

export interface ChannelItem {
  name: string;
  version: string;
  label: string;
  description: string;
  link: string | null;
  definitionUrl: string;
  /** Checksum of the definition document, so what the signed feed says covers it too. */
  definitionSha256: string | null;
  /** `sizeBytes`: the enclosure's length; null when it says 0 ("not known", RSS's words) or is no byte count. */
  image: ChannelImage & { sizeBytes: number | null };
  /** Null: a single-layer appliance (no storm:base; its image is its own base). */
  base: (ChannelImage & { name: string }) | null;
  provides: string[];
  dependencies: string[];
}

export interface ChannelFeed {
  title: string;
  items: ChannelItem[];
}

/** Why a feed was refused, in words its publisher can act on, starting with where. */
export class FeedError extends Error {}

/**
 * The biggest feed storm reads. The catalog site writes about 0.85 MiB for 1000 appliance
 * versions, so this is some 19,000 of them; the cap bounds the memory and the time (well under
 * the two seconds a feed may take) whatever a URL serves.
 */
export const MAX_FEED_BYTES = MAX_CHANNEL_DOCUMENT_BYTES;

/** A feed is four deep (rss › channel › item › storm:name); extensions get room, a stack does not get hurt. */
export const MAX_FEED_DEPTH = 32;

/** No element of a feed takes more than a handful (storm:base: four). */
export const MAX_FEED_ATTRIBUTES = 64;

const UTF8_ONLY = 'storm reads channel feeds as UTF-8, as the catalog site writes them';

// ---------------------------------------------------------------------------------------------
// Characters and wording.

const hex = (cp: number): string => `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;

/**
 * Why a code point has no place in a feed, or null. The same characters appliance definitions
 * refuse (definition/xml-reader.ts; a test holds the two to each other), because everything a
 * feed lists came from a definition: one of these in a feed was put there on the way. Private-use
 * characters are also the catalog site's placeholders while it writes the feed.
 */
export function feedCharacterProblem(cp: number): string | null {
  if (cp > 0x10ffff) return `${hex(cp)} is beyond Unicode`;
  if ((cp < 0x20 && cp !== 0x09 && cp !== 0x0a && cp !== 0x0d) || (cp >= 0x7f && cp <= 0x9f)) {
    return `control character ${hex(cp)}${cp >= 0x80 ? ' (text decoded in the wrong encoding?)' : ' (is this a binary file?)'} has no place in a feed`;
  }
  if (cp >= 0xd800 && cp <= 0xdfff) return `a lone UTF-16 surrogate (${hex(cp)}) is not a character: the text was damaged on the way`;
  if ((cp >= 0xe000 && cp <= 0xf8ff) || (cp >= 0xf0000 && cp <= 0x10fffd && (cp & 0xfffe) !== 0xfffe)) {
    return `private-use character ${hex(cp)} means something only to one font or program (the catalog site uses such characters as placeholders while it writes a feed: was this one built wrongly?)`;
  }
  if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) return `${hex(cp)} is not a character (a Unicode noncharacter)`;
  return null;
}

// feedCharacterProblem's characters, as one class, so the text is searched in one pass.
const REFUSED = new RegExp(
  `[\\u{0}-\\u{8}\\u{B}\\u{C}\\u{E}-\\u{1F}\\u{7F}-\\u{9F}\\u{D800}-\\u{DFFF}\\u{E000}-\\u{F8FF}\\u{FDD0}-\\u{FDEF}${Array.from(
    { length: 15 },
    (_, plane) => `\\u{${(plane * 0x10000 + 0xfffe).toString(16)}}\\u{${(plane * 0x10000 + 0xffff).toString(16)}}`,
  ).join('')}\\u{F0000}-\\u{10FFFF}]`,
  'u',
);
// What a quoted value may not show as it is: the above, and line and paragraph separators.
const UNSHOWABLE = new RegExp(`${REFUSED.source.slice(0, -1)}\\u{2028}\\u{2029}]`, 'gu');

/** A value as a message shows it: JSON-quoted, cut at 80 characters, on one line whatever it holds. */
export function quoted(value: string): string {
  const cut = value.length > 80 ? `${value.slice(0, 77)}...` : value;
  return JSON.stringify(cut).replace(UNSHOWABLE, (c) => `\\u{${c.codePointAt(0)!.toString(16).toUpperCase()}}`);
}

// ---------------------------------------------------------------------------------------------
// Bytes to text.

const WIDE: readonly [readonly number[], string][] = [
  [[0xff, 0xfe, 0, 0], 'UTF-32LE'],
  [[0, 0, 0xfe, 0xff], 'UTF-32BE'],
  [[0xff, 0xfe], 'UTF-16LE'],
  [[0xfe, 0xff], 'UTF-16BE'],
];

// The encoding an XML declaration names (well-formed or not: the reader says what else is wrong).
const DECLARED_ENCODING = /^<\?xml[ \t\r\n][^>]*?\bencoding[ \t\r\n]*=[ \t\r\n]*(["'])([A-Za-z][A-Za-z0-9._-]*)\1/;

// Bytes as a count to read at a glance (16,777,217), since one over the cap is 16.0 MiB too.
const grouped = (n: number): string => String(n).replace(/\B(?=(\d{3})+$)/g, ',');

function tooBig(bytes: number): FeedError {
  return new FeedError(
    `the feed is ${grouped(bytes)} bytes (${(bytes / MIB).toFixed(1)} MiB); storm reads channel feeds of at most ${grouped(MAX_FEED_BYTES)} bytes (${MAX_FEED_BYTES / MIB} MiB, some 19,000 appliance versions as the catalog site writes them): is this URL a channel's rss.xml?`,
  );
}

/** Line and column (in characters, as editors count) of an offset in text whose line ends are "\n". */
function position(t: string, offset: number): string {
  let line = 1;
  let lineStart = 0;
  for (let i = t.indexOf('\n'); i !== -1 && i < offset; i = t.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  let column = 1;
  for (let i = lineStart; i < offset; i++) {
    const c = t.charCodeAt(i);
    if (c < 0xdc00 || c > 0xdfff) column++;
  }
  return `line ${line}, column ${column}`;
}

function declaredEncodingProblem(head: string): FeedError | null {
  const m = DECLARED_ENCODING.exec(head);
  if (!m || m[2]!.toLowerCase() === 'utf-8') return null;
  const at = m.index + m[0].length - m[2]!.length - 1;
  return new FeedError(`${position(head, at)}: the feed declares encoding=${quoted(m[2]!)}; ${UTF8_ONLY}: convert it (iconv -f ${m[2]} -t UTF-8) and declare encoding="UTF-8"`);
}

/** The feed's text: UTF-8 only, within the size cap, said where it is not. */
function decode(input: string | Uint8Array): string {
  if (typeof input === 'string') {
    // A character is one to three bytes (a pair of surrogates, four): only a string this long can be over.
    if (input.length > MAX_FEED_BYTES / 3) {
      const bytes = Buffer.byteLength(input);
      if (bytes > MAX_FEED_BYTES) throw tooBig(bytes);
    }
    const text = input.startsWith('\uFEFF') ? input.slice(1) : input;
    const declared = declaredEncodingProblem(text.slice(0, 256));
    if (declared) throw declared;
    return text;
  }
  if (input.length > MAX_FEED_BYTES) throw tooBig(input.length);
  for (const [mark, name] of WIDE) {
    if (mark.every((b, i) => input[i] === b)) throw new FeedError(`the feed is ${name} (it starts with a byte order mark); ${UTF8_ONLY}: convert it (iconv -f ${name} -t UTF-8)`);
  }
  if (input.length >= 2 && (input[0] === 0) !== (input[1] === 0)) {
    throw new FeedError(`the feed looks like UTF-16 (every other byte is zero); ${UTF8_ONLY}: convert it (iconv -f UTF-16 -t UTF-8)`);
  }
  const bom = input[0] === 0xef && input[1] === 0xbb && input[2] === 0xbf ? 3 : 0;
  // The declaration is ASCII whatever the encoding: a Latin-1 feed that says so is told about its
  // declaration, not about its first accented byte.
  const declared = declaredEncodingProblem(Buffer.from(input.subarray(bom, bom + 256)).toString('latin1'));
  if (declared) throw declared;
  const text = new TextDecoder('utf-8', { ignoreBOM: true }).decode(input.subarray(bom));
  // The decoder replaced what is not UTF-8 with U+FFFD; the first replacement that is not an
  // encoded U+FFFD in the bytes is where the feed stops being UTF-8.
  let byte = bom;
  let from = 0;
  for (let at = text.indexOf('\uFFFD'); at !== -1; at = text.indexOf('\uFFFD', at + 1)) {
    byte += Buffer.byteLength(text.slice(from, at));
    from = at + 1;
    if (input[byte] === 0xef && input[byte + 1] === 0xbf && input[byte + 2] === 0xbd) {
      byte += 3;
      continue;
    }
    const shown = `0x${input[byte]!.toString(16).toUpperCase().padStart(2, '0')}`;
    throw new FeedError(`${position(text.replace(/\r\n?/g, '\n'), at - (text.slice(0, at).match(/\r\n/g)?.length ?? 0))}: byte ${shown} is not UTF-8 (was the feed written as Latin-1 or Windows-1252?); ${UTF8_ONLY}`);
  }
  return text;
}

// ---------------------------------------------------------------------------------------------
// The XML reader.

const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const DQUOTE = 0x22;
const HASH = 0x23;
const AMP = 0x26;
const SQUOTE = 0x27;
const SLASH = 0x2f;
const COLON = 0x3a;
const SEMI = 0x3b;
const LT = 0x3c;
const EQ = 0x3d;
const GT = 0x3e;
const QUESTION = 0x3f;
const BANG = 0x21;

const isSpace = (c: number): boolean => c === SPACE || c === LF || c === TAB || c === CR;

// XML 1.0 (fifth edition) NameStartChar and NameChar; a surrogate stands for a character in #x10000-#xEFFFF.
function isNameStart(c: number): boolean {
  if (c < 0x80) return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c === COLON;
  return (
    (c >= 0xc0 && c <= 0x2ff && c !== 0xd7 && c !== 0xf7) ||
    (c >= 0x370 && c <= 0x1fff && c !== 0x37e) ||
    c === 0x200c ||
    c === 0x200d ||
    (c >= 0x2070 && c <= 0x218f) ||
    (c >= 0x2c00 && c <= 0x2fef) ||
    (c >= 0x3001 && c <= 0xdfff) ||
    (c >= 0xf900 && c <= 0xfdcf) ||
    (c >= 0xfdf0 && c <= 0xfffd)
  );
}

function isNameChar(c: number): boolean {
  if (c < 0x80) return ASCII_NAME[c] === 2 || ASCII_NAME[c] === 1;
  return c === 0xb7 || (c >= 0x300 && c <= 0x36f) || c === 0x203f || c === 0x2040 || isNameStart(c);
}

// Names are nearly always ASCII: 1 a NameChar, 2 a NameStartChar too, looked up rather than worked out.
const ASCII_NAME = Uint8Array.from({ length: 0x80 }, (_, c) => (isNameStart(c) ? 2 : (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e ? 1 : 0));

function sameText(t: string, aFrom: number, aTo: number, bFrom: number, bTo: number): boolean {
  if (aTo - aFrom !== bTo - bFrom) return false;
  for (let k = 0; k < aTo - aFrom; k++) if (t.charCodeAt(aFrom + k) !== t.charCodeAt(bFrom + k)) return false;
  return true;
}

/** A well-formedness error: reading stops at `offset`. */
class Malformed {
  constructor(
    readonly offset: number,
    readonly message: string,
  ) {}
}

const PREDEFINED: readonly (readonly [string, string])[] = [
  ['lt', '<'],
  ['gt', '>'],
  ['amp', '&'],
  ['quot', '"'],
  ['apos', "'"],
];

// An "&" that starts none of the references XML has without a DTD.
const BAD_REFERENCE = /&(?!(?:lt|gt|amp|quot|apos|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});)/;

/** What a character shows as in a message: quoted, or named when it is not one a message can show. */
function describeAt(t: string, at: number): string {
  if (at >= t.length) return 'the end of the feed';
  const cp = t.codePointAt(at)!;
  return isSpace(cp) ? `a ${cp === LF ? 'line break' : cp === TAB ? 'tab' : 'space'}` : quoted(String.fromCodePoint(cp));
}

/** An attribute of the tag being read, where it is in the text. */
interface AttributeSpan {
  nameFrom: number;
  nameTo: number;
  hash: number;
  valueFrom: number;
  valueTo: number;
}

/**
 * The start tag the reader has just read, as the listing sees it. One object, reused: its names
 * become strings only when asked for, so a flood of elements nobody reads makes none.
 */
class Tag {
  offset = 0;
  /** 0: the root. */
  depth = 0;
  /** What its prefix stands for; null for a name without one. */
  namespace: string | null = null;
  nameFrom = 0;
  nameEnd = 0;
  /** Where its local name starts (after the prefix's ":"). */
  localFrom = 0;

  constructor(
    private readonly t: string,
    private readonly reader: Reader,
  ) {}

  /** As written, e.g. "storm:name". */
  qname(): string {
    return this.t.slice(this.nameFrom, this.nameEnd);
  }
  /** The name without its prefix. */
  local(): string {
    return this.t.slice(this.localFrom, this.nameEnd);
  }
  /** Is the name without its prefix `name`? Compared in place. */
  is(name: string): boolean {
    return this.nameEnd - this.localFrom === name.length && this.t.startsWith(name, this.localFrom);
  }
  /** An unprefixed attribute of it, decoded, and where it is; null when it has none of that name. */
  attribute(name: string): { value: string; offset: number } | null {
    return this.reader.attribute(name);
  }
}

class Reader {
  private i = 0;
  // The open elements, innermost last: where each tag and name is.
  private readonly openAt: number[] = [];
  private readonly nameFrom: number[] = [];
  private readonly nameTo: number[] = [];
  private rootSeen = false;
  private rootClosed = false;
  // Per prefix, what it stands for in each open element that declares it (innermost last), so a
  // lookup costs the same however many declarations are open (64 on each of 32 levels: 2048).
  private readonly bindings = new Map<string, string[]>();
  private readonly declared: { prefix: string; depth: number }[] = [];
  // The next "&", "<" and "]]>" at or after where the reader is: searched again only once passed,
  // so text cut into many pieces is still searched once (an indexOf per piece would run to the
  // next one however far away, for every piece).
  private nextAmp = -2;
  private nextLt = -2;
  private nextCdataEnd = -2;
  private readonly spans: AttributeSpan[] = [];
  private attributes = 0;
  private readonly tag: Tag;

  constructor(
    private readonly t: string,
    private readonly listing: Listing,
  ) {
    for (let k = 0; k < MAX_FEED_ATTRIBUTES; k++) this.spans.push({ nameFrom: 0, nameTo: 0, hash: 0, valueFrom: 0, valueTo: 0 });
    this.tag = new Tag(t, this);
  }

  read(): void {
    const t = this.t;
    const n = t.length;
    this.declaration();
    while (this.i < n) {
      const lt = t.indexOf('<', this.i);
      if (lt === -1) {
        this.content(this.i, n);
        this.i = n;
        break;
      }
      if (lt > this.i) this.content(this.i, lt);
      const c = t.charCodeAt(lt + 1);
      if (c === SLASH) this.endTag(lt);
      else if (c === BANG) this.markup(lt);
      else if (c === QUESTION) this.instruction(lt);
      else this.startTag(lt);
    }
    const depth = this.openAt.length;
    if (depth > 0) {
      const name = this.openName(depth - 1);
      throw new Malformed(this.openAt[depth - 1]!, `<${name}> is never closed: the feed ends first (was it cut short?); it needs </${name}>`);
    }
    if (!this.rootSeen) throw new Malformed(n, 'the feed has no elements: a channel feed is <rss version="2.0"><channel>…</channel></rss>');
  }

  private openName(k: number): string {
    return this.t.slice(this.nameFrom[k]!, this.nameTo[k]!);
  }

  /** The value of an unprefixed attribute of the tag just read, decoded, with where it is; null when absent. */
  attribute(name: string): { value: string; offset: number } | null {
    for (let a = 0; a < this.attributes; a++) {
      const s = this.spans[a]!;
      if (s.nameTo - s.nameFrom === name.length && this.t.startsWith(name, s.nameFrom)) return { value: this.attributeValue(s.valueFrom, s.valueTo), offset: s.nameFrom };
    }
    return null;
  }

  private declaration(): void {
    const t = this.t;
    if (!/^<\?xml[ \t\r\n?]/.test(t)) return;
    const close = t.indexOf('?>');
    if (close === -1) throw new Malformed(0, 'the XML declaration is never closed: end it with ?>');
    const body = /^[ \t\n]+version[ \t\n]*=[ \t\n]*(["'])([^"']*)\1([ \t\n]+encoding[ \t\n]*=[ \t\n]*(["'])[A-Za-z][A-Za-z0-9._-]*\4)?([ \t\n]+standalone[ \t\n]*=[ \t\n]*(["'])(yes|no)\6)?[ \t\n]*$/.exec(t.slice(5, close));
    if (!body) throw new Malformed(0, `the XML declaration ${quoted(t.slice(0, close + 2))} is not one: write <?xml version="1.0" encoding="UTF-8"?> (or leave it out)`);
    if (body[2] !== '1.0') throw new Malformed(0, `XML version ${quoted(body[2]!)}: a channel feed is XML 1.0; write <?xml version="1.0" encoding="UTF-8"?>`);
    this.i = close + 2;
  }

  private ampFrom(at: number): number {
    if (this.nextAmp !== -1 && this.nextAmp < at) this.nextAmp = this.t.indexOf('&', at);
    return this.nextAmp;
  }
  private ltFrom(at: number): number {
    if (this.nextLt !== -1 && this.nextLt < at) this.nextLt = this.t.indexOf('<', at);
    return this.nextLt;
  }
  private cdataEndFrom(at: number): number {
    if (this.nextCdataEnd !== -1 && this.nextCdataEnd < at) this.nextCdataEnd = this.t.indexOf(']]>', at);
    return this.nextCdataEnd;
  }

  /**
   * t[from..to), where the reader is now, its references checked (Malformed at the first bad
   * one) and, when `decode`, decoded. A few native passes and one loop writing UTF-16 code units
   * into a buffer that becomes a string once: a piece of 16 MiB can hold 4 million references,
   * and none of them costs a string.
   */
  private references(from: number, to: number, decode: boolean): string {
    const amp = this.ampFrom(from);
    if (amp === -1 || amp >= to) return decode ? this.t.slice(from, to) : '';
    const piece = this.t.slice(from, to);
    const bad = BAD_REFERENCE.exec(piece);
    if (bad !== null) {
      this.reference(from + bad.index, to);
      throw new Malformed(from + bad.index, 'a reference XML does not know: write &amp; for "&"');
    }
    // Only XML's five, and nothing to make of them: nothing more to check.
    if (!decode && !piece.includes('&#')) return '';
    const out = decode ? new Uint16Array(piece.length) : null;
    let n = 0;
    let at = 0;
    for (let k = amp - from; k !== -1; k = piece.indexOf('&', at)) {
      if (out !== null) for (let c = at; c < k; c++) out[n++] = piece.charCodeAt(c);
      const semi = piece.indexOf(';', k);
      const first = piece.charCodeAt(k + 1);
      at = semi + 1;
      if (first === HASH) {
        const hexa = piece.charCodeAt(k + 2) === 0x78;
        let cp = 0;
        for (let d = k + (hexa ? 3 : 2); d < semi; d++) {
          const digit = piece.charCodeAt(d);
          cp = hexa ? cp * 16 + (digit <= 0x39 ? digit - 0x30 : (digit | 0x20) - 0x57) : cp * 10 + digit - 0x30;
        }
        // A character reference is checked for the character it makes, too (reference() says why).
        if (feedCharacterProblem(cp) !== null) this.reference(from + k, to);
        if (out === null) continue;
        if (cp > 0xffff) {
          out[n++] = 0xd800 + ((cp - 0x10000) >> 10);
          out[n++] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
        } else out[n++] = cp;
      } else if (out === null) continue;
      else if (first === 0x6c) out[n++] = LT;
      else if (first === 0x67) out[n++] = GT;
      else if (first === 0x71) out[n++] = DQUOTE;
      else out[n++] = piece.charCodeAt(k + 2) === 0x6d ? AMP : SQUOTE;
    }
    if (out === null) return '';
    for (let c = at; c < piece.length; c++) out[n++] = piece.charCodeAt(c);
    return Buffer.from(out.buffer, 0, n * 2).toString('utf16le');
  }

  // Where the reference reference() read last ends: kept here rather than in an object per reference.
  private refEnd = 0;

  /** What the reference at t[amp] stands for (its end in refEnd); Malformed when it is none XML has without a DTD. */
  private reference(amp: number, end: number): string {
    const t = this.t;
    // XML's five first, told in place: nearly every reference in a feed is one of them.
    for (const [name, value] of PREDEFINED) {
      const semi = amp + 1 + name.length;
      if (semi < end && t.charCodeAt(semi) === SEMI && t.startsWith(name, amp + 1)) {
        this.refEnd = semi + 1;
        return value;
      }
    }
    let k = amp + 1;
    while (k < end && k - amp <= 32) {
      const c = t.charCodeAt(k);
      if (c === SEMI || c === AMP || c === LT || isSpace(c)) break;
      k++;
    }
    if (k >= end || t.charCodeAt(k) !== SEMI || k === amp + 1) {
      throw new Malformed(amp, `a bare "&" must be written &amp; (got ${quoted(t.slice(amp, Math.min(k, amp + 12)))})`);
    }
    const name = t.slice(amp + 1, k);
    const numeric = /^#(?:([0-9]{1,7})|x([0-9a-fA-F]{1,6}))$/.exec(name);
    if (numeric) {
      const cp = numeric[1] !== undefined ? Number(numeric[1]) : parseInt(numeric[2]!, 16);
      const why = feedCharacterProblem(cp);
      if (why !== null) throw new Malformed(amp, `character reference &${name};: ${why}`);
      this.refEnd = k + 1;
      return String.fromCodePoint(cp);
    }
    if (name.charCodeAt(0) === HASH) throw new Malformed(amp, `&${quoted(name).slice(1, -1)}; is not a character reference: write &#160; or &#xA0;`);
    throw new Malformed(
      amp,
      `undefined entity &${quoted(name).slice(1, -1)};: a channel feed has no DTD, so only &amp; &lt; &gt; &quot; &apos; and character references such as &#160; work (HTML's &nbsp; is not XML's)`,
    );
  }

  /**
   * An attribute's value, t[from..to), its references decoded and its tabs and line breaks
   * spaces, as XML says. The "&"s are looked for only inside: a value is decoded once, in place.
   */
  private attributeValue(from: number, to: number): string {
    const t = this.t;
    let out = '';
    let at = from;
    for (let k = from; k < to; k++) {
      if (t.charCodeAt(k) !== AMP) continue;
      out += t.slice(at, k) + this.reference(k, to);
      at = this.refEnd;
      k = at - 1;
    }
    out += t.slice(at, to);
    return out.replace(/[\t\n]/g, ' ');
  }

  /** Text between markup, t[from..to). */
  private content(from: number, to: number): void {
    const t = this.t;
    const depth = this.openAt.length;
    if (depth === 0) {
      let k = from;
      while (k < to && isSpace(t.charCodeAt(k))) k++;
      if (k === to) return;
      const text = quoted(t.slice(k, Math.min(to, k + 40)).trim());
      if (this.rootClosed) throw new Malformed(k, `text after </rss> (${text}); the feed ends with </rss>`);
      throw new Malformed(k, `the feed starts with text (${text}), not <rss>: is this URL a channel's rss.xml?`);
    }
    const cdataEnd = this.cdataEndFrom(from);
    if (cdataEnd !== -1 && cdataEnd < to) throw new Malformed(cdataEnd, '"]]>" may not appear in text: write ]]&gt;');
    const wanted = this.listing.wantsText(depth - 1);
    const text = this.references(from, to, wanted);
    if (wanted) this.listing.text(text);
  }

  private name(at: number): number {
    const t = this.t;
    const n = t.length;
    if (at >= n || !isNameStart(t.charCodeAt(at))) return at;
    let j = at + 1;
    for (; j < n; j++) {
      const c = t.charCodeAt(j);
      if (c < 0x80 ? ASCII_NAME[c] === 0 : !isNameChar(c)) break;
    }
    return j;
  }

  private skipSpace(at: number): number {
    let j = at;
    while (j < this.t.length && isSpace(this.t.charCodeAt(j))) j++;
    return j;
  }

  private namespaceOf(prefix: string, lt: number, nameEnd: number): string {
    if (prefix === 'xml') return 'http://www.w3.org/XML/1998/namespace';
    const uris = this.bindings.get(prefix);
    if (uris !== undefined && uris.length > 0) return uris[uris.length - 1]!;
    const storm = prefix === 'storm' ? `xmlns:storm="${CHANNEL_FEED_NAMESPACE}"` : `xmlns:${prefix}="…"`;
    throw new Malformed(lt, `<${this.t.slice(lt + 1, nameEnd)}> has the prefix ${prefix}:, which nothing declares: add ${storm} to <rss>`);
  }

  // The first ":" of the name tagName() read last, or -1; and whether it had another.
  private colon = -1;
  private colons = 0;
  private nameHash = 0;

  /** Where the name at `at` ends (at itself: there is none), its colons and hash noted on the way. */
  private tagName(at: number): number {
    const t = this.t;
    const n = t.length;
    this.colon = -1;
    this.colons = 0;
    if (at >= n || !isNameStart(t.charCodeAt(at))) return at;
    let h = t.charCodeAt(at);
    if (h === COLON) {
      this.colon = at;
      this.colons = 1;
    }
    let j = at + 1;
    for (; j < n; j++) {
      const c = t.charCodeAt(j);
      if (c < 0x80 ? ASCII_NAME[c] === 0 : !isNameChar(c)) break;
      if (c === COLON && this.colons++ === 0) this.colon = j;
      h = (Math.imul(h, 31) + c) | 0;
    }
    this.nameHash = h;
    return j;
  }

  private startTag(lt: number): void {
    const t = this.t;
    const nameEnd = this.tagName(lt + 1);
    if (nameEnd === lt + 1) throw new Malformed(lt, `a "<" that does not start a tag must be written &lt; (it is followed by ${describeAt(t, lt + 1)})`);
    // The element's name is made a string only when something reads it: a feed of 4 million
    // "<x/>" makes none.
    const colon = this.colon;
    const colons = this.colons;
    if (this.rootClosed) throw new Malformed(lt, `<${t.slice(lt + 1, nameEnd)}> after </rss>: everything belongs inside <rss>…</rss>`);
    const depth = this.openAt.length;
    let j = nameEnd;
    let selfClosing = false;
    this.attributes = 0;
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
      if (j >= t.length) throw new Malformed(lt, `the start tag <${t.slice(lt + 1, nameEnd)} is never finished: end it with > (or />)`);
      const attrEnd = this.tagName(j);
      if (attrEnd === j) throw new Malformed(j, `unexpected ${describeAt(t, j)} in the start tag <${t.slice(lt + 1, nameEnd)}>; attributes are written name="value"`);
      if (j === before) throw new Malformed(j, `put a space before the attribute ${t.slice(j, attrEnd)} in <${t.slice(lt + 1, nameEnd)}>`);
      let k = this.skipSpace(attrEnd);
      if (t.charCodeAt(k) !== EQ) throw new Malformed(j, `the attribute ${t.slice(j, attrEnd)} of <${t.slice(lt + 1, nameEnd)}> needs a value: write ${t.slice(j, attrEnd)}="…"`);
      k = this.skipSpace(k + 1);
      const q = t.charCodeAt(k);
      if (q !== DQUOTE && q !== SQUOTE) throw new Malformed(k, `the value of ${t.slice(j, attrEnd)} in <${t.slice(lt + 1, nameEnd)}> must be in quotes: ${t.slice(j, attrEnd)}="…"`);
      const close = t.indexOf(q === DQUOTE ? '"' : "'", k + 1);
      if (close === -1) throw new Malformed(k, `the value of ${t.slice(j, attrEnd)} in <${t.slice(lt + 1, nameEnd)}> is never closed: end it with ${q === DQUOTE ? '"' : "'"}`);
      const rawLt = this.ltFrom(k + 1);
      if (rawLt !== -1 && rawLt < close) throw new Malformed(rawLt, `the value of ${t.slice(j, attrEnd)} in <${t.slice(lt + 1, nameEnd)}> holds a "<": write it as &lt;`);
      if (this.attributes === MAX_FEED_ATTRIBUTES) {
        throw new Malformed(j, `<${t.slice(lt + 1, nameEnd)}> has more than ${MAX_FEED_ATTRIBUTES} attributes; no element of a channel feed has more than four (<storm:base>)`);
      }
      // Duplicates: compared in place, by hash first, so a tag costs no strings.
      const hash = this.nameHash;
      for (let a = 0; a < this.attributes; a++) {
        const s = this.spans[a]!;
        if (s.hash === hash && sameText(t, s.nameFrom, s.nameTo, j, attrEnd)) throw new Malformed(j, `the attribute ${t.slice(j, attrEnd)} appears twice in <${t.slice(lt + 1, nameEnd)}>; keep one`);
      }
      this.references(k + 1, close, false);
      const span = this.spans[this.attributes++]!;
      span.nameFrom = j;
      span.nameTo = attrEnd;
      span.hash = hash;
      span.valueFrom = k + 1;
      span.valueTo = close;
      j = close + 1;
    }
    if (!selfClosing && depth >= MAX_FEED_DEPTH) {
      throw new Malformed(lt, `<${t.slice(lt + 1, nameEnd)}> is nested ${depth + 1} elements deep; a channel feed is four deep (rss, channel, item, storm:name) and storm reads at most ${MAX_FEED_DEPTH}`);
    }
    // Declarations apply to the element that makes them, so they are taken before its own name.
    for (let a = 0; a < this.attributes; a++) {
      const s = this.spans[a]!;
      if (s.nameTo - s.nameFrom > 6 && t.startsWith('xmlns:', s.nameFrom)) {
        const prefix = t.slice(s.nameFrom + 6, s.nameTo);
        const uris = this.bindings.get(prefix);
        const uri = this.attributeValue(s.valueFrom, s.valueTo);
        if (uris === undefined) this.bindings.set(prefix, [uri]);
        else uris.push(uri);
        this.declared.push({ prefix, depth });
      }
    }
    let namespace: string | null = null;
    if (colon !== -1) {
      if (colon === lt + 1 || colon === nameEnd - 1 || colons > 1) {
        throw new Malformed(lt, `<${t.slice(lt + 1, nameEnd)}> is not a name XML namespaces allow: a name has at most one ":", between a prefix and the rest (storm:name)`);
      }
      namespace = this.namespaceOf(t.slice(lt + 1, colon), lt, nameEnd);
    }
    this.i = j;
    this.rootSeen = true;
    if (this.listing.attends(depth)) {
      const tag = this.tag;
      tag.offset = lt;
      tag.depth = depth;
      tag.namespace = namespace;
      tag.nameFrom = lt + 1;
      tag.nameEnd = nameEnd;
      tag.localFrom = colon === -1 ? lt + 1 : colon + 1;
      this.listing.start(tag);
    }
    if (selfClosing) return this.closed(depth);
    this.openAt.push(lt);
    this.nameFrom.push(lt + 1);
    this.nameTo.push(nameEnd);
  }

  private closed(depth: number): void {
    const declared = this.declared;
    while (declared.length > 0 && declared[declared.length - 1]!.depth >= depth) this.bindings.get(declared.pop()!.prefix)!.pop();
    this.listing.end(depth);
    if (depth === 0) this.rootClosed = true;
  }

  private endTag(lt: number): void {
    const t = this.t;
    const nameEnd = this.name(lt + 2);
    if (nameEnd === lt + 2) throw new Malformed(lt, `"</" must be followed by the name of the element it closes (got ${describeAt(t, lt + 2)})`);
    const name = t.slice(lt + 2, nameEnd);
    const gt = this.skipSpace(nameEnd);
    if (t.charCodeAt(gt) !== GT) throw new Malformed(lt, `the end tag </${name} is never finished: end it with >`);
    const depth = this.openAt.length;
    if (depth === 0) throw new Malformed(lt, `</${name}> closes nothing: no element is open here`);
    const from = this.nameFrom[depth - 1]!;
    const to = this.nameTo[depth - 1]!;
    if (to - from !== nameEnd - lt - 2 || !t.startsWith(name, from)) {
      const open = this.openName(depth - 1);
      const openAt = this.openAt[depth - 1]!;
      for (let k = depth - 2; k >= 0; k--) {
        if (this.openName(k) === name) throw new Malformed(openAt, `<${open}> is never closed: </${name}> at ${position(t, lt)} comes first; add </${open}> before it`);
      }
      throw new Malformed(lt, `</${name}> does not close the open <${open}> (${position(t, openAt)}): write </${open}>`);
    }
    this.i = gt + 1;
    this.openAt.pop();
    this.nameFrom.pop();
    this.nameTo.pop();
    this.closed(depth - 1);
  }

  private markup(lt: number): void {
    const t = this.t;
    if (t.startsWith('<!--', lt)) {
      const close = t.indexOf('-->', lt + 4);
      if (close === -1) throw new Malformed(lt, 'a comment is never closed: end it with -->');
      const dashes = t.indexOf('--', lt + 4);
      if (dashes < close) throw new Malformed(dashes, 'a comment may not hold "--" (XML forbids it)');
      this.i = close + 3;
      return;
    }
    if (t.startsWith('<![CDATA[', lt)) {
      const close = t.indexOf(']]>', lt + 9);
      if (close === -1) throw new Malformed(lt, 'a CDATA section is never closed: end it with ]]>');
      const depth = this.openAt.length;
      if (depth === 0) throw new Malformed(lt, 'a CDATA section outside <rss>: everything belongs inside <rss>…</rss>');
      if (this.listing.wantsText(depth - 1)) this.listing.text(t.slice(lt + 9, close));
      this.i = close + 3;
      return;
    }
    // A DOCTYPE was refused before reading; nothing else starts with "<!".
    throw new Malformed(lt, 'unexpected "<!": only comments <!-- … --> and CDATA sections <![CDATA[ … ]]> start that way in a channel feed');
  }

  private instruction(lt: number): void {
    const t = this.t;
    const targetEnd = this.name(lt + 2);
    const target = t.slice(lt + 2, targetEnd);
    if (target === '') throw new Malformed(lt, '"<?" must be followed by a name (it starts a processing instruction); to write "<?" as text, write &lt;?');
    if (target.toLowerCase() === 'xml') throw new Malformed(lt, 'the XML declaration must be the very first thing in the feed; move it there or leave it out');
    const close = t.indexOf('?>', targetEnd);
    if (close === -1) throw new Malformed(lt, `the processing instruction <?${target} is never closed: end it with ?>`);
    // Ignored, like any element storm does not read (<?xml-stylesheet?> is common in feeds).
    this.i = close + 2;
  }
}

// ---------------------------------------------------------------------------------------------
// The listing: what the reader finds, in the places RSS puts it.

type Field = 'title' | 'link' | 'description' | 'enclosure' | 'name' | 'version' | 'definition' | 'definition-sha256' | 'sha256' | 'signature' | 'base' | 'provides' | 'dependency';

const RSS_FIELDS = ['title', 'link', 'description', 'enclosure'] as const;
/** The RSS element of an item storm reads that `tag` is, if any: told in place, as most elements are none. */
function rssField(tag: Tag): Field | undefined {
  for (const field of RSS_FIELDS) if (tag.is(field)) return field;
  return undefined;
}
const STORM_FIELDS: ReadonlyMap<string, Field> = new Map(
  (['name', 'version', 'definition', 'definition-sha256', 'sha256', 'signature', 'base', 'provides', 'dependency'] as const).map((f) => [f, f]),
);
/** Elements read from their attributes, and which. */
const ATTRIBUTES: ReadonlyMap<Field, readonly string[]> = new Map([
  ['enclosure', ['url', 'length']],
  ['base', ['name', 'url', 'sha256', 'sig']],
]);

/** A value read from the feed, where it is, and the element (and attribute) a message calls it by: "<storm:name>", "<storm:base> url". */
interface Read {
  value: string;
  offset: number;
  element: string;
  attribute: string | null;
}

const what = (r: Read): string => `<${r.element}>${r.attribute === null ? '' : ` ${r.attribute}`}`;

interface Draft {
  number: number;
  offset: number;
  /** Has it any element in storm's namespace? An item without one is an ordinary RSS item. */
  storm: boolean;
  texts: Map<Field, Read>;
  provides: Read[];
  dependencies: Read[];
  /** <enclosure> and <storm:base>: their attributes, and where they are. */
  elements: Map<Field, { offset: number; qname: string; attributes: ReadonlyMap<string, Read> }>;
}

interface Problem {
  offset: number;
  /** The item it is in, or null for the feed as a whole. */
  item: number | null;
  message: string;
}

const REQUIRED = [
  ['name', 'storm:name'],
  ['version', 'storm:version'],
  ['sha256', 'storm:sha256'],
  ['definition', 'storm:definition'],
] as const;

const valueOf = (r: Read): string => r.value;

/** Where a feed may send storm: 'network': http(s) only; 'local': files too; 'either': not known. */
type Reach = 'network' | 'local' | 'either';

// Around a name or a URL, XML's own spaces are layout; anything else (a no-break space) is not.
const xmlTrim = (s: string): string => (isSpace(s.charCodeAt(0)) || isSpace(s.charCodeAt(s.length - 1)) ? s.replace(/^[ \t\n]+|[ \t\n]+$/g, '') : s);
const textTrim = (s: string): string => s.replace(/\r\n?/g, '\n').trim();

const nameRule = (v: string): string | null => (NAME_PATTERN.test(v) ? null : `is not an appliance name: ${NAME_RULE}`);
const versionRule = (v: string): string | null => (VERSION_PATTERN.test(v) ? null : `is not an appliance version: ${VERSION_RULE}`);
const sha256Rule = (v: string): string | null => (SHA256_PATTERN.test(v) ? null : 'is not a SHA-256: 64 lowercase hex digits, as sha256sum prints them');
function dependencyRule(v: string): string | null {
  const colon = v.indexOf(':');
  if (!NAME_PATTERN.test(colon === -1 ? v : v.slice(0, colon))) return `is not NAME or NAME:VERSION with an appliance name: ${NAME_RULE}`;
  if (colon !== -1 && !VERSION_PATTERN.test(v.slice(colon + 1))) return `is not NAME or NAME:VERSION with an appliance version: ${VERSION_RULE}`;
  return null;
}

function urlRule(reach: Reach): (v: string) => string | null {
  return (value) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      return 'is not an absolute URL: storm reads the URLs in a feed as they are, against nothing, so each must be whole (https://…)';
    }
    if (url.protocol === 'http:' || url.protocol === 'https:') return null;
    if (url.protocol !== 'file:') return `is a ${url.protocol} URL: storm fetches over http(s), and file: URLs only from a channel that is itself a file`;
    return reach === 'network' ? 'names a file on this machine, but the feed came over the network: only a channel that is itself a file may point storm at files' : null;
  };
}

class Listing {
  title: string | null = null;
  readonly items: ChannelItem[] = [];
  private readonly numbers = new Map<string, number>();
  private channel: 'before' | 'in' | 'after' = 'before';
  private draft: Draft | null = null;
  private itemCount = 0;
  // The text element being read (depth 2: the channel's <title>; 3: a field of an item). Spoiled: it held an element.
  private field: { kind: Field; read: Read; depth: number; spoiled: boolean } | null = null;
  private first: Problem | null = null;
  private more = 0;
  // An item is reported for its first problem only.
  private itemHasProblem = false;
  private readonly url: (v: string) => string | null;

  constructor(reach: Reach) {
    this.url = urlRule(reach);
  }

  private problem(p: Problem): void {
    if (p.item !== null) {
      if (this.itemHasProblem) return;
      this.itemHasProblem = true;
    }
    if (this.first === null) this.first = p;
    else this.more++;
  }

  /** The refusal: the first problem, and how many more there are (a reading that stopped counts as one). */
  refusal(t: string, stop: Malformed | null): FeedError | null {
    const first = this.first ?? (stop && { offset: stop.offset, item: null, message: stop.message });
    if (first === null) return null;
    const more = this.more + (this.first !== null && stop !== null ? 1 : 0);
    // "item 3 (…) has no <storm:name>", "item 3 (…): <storm:name> "x" is not…".
    const where = first.item === null ? `${position(t, first.offset)}:` : `item ${first.item} (${position(t, first.offset)})${/^(has|lists) /.test(first.message) ? '' : ':'}`;
    return new FeedError(`${where} ${first.message}${more > 0 ? ` (and ${more} more problem${more === 1 ? '' : 's'} after it)` : ''}`);
  }

  /** Does it look at an element this deep? The first four levels, and anything inside a text it reads. */
  attends(depth: number): boolean {
    return depth <= 3 || (this.field !== null && !this.field.spoiled);
  }

  wantsText(depth: number): boolean {
    return this.field !== null && this.field.depth === depth && !this.field.spoiled;
  }

  text(value: string): void {
    this.field!.read.value += value;
  }

  start(tag: Tag): void {
    const f = this.field;
    if (f !== null && tag.depth > f.depth) {
      if (f.spoiled) return;
      f.spoiled = true;
      return this.problem({
        offset: tag.offset,
        item: f.depth === 3 ? this.draft!.number : null,
        message: `${what(f.read)} holds an element, <${tag.qname()}>: storm reads it as text (HTML goes in escaped, &lt;p&gt;)`,
      });
    }
    const plain = tag.namespace === null;
    if (tag.depth === 0) return this.root(tag);
    if (tag.depth === 1 && plain && tag.is('channel')) {
      if (this.channel === 'before') this.channel = 'in';
      else this.problem({ offset: tag.offset, item: null, message: 'a second <channel>: an RSS feed has one, and storm would not know which to read' });
      return;
    }
    if (tag.depth === 2 && this.channel === 'in' && plain) {
      if (tag.is('item')) {
        this.itemHasProblem = false;
        this.draft = { number: ++this.itemCount, offset: tag.offset, storm: false, texts: new Map(), provides: [], dependencies: [], elements: new Map() };
      } else if (tag.is('title')) {
        if (this.title !== null) return this.problem({ offset: tag.offset, item: null, message: 'a second <title> in <channel>: a channel has one' });
        this.field = { kind: 'title', read: { value: '', offset: tag.offset, element: 'title', attribute: null }, depth: 2, spoiled: false };
      }
      return;
    }
    if (tag.depth === 3 && this.draft !== null) this.itemElement(this.draft, tag);
  }

  private root(tag: Tag): void {
    if (tag.namespace === null && tag.is('rss')) {
      const version = tag.attribute('version');
      if (version !== null && /^2\.[0-9]/.test(version.value)) return;
      throw new Malformed(tag.offset, `<rss${version ? ` version=${quoted(version.value)}` : ''}>: storm reads RSS 2.0, <rss version="2.0">, as the catalog site writes it`);
    }
    if (tag.is('feed')) throw new Malformed(tag.offset, 'this is an Atom feed (<feed>); a storm channel is RSS 2.0, <rss version="2.0">, as the catalog site writes it');
    if (tag.is('RDF')) throw new Malformed(tag.offset, 'this is an RSS 1.0 feed (<rdf:RDF>); a storm channel is RSS 2.0, <rss version="2.0">, as the catalog site writes it');
    if (tag.local().toLowerCase() === 'html') throw new Malformed(tag.offset, 'this is a web page (<html>), not a feed: is this URL the channel\'s rss.xml?');
    throw new Malformed(tag.offset, `the feed's root element is <${tag.qname()}>, not <rss>: is this URL a channel's rss.xml?`);
  }

  private itemElement(d: Draft, tag: Tag): void {
    // An item with a problem is reported for that one and not listed: the rest of it is not read.
    if (this.itemHasProblem) return;
    const storm = tag.namespace === CHANNEL_FEED_NAMESPACE;
    if (storm) d.storm = true;
    const kind = tag.namespace === null ? rssField(tag) : storm ? STORM_FIELDS.get(tag.local()) : undefined;
    if (kind === undefined) return;
    if (kind !== 'provides' && kind !== 'dependency' && (d.texts.has(kind) || d.elements.has(kind))) {
      return this.problem({ offset: tag.offset, item: d.number, message: `a second <${tag.qname()}>: an item has one` });
    }
    const names = ATTRIBUTES.get(kind);
    if (names !== undefined) {
      const attributes = new Map<string, Read>();
      const qname = tag.qname();
      for (const name of names) {
        const a = tag.attribute(name);
        if (a !== null) attributes.set(name, { value: a.value, offset: a.offset, element: qname, attribute: name });
      }
      d.elements.set(kind, { offset: tag.offset, qname, attributes });
      return;
    }
    this.field = { kind, read: { value: '', offset: tag.offset, element: tag.qname(), attribute: null }, depth: 3, spoiled: false };
  }

  end(depth: number): void {
    const f = this.field;
    if (f !== null && f.depth === depth) {
      this.field = null;
      if (f.spoiled) return;
      if (depth === 2) this.title = f.read.value;
      else if (f.kind === 'provides') this.draft!.provides.push(f.read);
      else if (f.kind === 'dependency') this.draft!.dependencies.push(f.read);
      else this.draft!.texts.set(f.kind, f.read);
      return;
    }
    if (depth === 2 && this.draft !== null) {
      const d = this.draft;
      this.draft = null;
      if (!this.itemHasProblem) this.finish(d);
      return;
    }
    if (depth === 1 && this.channel === 'in') this.channel = 'after';
  }

  /** After the last tag: a feed without <channel> lists nothing, and is no feed. */
  close(t: string): void {
    if (this.channel === 'before') throw new Malformed(t.length, 'the feed has no <channel>: an RSS 2.0 feed is <rss version="2.0"><channel>…</channel></rss>');
  }

  /** The item listed, or its first problem said. */
  private finish(d: Draft): void {
    const problem = this.itemProblem(d);
    if (problem !== null) return this.problem({ offset: problem.offset, item: d.number, message: problem.message });
    // Every value below was trimmed by the checks.
    const texts = d.texts;
    const name = texts.get('name')!.value;
    const version = texts.get('version')!.value;
    this.numbers.set(`${name} ${version}`, d.number);
    const enclosure = d.elements.get('enclosure')!.attributes;
    const base = d.elements.get('base')?.attributes;
    // RSS's length is the image's size in bytes, 0 when not known; anything else is read as not known.
    const length = /^[0-9]{1,15}$/.exec(xmlTrim(enclosure.get('length')?.value ?? ''));
    const size = length ? Number(length[0]) : 0;
    this.items.push({
      name,
      version,
      label: textTrim(texts.get('title')?.value ?? '') || name,
      description: plainText(texts.get('description')?.value ?? ''),
      link: textTrim(texts.get('link')?.value ?? '') || null,
      definitionUrl: texts.get('definition')!.value,
      definitionSha256: texts.get('definition-sha256')?.value ?? null,
      image: { url: enclosure.get('url')!.value, sha256: texts.get('sha256')!.value, sig: texts.get('signature')?.value ?? null, sizeBytes: size > 0 ? size : null },
      base: base === undefined ? null : { name: base.get('name')!.value, url: base.get('url')!.value, sha256: base.get('sha256')!.value, sig: base.get('sig')?.value ?? null },
      provides: d.provides.map(valueOf),
      dependencies: d.dependencies.map(valueOf),
    });
  }

  /** The first rule the item breaks, said about the element that breaks it; null when it keeps them all. */
  private itemProblem(d: Draft): { offset: number; message: string } | null {
    const at = (offset: number, message: string) => ({ offset, message });
    if (!d.storm) return at(d.offset, `has no storm:name, storm:version or any other element in storm's namespace (${CHANNEL_FEED_NAMESPACE}): is this a storm channel's feed?`);
    const texts = d.texts;
    for (const [kind, qname] of REQUIRED) {
      if (!texts.has(kind)) return at(d.offset, `has no <${qname}>: every item of a storm channel has <storm:name>, <storm:version>, <storm:sha256>, <storm:definition> and an <enclosure>`);
    }
    const enclosure = d.elements.get('enclosure');
    if (enclosure === undefined) return at(d.offset, 'has no <enclosure url="…">: it says where the appliance\'s image is');
    const image = enclosure.attributes.get('url');
    if (image === undefined) return at(enclosure.offset, `<${enclosure.qname}> has no url: it says where the appliance's image is`);
    const base = d.elements.get('base');
    if (base !== undefined) {
      for (const a of ['name', 'url', 'sha256']) {
        if (!base.attributes.has(a)) return at(base.offset, `<${base.qname}> has no ${a}: a base layer is name="…" url="…" sha256="…" (an appliance without one has no <${base.qname}>)`);
      }
    }
    const broken =
      this.broken(texts.get('name'), nameRule) ??
      this.broken(texts.get('version'), versionRule) ??
      this.broken(texts.get('sha256'), sha256Rule) ??
      this.broken(texts.get('definition'), this.url) ??
      this.broken(texts.get('definition-sha256'), sha256Rule) ??
      this.broken(image, this.url) ??
      this.broken(texts.get('signature'), this.url) ??
      this.broken(base?.attributes.get('name'), nameRule) ??
      this.broken(base?.attributes.get('url'), this.url) ??
      this.broken(base?.attributes.get('sha256'), sha256Rule) ??
      this.broken(base?.attributes.get('sig'), this.url) ??
      this.brokenAmong(d.provides, nameRule) ??
      this.brokenAmong(d.dependencies, dependencyRule);
    if (broken !== null) return broken;
    const name = texts.get('name')!;
    const version = texts.get('version')!.value;
    const earlier = this.numbers.get(`${name.value} ${version}`);
    if (earlier !== undefined) return at(name.offset, `lists ${name.value} ${version} again (item ${earlier} does already): a channel lists each appliance version once`);
    return null;
  }

  /**
   * What is wrong with a value by `rule`, said about it; null when it keeps the rule. The value is
   * trimmed of XML's spaces first, for good: a name or a URL is read without them.
   */
  private broken(read: Read | undefined, rule: (v: string) => string | null): { offset: number; message: string } | null {
    if (read === undefined) return null;
    read.value = xmlTrim(read.value);
    const why = rule(read.value);
    return why === null ? null : { offset: read.offset, message: `${what(read)} ${quoted(read.value)} ${why}` };
  }

  private brokenAmong(reads: readonly Read[], rule: (v: string) => string | null): { offset: number; message: string } | null {
    for (const r of reads) {
      const b = this.broken(r, rule);
      if (b !== null) return b;
    }
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// A description's HTML as plain text: block elements are line breaks, other tags go, lines are
// trimmed and blank ones dropped. One pass: each "<" looks for its ">" only up to the next one.

const BLOCKS = new Set(['p', 'br', 'div', 'li', 'ul', 'ol', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'blockquote', 'section', 'table', 'tr', 'pre', 'hr', 'dd', 'dt']);
const HTML_REFERENCE = /&(?:#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6})|(amp|lt|gt|quot|apos|nbsp));/g;
const HTML_NAMED: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

function plainText(html: string): string {
  let out = '';
  // Text from `i` on is not yet in `out`; "<"s that start no tag stay in it, to go in with it.
  let i = 0;
  let from = 0;
  let broken = true;
  for (;;) {
    const lt = html.indexOf('<', from);
    if (lt === -1) break;
    let j = lt + 1;
    if (html.charCodeAt(j) === SLASH) j++;
    const c = html.charCodeAt(j) | 0x20;
    if (!((c >= 0x61 && c <= 0x7a) || c === (BANG | 0x20) || c === (QUESTION | 0x20))) {
      from = lt + 1;
      continue;
    }
    const gt = html.indexOf('>', j);
    // An unfinished tag is text, and so is everything after it: no ">" follows anywhere.
    if (gt === -1) break;
    if (lt > i) {
      out += html.slice(i, lt);
      broken = false;
    }
    let k = j;
    for (let c = html.charCodeAt(k); k < gt && k - j <= 10 && ((c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a)); c = html.charCodeAt(++k));
    // A run of block elements is one line break: 4 million <div>s make no lines to drop later.
    if (!broken && k - j <= 10 && BLOCKS.has(html.slice(j, k).toLowerCase())) {
      out += '\n';
      broken = true;
    }
    i = gt + 1;
    from = i;
  }
  out += html.slice(i);
  const decoded = !out.includes('&')
    ? out
    : out.replace(HTML_REFERENCE, (whole, dec: string | undefined, hexa: string | undefined, named: string | undefined) => {
        if (named !== undefined) return HTML_NAMED[named]!;
        const cp = dec !== undefined ? Number(dec) : parseInt(hexa!, 16);
        // A character the feed could not hold as itself stays written as its reference.
        return feedCharacterProblem(cp) === null ? String.fromCodePoint(cp) : whole;
      });
  let text = '';
  for (const line of (decoded.includes('\r') ? decoded.replace(/\r\n?/g, '\n') : decoded).split('\n')) {
    const trimmed = (line.includes('\t') || line.includes('  ') ? line.replace(/[ \t]+/g, ' ') : line).trim();
    if (trimmed !== '') text = text === '' ? trimmed : `${text}\n${trimmed}`;
  }
  return text;
}

// ---------------------------------------------------------------------------------------------

/**
 * A channel's feed as storm lists it. `feed`: the bytes a channel URL served (or its text);
 * `feedUrl`: where it came from, so a feed from the network cannot point storm at local files
 * (not given: either is allowed). Throws FeedError, and nothing else, for anything it refuses.
 */
export async function parseFeed(feed: string | Uint8Array, feedUrl?: string): Promise<ChannelFeed> {
  const reach: Reach = feedUrl === undefined ? 'either' : /^https?:/i.test(feedUrl) ? 'network' : 'local';
  const decoded = decode(feed);
  // XML reads every line end as "\n"; so does everything here, lines and columns included.
  const t = decoded.includes('\r') ? decoded.replace(/\r\n?/g, '\n') : decoded;
  if (t.trim() === '') throw new FeedError('the feed is empty: a channel feed is <rss version="2.0"><channel>…</channel></rss>');
  // On the raw text, before anything reads it, comments and CDATA included: a DTD is the door to
  // entity expansion ("billion laughs") and external entities (local files), and no feed needs one.
  const doctype = /<!DOCTYPE|<!ENTITY/i.exec(t);
  if (doctype) {
    if (/^\s*<!DOCTYPE\s+html\b/i.test(t)) throw new FeedError(`${position(t, doctype.index)}: this is a web page (<!DOCTYPE html>), not a feed: is this URL the channel's rss.xml?`);
    throw new FeedError(
      `${position(t, doctype.index)}: the feed has a DOCTYPE or an entity declaration; storm refuses them in channel feeds (they expand entities without bound, "billion laughs", and read local files, XXE), and the catalog site writes none`,
    );
  }
  const bad = REFUSED.exec(t);
  if (bad) throw new FeedError(`${position(t, bad.index)}: ${feedCharacterProblem(bad[0].codePointAt(0)!)}; the channel's publisher must remove it`);
  const listing = new Listing(reach);
  let stop: Malformed | null = null;
  try {
    new Reader(t, listing).read();
    listing.close(t);
  } catch (err) {
    if (!(err instanceof Malformed)) throw err;
    stop = err;
  }
  const refusal = listing.refusal(t, stop);
  if (refusal) throw refusal;
  return { title: (listing.title ?? '').replace(/\r\n?/g, '\n').trim(), items: listing.items };
}
