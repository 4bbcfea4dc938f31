// gRPC's length-prefixed messages (PROTOCOL-HTTP2 "Length-Prefixed-Message"): one byte
// compressed-flag, four bytes big-endian length, then the message. HTTP/2 cuts the byte
// stream into DATA frames wherever it likes, so a message may span many chunks and one chunk
// may hold the end of one message and the start of the next.
import { GrpcError, Status } from './status.ts';

const PREFIX_BYTES = 5;

/** The five-byte prefix for an uncompressed message of this length; written before the message itself to avoid copying it. */
export function messagePrefix(length: number): Buffer {
  const prefix = Buffer.alloc(PREFIX_BYTES);
  prefix.writeUInt32BE(length, 1);
  return prefix;
}

/** Reassembles messages from chunks. Each message is copied once, into a buffer of its exact size. */
export class MessageReader {
  private readonly prefix = Buffer.alloc(PREFIX_BYTES);
  private prefixFilled = 0;
  private body: Buffer | undefined;
  private bodyFilled = 0;

  constructor(private readonly maxMessageBytes: number) {}

  /** True while a message has begun but not ended: the peer's stream ended early if so. */
  get partial(): boolean {
    return this.prefixFilled > 0;
  }

  /** Feeds one chunk; returns the messages it completed, in order. Throws GrpcError. */
  push(chunk: Buffer): Buffer[] {
    const done: Buffer[] = [];
    let at = 0;
    while (at < chunk.length) {
      if (this.prefixFilled < PREFIX_BYTES) {
        const n = Math.min(PREFIX_BYTES - this.prefixFilled, chunk.length - at);
        chunk.copy(this.prefix, this.prefixFilled, at, at + n);
        this.prefixFilled += n;
        at += n;
        if (this.prefixFilled < PREFIX_BYTES) break;
        this.body = this.startMessage();
        this.bodyFilled = 0;
      }
      const body = this.body!;
      const n = Math.min(body.length - this.bodyFilled, chunk.length - at);
      chunk.copy(body, this.bodyFilled, at, at + n);
      this.bodyFilled += n;
      at += n;
      if (this.bodyFilled === body.length) {
        done.push(body);
        this.prefixFilled = 0;
        this.body = undefined;
      }
    }
    return done;
  }

  private startMessage(): Buffer {
    // storm never advertises grpc-accept-encoding, so a compliant client never compresses.
    if (this.prefix[0] !== 0) throw new GrpcError(Status.INTERNAL, 'compressed gRPC messages are not supported (no grpc-encoding was negotiated)');
    const length = this.prefix.readUInt32BE(1);
    if (length > this.maxMessageBytes) {
      throw new GrpcError(Status.RESOURCE_EXHAUSTED, `gRPC message of ${length} bytes exceeds the limit of ${this.maxMessageBytes} bytes`);
    }
    return Buffer.allocUnsafe(length);
  }
}
