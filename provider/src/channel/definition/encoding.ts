// Bytes to text, for definitions read from a file or fetched from a channel. The site publishes
// a definition byte for byte (a signed feed covers its sha256), so whatever the validator reads
// must be what users download: definitions are UTF-8 (with or without a BOM), and every other
// encoding is refused with a way to convert, never decoded into something else. A Latin-1 file
// read as UTF-8 would be silently re-encoded on the way out; one read as Latin-1 would be
// published with bytes the provider then reads differently.

import type { DefinitionProblem } from '../types.ts';
import { quote } from './wording.ts';

/** Definitions are metadata; the image lives behind <url>. Anything bigger is a mistake or an attack. */
export const MAX_DEFINITION_BYTES = 1024 * 1024;

export type Decoded = { ok: true; text: string } | { ok: false; problems: DefinitionProblem[] };

const refusal = (line: number | null, column: number | null, message: string): Decoded => ({ ok: false, problems: [{ path: '/', line, column, message }] });

const CONVERT = "save it as UTF-8 (e.g. iconv -f ENCODING -t UTF-8 appliance.xml > appliance.utf8.xml) and declare <?xml version='1.0' encoding='utf-8'?>";
const convertFrom = (encoding: string): string => CONVERT.replace('ENCODING', encoding);
const WHY = 'storm reads appliance definitions as UTF-8 only, because the channel publishes each one byte for byte';

export function tooBigMessage(bytes: number, doc: string): string {
  const mib = bytes / (1024 * 1024);
  return `${doc} is ${mib.toFixed(1)} MiB; appliance definitions are limited to 1 MiB (they are metadata: the image itself goes behind <url>)`;
}

// UTF-16 and UTF-32 are told by their BOM or, without one, by the zero bytes around the "<" the
// document starts with (XML 1.0 appendix F).
function wideEncoding(b: Uint8Array): { name: string; how: string } | null {
  const [b0, b1, b2, b3] = [b[0], b[1], b[2], b[3]];
  if (b0 === 0xff && b1 === 0xfe && b2 === 0 && b3 === 0) return { name: 'UTF-32LE', how: 'it starts with a UTF-32 byte order mark' };
  if (b0 === 0 && b1 === 0 && b2 === 0xfe && b3 === 0xff) return { name: 'UTF-32BE', how: 'it starts with a UTF-32 byte order mark' };
  if (b0 === 0xff && b1 === 0xfe) return { name: 'UTF-16LE', how: 'it starts with a UTF-16 byte order mark' };
  if (b0 === 0xfe && b1 === 0xff) return { name: 'UTF-16BE', how: 'it starts with a UTF-16 byte order mark' };
  if (b.length >= 2 && b0 !== 0 && b1 === 0) return { name: 'UTF-16LE', how: 'every other byte is zero' };
  if (b.length >= 2 && b0 === 0 && b1 !== 0) return { name: 'UTF-16BE', how: 'every other byte is zero' };
  return null;
}

// The encoding's name as XML spells one (EncName); a declaration that is not well-formed is the reader's to report.
const DECLARATION = /^<\?xml[ \t\r\n][^>]*?\bencoding[ \t\r\n]*=[ \t\r\n]*(["'])([A-Za-z][A-Za-z0-9._-]*)\1/;

/**
 * The problem with the encoding an XML declaration at the start of `start` names (no BOM before
 * it), and the offset of the name; null when it is UTF-8 or not declared.
 */
export function encodingProblem(start: string): { offset: number; message: string } | null {
  const m = DECLARATION.exec(start);
  if (!m || m[2]!.toLowerCase() === 'utf-8') return null;
  const name = m[2]!;
  return {
    offset: m.index + m[0].length - name.length - 1,
    message: `the XML declaration says encoding=${quote(name)}: ${WHY}; ${convertFrom(name)}`,
  };
}

// Where the first byte is that is not part of well-formed UTF-8 (no overlong forms, no
// surrogates, nothing past U+10FFFF), as TextDecoder's fatal mode judges; -1 when there is none.
function firstBadUtf8(b: Uint8Array): number {
  let i = 0;
  const n = b.length;
  while (i < n) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      if (c === 0xe0) lo = 0xa0;
      if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f;
    } else return i;
    const second = b[i + 1];
    if (second === undefined || second < lo || second > hi) return i;
    for (let k = 2; k <= need; k++) {
      const next = b[i + k];
      if (next === undefined || next < 0x80 || next > 0xbf) return i;
    }
    i += need + 1;
  }
  return -1;
}

/** Line and column (in characters) of a byte offset in UTF-8 text. */
function bytePosition(b: Uint8Array, offset: number): { line: number; column: number } {
  let line = 1;
  let column = 1;
  for (let i = 0; i < offset; i++) {
    const c = b[i]!;
    if (c === 0x0a) {
      line++;
      column = 1;
    } else if ((c & 0xc0) !== 0x80) column++;
  }
  return { line, column };
}

const fatalDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The text of a definition file. The BOM, if any, stays in the text, so encoding the text as UTF-8
 * gives back exactly the bytes read; `doc` names the file in messages about it as a whole.
 */
export function decodeDefinition(bytes: Uint8Array, doc: string): Decoded {
  if (bytes.length > MAX_DEFINITION_BYTES) return refusal(null, null, tooBigMessage(bytes.length, doc));
  const wide = wideEncoding(bytes);
  if (wide) return refusal(1, 1, `${doc} is ${wide.name} (${wide.how}): ${WHY}; ${convertFrom(wide.name.slice(0, 6))}`);
  // The declaration is ASCII in every encoding this could be, so it is read before decoding: a
  // Latin-1 file that says so gets told about its declaration, not about its first accented byte.
  const bom = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  const head = String.fromCharCode(...bytes.subarray(bom, bom + 256));
  const declared = encodingProblem(head);
  if (declared) {
    const before = head.slice(0, declared.offset);
    const line = 1 + (before.match(/\n/g)?.length ?? 0);
    return refusal(line, declared.offset - (before.lastIndexOf('\n') + 1) + 1, declared.message);
  }
  try {
    return { ok: true, text: fatalDecoder.decode(bytes) };
  } catch {
    const at = firstBadUtf8(bytes);
    const { line, column } = bytePosition(bytes, at === -1 ? 0 : at);
    const byte = at === -1 ? '' : `byte 0x${bytes[at]!.toString(16).toUpperCase().padStart(2, '0')} `;
    return refusal(line, column, `${byte}is not UTF-8 (was the file saved as Latin-1 or Windows-1252?): ${WHY}; ${convertFrom('ISO-8859-1')}`);
  }
}
