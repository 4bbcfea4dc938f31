// Positioned XML reading: text in, a small element tree out, every element and attribute with
// its line, so each problem can point at the line to fix. Also the first line of defence: the
// size cap, DOCTYPE/entity refusal and control characters are checked on the raw text before
// any parser sees it, and entity expansion stays off in the parser.
//
// fast-xml-parser gives no line numbers for elements, so a small tokenizer walks the text once
// and records every start tag (and its attributes) in document order; the parser's ordered tree
// is then matched to those tags one for one.

import { XMLParser, XMLValidator } from 'fast-xml-parser';
import type { DefinitionProblem } from '../types.ts';
import { APPLIANCE_START_TAG } from './elements.ts';
import { quote } from './wording.ts';

/** Definitions are metadata; the image lives behind <url>. Anything bigger is a mistake or an attack. */
export const MAX_DEFINITION_BYTES = 1024 * 1024;

export interface XmlAttribute {
  /** Decoded (references resolved), not trimmed. */
  value: string;
  line: number | null;
}

/** A reference problem (undefined entity, bare "&"), kept until the element's path is known. */
export interface ReferenceProblem {
  /** The attribute it is in, or null for the element's text. */
  attr: string | null;
  line: number | null;
  message: string;
}

export interface XmlElement {
  name: string;
  /** Line of the start tag; null when the positions could not be matched (never a wrong line). */
  line: number | null;
  /** Line of the first non-blank content, where a problem with the text is. */
  textLine: number | null;
  attrs: Map<string, XmlAttribute>;
  children: XmlElement[];
  /** Decoded text and CDATA, concatenated and trimmed. */
  text: string;
  refProblems: ReferenceProblem[];
}

/**
 * ok: the document's root elements (normally one) and problems that do not stop checking
 * (processing instructions, stray text); otherwise the reasons nothing could be read.
 */
export type XmlReading = { ok: true; roots: XmlElement[]; problems: DefinitionProblem[] } | { ok: false; problems: DefinitionProblem[] };

// ---------------------------------------------------------------------------------------------
// Source positions.

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

interface StartTag {
  name: string;
  offset: number;
  /** Index just past the tag's '>' — where its content starts. */
  end: number;
  attrs: Map<string, number>;
}

const NAME_CHAR = /[^\s/>=]/;

function scan(xml: string, lines: Lines): { tags: StartTag[]; problems: DefinitionProblem[] } {
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
// The parsed tree, matched to the positions, with references decoded.

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

function buildTree(nodes: FxpNode[], tags: StartTag[], xml: string, lines: Lines): XmlElement[] {
  let cursor = 0;
  let aligned = true;
  const build = (list: FxpNode[]): XmlElement[] => {
    const out: XmlElement[] = [];
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
      const el: XmlElement = { name, line, textLine, attrs: new Map(), children: [], text: '', refProblems: [] };
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
// Reading.

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

const refused = (line: number | null, message: string): XmlReading => ({ ok: false, problems: [{ path: '/', line, message }] });

/** Reads a definition document; `doc` names it in messages about the document as a whole. */
export function readXml(xml: string, doc: string): XmlReading {
  const bytes = utf8Length(xml);
  if (bytes > MAX_DEFINITION_BYTES) {
    const mib = bytes / (1024 * 1024);
    return refused(null, `${doc} is ${mib.toFixed(1)} MiB; appliance definitions are limited to 1 MiB (they are metadata: the image itself goes behind <url>)`);
  }
  // XML normalizes line ends before anything else; doing it here keeps offsets and lines honest.
  const text = (xml.startsWith('\uFEFF') ? xml.slice(1) : xml).replace(/\r\n?/g, '\n');
  const lines = new Lines(text);

  // Checked on the raw text, before any parser sees it, and even inside comments or CDATA: a
  // DOCTYPE is the door to entity expansion and external entities, and no definition needs one.
  const doctype = /<!DOCTYPE|<!ENTITY/i.exec(text);
  if (doctype) {
    return refused(
      lines.at(doctype.index),
      'DOCTYPE declarations and entities are not allowed in appliance definitions (they enable entity expansion such as "billion laughs" and external entities/XXE); remove the <!DOCTYPE …> and write characters directly or as &amp; &lt; &gt; &quot; &apos; or &#…;',
    );
  }

  if (text.trim() === '') return refused(1, `${doc} is empty; an appliance definition starts with ${APPLIANCE_START_TAG}`);

  const bad = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/.exec(text);
  if (bad) {
    return refused(
      lines.at(bad.index),
      `control character U+${bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')} is not allowed in XML; remove it (is this a binary file?)`,
    );
  }

  const wf = XMLValidator.validate(text, { allowBooleanAttributes: false });
  if (wf !== true) {
    return refused(wf.err.line, `not well-formed XML: ${wf.err.msg} (line ${wf.err.line}, column ${wf.err.col}); fix the XML syntax first`);
  }

  const scanned = scan(text, lines);
  let nodes: FxpNode[];
  try {
    nodes = parser.parse(text) as FxpNode[];
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const named = /"([^"]+)"/.exec(msg)?.[1];
    const tag = named ? scanned.tags.find((t) => t.name === named || t.attrs.has(named)) : undefined;
    return { ok: false, problems: [...scanned.problems, { path: '/', line: tag ? lines.at(tag.offset) : null, message: `refused by the XML parser: ${msg}` }] };
  }
  return { ok: true, roots: buildTree(nodes, scanned.tags, text, lines), problems: scanned.problems };
}
