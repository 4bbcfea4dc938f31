// Minimal DER (X.690) encoder: just the ASN.1 types an X.509 certificate needs.
// Every function returns a complete TLV so that callers build structures by nesting calls.
// der-read.ts is the matching reader, for the few fields storm takes out of a CA certificate.

const TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  utf8String: 0x0c,
  printableString: 0x13,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
} as const;

export function encodeLength(length: number): Buffer {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`invalid DER length ${length}`);
  // DER mandates the short form whenever it fits.
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, ...contents: Buffer[]): Buffer {
  const body = Buffer.concat(contents);
  return Buffer.concat([Buffer.from([tag]), encodeLength(body.length), body]);
}

export function sequence(...items: Buffer[]): Buffer {
  return tlv(TAG.sequence, ...items);
}

/** Elements must already be in DER order (sorted by encoding); single-element SETs are the only use here. */
export function set(...items: Buffer[]): Buffer {
  return tlv(TAG.set, ...items);
}

export function boolean(value: boolean): Buffer {
  return tlv(TAG.boolean, Buffer.from([value ? 0xff : 0x00]));
}

/** Non-negative INTEGER from big-endian magnitude bytes (or a small number). */
export function integer(value: Buffer | number): Buffer {
  let bytes: Buffer;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`unsupported INTEGER ${value}`);
    const digits: number[] = [];
    for (let n = value; n > 0; n = Math.floor(n / 256)) digits.unshift(n % 256);
    bytes = Buffer.from(digits);
  } else {
    bytes = value;
  }
  // Minimal two's-complement: no redundant leading zeros, but a 0x00 pad when the
  // top bit is set so the value is not read as negative.
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0x00) start++;
  let body = bytes.subarray(start);
  if (body.length === 0) body = Buffer.from([0x00]);
  if ((body[0]! & 0x80) !== 0) body = Buffer.concat([Buffer.from([0x00]), body]);
  return tlv(TAG.integer, body);
}

/** NULL: the parameters of an RSA signature algorithm must be present and empty. */
export function nullValue(): Buffer {
  return tlv(TAG.null);
}

export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map((part) => {
    if (!/^\d+$/.test(part)) throw new RangeError(`invalid OID ${dotted}`);
    return BigInt(part);
  });
  if (arcs.length < 2 || arcs[0]! > 2n || (arcs[0]! < 2n && arcs[1]! > 39n)) {
    throw new RangeError(`invalid OID ${dotted}`);
  }
  const out: number[] = [];
  for (const arc of [arcs[0]! * 40n + arcs[1]!, ...arcs.slice(2)]) {
    // Base-128, most significant group first, continuation bit on all but the last byte.
    const groups: number[] = [Number(arc & 0x7fn)];
    for (let n = arc >> 7n; n > 0n; n >>= 7n) groups.unshift(Number(n & 0x7fn) | 0x80);
    out.push(...groups);
  }
  return tlv(TAG.oid, Buffer.from(out));
}

export function bitString(bytes: Buffer, unusedBits = 0): Buffer {
  if (!Number.isInteger(unusedBits) || unusedBits < 0 || unusedBits > 7 || (bytes.length === 0 && unusedBits !== 0)) {
    throw new RangeError(`invalid unused bit count ${unusedBits}`);
  }
  return tlv(TAG.bitString, Buffer.from([unusedBits]), bytes);
}

/**
 * BIT STRING for an ASN.1 NamedBitList (bit 0 = most significant bit of the first byte).
 * DER requires trailing zero bits to be dropped, which decides the unused-bit count.
 */
export function namedBits(bits: readonly number[]): Buffer {
  if (bits.length === 0) return bitString(Buffer.alloc(0));
  const highest = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (const bit of bits) bytes[Math.floor(bit / 8)]! |= 0x80 >> bit % 8;
  return bitString(bytes, 7 - (highest % 8));
}

export function octetString(bytes: Buffer): Buffer {
  return tlv(TAG.octetString, bytes);
}

export function utf8String(text: string): Buffer {
  return tlv(TAG.utf8String, Buffer.from(text, 'utf8'));
}

export function printableString(text: string): Buffer {
  if (!/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(text)) throw new RangeError(`not a PrintableString: ${text}`);
  return tlv(TAG.printableString, Buffer.from(text, 'ascii'));
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

function timeDigits(date: Date): string {
  return (
    pad2(date.getUTCMonth() + 1) +
    pad2(date.getUTCDate()) +
    pad2(date.getUTCHours()) +
    pad2(date.getUTCMinutes()) +
    pad2(date.getUTCSeconds())
  );
}

/** UTCTime, seconds precision; DER forbids fractional seconds and requires 'Z'. */
export function utcTime(date: Date): Buffer {
  const year = date.getUTCFullYear();
  if (year < 1950 || year > 2049) throw new RangeError(`UTCTime cannot express year ${year}`);
  return tlv(TAG.utcTime, Buffer.from(`${pad2(year % 100)}${timeDigits(date)}Z`, 'ascii'));
}

export function generalizedTime(date: Date): Buffer {
  const year = date.getUTCFullYear();
  if (year < 0 || year > 9999) throw new RangeError(`GeneralizedTime cannot express year ${year}`);
  return tlv(TAG.generalizedTime, Buffer.from(`${String(year).padStart(4, '0')}${timeDigits(date)}Z`, 'ascii'));
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050 on. */
export function x509Time(date: Date): Buffer {
  return date.getUTCFullYear() < 2050 ? utcTime(date) : generalizedTime(date);
}

/** Constructed context-specific tag [n] (EXPLICIT tagging wraps the inner TLV). */
export function contextExplicit(n: number, ...contents: Buffer[]): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 30) throw new RangeError(`unsupported context tag ${n}`);
  return tlv(0xa0 | n, ...contents);
}

/** Primitive context-specific tag [n] (IMPLICIT tagging of a primitive type, e.g. GeneralName dNSName). */
export function contextPrimitive(n: number, bytes: Buffer): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 30) throw new RangeError(`unsupported context tag ${n}`);
  return tlv(0x80 | n, bytes);
}
