// Minimal DER reader: enough to walk a certificate's outer structure and take out the fields an
// issuer lends to the certificates it signs (its subject, its key identifier). It reads
// structure only; the signature checks are node:crypto's (X509Certificate).

export interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  body: number;
  /** Offset just past the contents. */
  end: number;
}

export class DerError extends Error {}

export function readTlv(der: Buffer, offset = 0): Tlv {
  if (offset + 2 > der.length) throw new DerError(`truncated DER at offset ${offset}`);
  const tag = der[offset]!;
  // Multi-byte tags (number ≥ 31) never occur in X.509.
  if ((tag & 0x1f) === 0x1f) throw new DerError(`unsupported multi-byte tag at offset ${offset}`);
  let length = der[offset + 1]!;
  let body = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4) throw new DerError(`unsupported length form at offset ${offset}`);
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[body + i]!;
    body += count;
  }
  const end = body + length;
  if (end > der.length) throw new DerError(`DER element at offset ${offset} runs past the end`);
  return { tag, start: offset, body, end };
}

/** The elements inside a constructed TLV (a SEQUENCE, a SET, an explicit tag). */
export function children(der: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let offset = parent.body; offset < parent.end; ) {
    const child = readTlv(der, offset);
    out.push(child);
    offset = child.end;
  }
  return out;
}

/** The whole encoding of an element, tag and length included. */
export const encoding = (der: Buffer, t: Tlv): Buffer => der.subarray(t.start, t.end);

/** An element's contents without its tag and length. */
export const contents = (der: Buffer, t: Tlv): Buffer => der.subarray(t.body, t.end);
