// gRPC status codes storm's server answers with, and the error that carries one. Codes are
// the numbers from grpc's doc/statuscodes.md; the names are for people reading this code.
export const Status = {
  OK: 0,
  INTERNAL: 13,
  UNIMPLEMENTED: 12,
  RESOURCE_EXHAUSTED: 8,
  UNAVAILABLE: 14,
} as const;

export type StatusCode = (typeof Status)[keyof typeof Status];

/** Ends a call with this status instead of a response; the message reaches the client as-is. */
export class GrpcError extends Error {
  constructor(
    readonly code: StatusCode,
    message: string,
  ) {
    super(message);
    this.name = 'GrpcError';
  }
}

/**
 * The grpc-message trailer is percent-encoded UTF-8 (PROTOCOL-HTTP2: bytes outside
 * 0x20-0x7E, and '%' itself, become %XX), so any error text survives an HTTP/2 header.
 */
export function encodeGrpcMessage(message: string): string {
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

export function decodeGrpcMessage(encoded: string): string {
  // Decodes byte-wise so a truncated or stray escape stays literal rather than throwing.
  const bytes: number[] = [];
  for (let i = 0; i < encoded.length; i++) {
    const hex = encoded[i] === '%' ? encoded.slice(i + 1, i + 3) : '';
    if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(encoded.charCodeAt(i) & 0xff);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}
