// Protobuf (proto3) encoding driven by the build-time descriptor. It replaces protobufjs at
// run time: loading protobufjs, building its reflection tree and generating code per type on
// first use cost tens of milliseconds of every provider's first GetProviderSchema; walking a
// table costs a few.
//
// Decoded objects follow the conventions the handlers were written against: snake_case .proto
// names, numbers for enums and 64-bit integers, every field present with its default (null for
// messages, [] and {} for repeated and map fields, an empty Buffer for bytes), oneof members
// only when set plus a property naming the member that is set.
import type { FieldDescriptor, MessageDescriptor, ProtocolDescriptor } from './descriptor.ts';

export type Message = Record<string, unknown>;

const enum Wire {
  Varint = 0,
  Fixed64 = 1,
  Delimited = 2,
  StartGroup = 3,
  EndGroup = 4,
  Fixed32 = 5,
}

const TWO_32 = 2 ** 32;

function wireType(type: FieldDescriptor['type']): Wire {
  switch (type) {
    case 'double':
    case 'fixed64':
    case 'sfixed64':
      return Wire.Fixed64;
    case 'float':
    case 'fixed32':
    case 'sfixed32':
      return Wire.Fixed32;
    case 'string':
    case 'bytes':
    case 'message':
      return Wire.Delimited;
    default:
      return Wire.Varint;
  }
}

export class ProtocolError extends Error {}

// ---------------------------------------------------------------------------------------------
// Writing. Small values go into a growing scratch buffer; large byte fields and nested
// messages are kept as separate chunks, so a 256 MiB state is copied once, at finish().

class Writer {
  private readonly chunks: Uint8Array[] = [];
  private flushed = 0;
  private buf = Buffer.allocUnsafe(64);
  private pos = 0;

  get length(): number {
    return this.flushed + this.pos;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  private flush(): void {
    if (!this.pos) return;
    this.chunks.push(this.buf.subarray(0, this.pos));
    this.flushed += this.pos;
    this.buf = Buffer.allocUnsafe(Math.min(this.buf.length, 4096));
    this.pos = 0;
  }

  varint(value: number): void {
    if (value < 0) return this.varint64(BigInt.asUintN(64, BigInt(Math.trunc(value))));
    this.room(10);
    let v = Math.trunc(value);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  private varint64(value: bigint): void {
    this.room(10);
    let v = value;
    while (v >= 0x80n) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }

  tag(number: number, wire: Wire): void {
    this.varint(number * 8 + wire);
  }

  fixed32(value: number, signed: boolean): void {
    this.room(4);
    if (signed) this.buf.writeInt32LE(value | 0, this.pos);
    else this.buf.writeUInt32LE(value >>> 0, this.pos);
    this.pos += 4;
  }

  fixed64(value: number): void {
    const v = BigInt.asUintN(64, BigInt(Math.trunc(value)));
    this.room(8);
    this.buf.writeBigUInt64LE(v, this.pos);
    this.pos += 8;
  }

  float(value: number): void {
    this.room(4);
    this.buf.writeFloatLE(value, this.pos);
    this.pos += 4;
  }

  double(value: number): void {
    this.room(8);
    this.buf.writeDoubleLE(value, this.pos);
    this.pos += 8;
  }

  bytes(value: Uint8Array): void {
    this.varint(value.length);
    if (value.length < 1024) {
      this.room(value.length);
      this.buf.set(value, this.pos);
      this.pos += value.length;
    } else {
      this.flush();
      this.chunks.push(value);
      this.flushed += value.length;
    }
  }

  string(value: string): void {
    const n = Buffer.byteLength(value, 'utf8');
    this.varint(n);
    this.room(n);
    this.pos += this.buf.write(value, this.pos, 'utf8');
  }

  /** Appends another writer's output as a length-delimited field value, without copying it. */
  nested(child: Writer): void {
    this.varint(child.length);
    child.flush();
    this.flush();
    this.chunks.push(...child.chunks);
    this.flushed += child.flushed;
  }

  finish(): Buffer {
    this.flush();
    return this.chunks.length === 1 ? Buffer.from(this.chunks[0]!.buffer, this.chunks[0]!.byteOffset, this.chunks[0]!.length) : Buffer.concat(this.chunks, this.flushed);
  }
}

// ---------------------------------------------------------------------------------------------
// Reading.

class Reader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  private need(n: number): void {
    if (this.pos + n > this.end) throw new ProtocolError('truncated protobuf message');
  }

  /** A varint as two 32-bit halves, so 64-bit values survive until their type decides how to read them. */
  varint(): { lo: number; hi: number } {
    let lo = 0;
    let hi = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      this.need(1);
      const b = this.buf[this.pos++]!;
      const bits = b & 0x7f;
      if (shift < 28) lo |= bits << shift;
      else if (shift === 28) {
        lo |= (bits & 0x0f) << 28;
        hi |= bits >> 4;
      } else hi |= bits << (shift - 32);
      if (b < 0x80) return { lo: lo >>> 0, hi: hi >>> 0 };
    }
    throw new ProtocolError('malformed varint in protobuf message');
  }

  length(): number {
    const { lo, hi } = this.varint();
    const n = hi * TWO_32 + lo;
    this.need(n);
    return n;
  }

  skip(wire: Wire): void {
    switch (wire) {
      case Wire.Varint:
        this.varint();
        return;
      case Wire.Fixed64:
        this.need(8);
        this.pos += 8;
        return;
      case Wire.Fixed32:
        this.need(4);
        this.pos += 4;
        return;
      case Wire.Delimited: {
        const length = this.length(); // reads the length, moving pos past it
        this.pos += length;
        return;
      }
      default:
        throw new ProtocolError(`unsupported protobuf wire type ${wire}`);
    }
  }
}

function signed64(lo: number, hi: number): number {
  return hi & 0x80000000 ? Number(BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo))) : hi * TWO_32 + lo;
}

// ---------------------------------------------------------------------------------------------

export class ProtoCodec {
  /** Field lookup by number per message type, filled as types are first decoded. */
  private readonly fieldIndex = new Map<MessageDescriptor, Map<number, FieldDescriptor>>();

  constructor(private readonly descriptor: ProtocolDescriptor) {}

  encode(typeName: string, value: Message): Buffer {
    const w = new Writer();
    this.writeMessage(w, this.message(typeName), value);
    return w.finish();
  }

  decode(typeName: string, bytes: Uint8Array): Message {
    const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    return this.readMessage(new Reader(buf, 0, buf.length), this.message(typeName));
  }

  private message(name: string): MessageDescriptor {
    const m = this.descriptor.messages[name];
    if (!m) throw new ProtocolError(`unknown protobuf message type ${name}`);
    return m;
  }

  private enumValue(field: FieldDescriptor, value: unknown): number {
    if (typeof value === 'number') return value;
    const n = this.descriptor.enums[field.ref!]?.[String(value)];
    if (n === undefined) throw new ProtocolError(`${String(value)} is not a value of ${field.ref} (field ${field.name})`);
    return n;
  }

  // -- encode

  private writeMessage(w: Writer, type: MessageDescriptor, value: Message): void {
    for (const field of type.fields) {
      const v = value[field.name];
      if (v === null || v === undefined) continue;
      if (field.mapKey) this.writeMap(w, field, v as Record<string, unknown>);
      else if (field.repeated) this.writeRepeated(w, field, v as unknown[]);
      else this.writeSingle(w, field, v, field.oneof !== undefined);
    }
  }

  private writeSingle(w: Writer, field: FieldDescriptor, v: unknown, always: boolean): void {
    if (!always && isDefault(field, v)) return; // proto3: a default scalar is absent on the wire
    w.tag(field.number, wireType(field.type));
    this.writeValue(w, field, v);
  }

  private writeRepeated(w: Writer, field: FieldDescriptor, values: unknown[]): void {
    if (!values.length) return;
    const wire = wireType(field.type);
    if (wire === Wire.Delimited) {
      for (const v of values) {
        w.tag(field.number, wire);
        this.writeValue(w, field, v);
      }
      return;
    }
    // proto3 packs repeated numbers and bools: one length-delimited run.
    const packed = new Writer();
    for (const v of values) this.writeValue(packed, field, v);
    w.tag(field.number, Wire.Delimited);
    w.nested(packed);
  }

  private writeMap(w: Writer, field: FieldDescriptor, entries: Record<string, unknown>): void {
    const keyField: FieldDescriptor = { name: 'key', number: 1, type: field.mapKey! };
    const valueField: FieldDescriptor = { name: 'value', number: 2, type: field.type, ref: field.ref };
    for (const [key, value] of Object.entries(entries)) {
      const entry = new Writer();
      this.writeSingle(entry, keyField, field.mapKey === 'string' ? key : field.mapKey === 'bool' ? key === 'true' : Number(key), false);
      if (value !== null && value !== undefined) this.writeSingle(entry, valueField, value, field.type === 'message');
      w.tag(field.number, Wire.Delimited);
      w.nested(entry);
    }
  }

  private writeValue(w: Writer, field: FieldDescriptor, v: unknown): void {
    switch (field.type) {
      case 'message': {
        const child = new Writer();
        this.writeMessage(child, this.message(field.ref!), v as Message);
        return w.nested(child);
      }
      case 'string':
        return w.string(String(v));
      case 'bytes':
        return w.bytes(typeof v === 'string' ? Buffer.from(v, 'base64') : (v as Uint8Array));
      case 'bool':
        return w.varint(v ? 1 : 0);
      case 'enum':
        return w.varint(this.enumValue(field, v));
      case 'sint32':
      case 'sint64': {
        const n = Number(v);
        return w.varint(n < 0 ? -2 * n - 1 : 2 * n);
      }
      case 'uint32':
        return w.varint(Number(v) >>> 0);
      case 'int32':
        return w.varint(Number(v) | 0);
      case 'fixed32':
      case 'sfixed32':
        return w.fixed32(Number(v), field.type === 'sfixed32');
      case 'fixed64':
      case 'sfixed64':
        return w.fixed64(Number(v));
      case 'float':
        return w.float(Number(v));
      case 'double':
        return w.double(Number(v));
      default: // int64, uint64
        return w.varint(Number(v));
    }
  }

  // -- decode

  private fieldByNumber(type: MessageDescriptor, number: number): FieldDescriptor | undefined {
    let index = this.fieldIndex.get(type);
    if (!index) this.fieldIndex.set(type, (index = new Map(type.fields.map((f) => [f.number, f]))));
    return index.get(number);
  }

  private readMessage(r: Reader, type: MessageDescriptor): Message {
    const out: Message = {};
    for (const field of type.fields) if (!field.oneof) out[field.name] = defaultValue(field);
    while (r.pos < r.end) {
      const { lo: key } = r.varint();
      const number = key >>> 3;
      const wire = (key & 7) as Wire;
      const field = this.fieldByNumber(type, number);
      if (!field) {
        r.skip(wire);
        continue;
      }
      if (field.mapKey) {
        this.readMapEntry(r, field, out[field.name] as Record<string, unknown>);
      } else if (field.repeated) {
        const list = out[field.name] as unknown[];
        if (wire === Wire.Delimited && wireType(field.type) !== Wire.Delimited) {
          const length = r.length();
        const end = r.pos + length;
          const packed = new Reader(r.buf, r.pos, end);
          while (packed.pos < end) list.push(this.readValue(packed, field));
          r.pos = end;
        } else {
          list.push(this.readValue(r, field));
        }
      } else {
        out[field.name] = this.readValue(r, field);
        if (field.oneof) out[field.oneof] = field.name;
      }
    }
    return out;
  }

  private readMapEntry(r: Reader, field: FieldDescriptor, into: Record<string, unknown>): void {
    const length = r.length();
        const end = r.pos + length;
    const entry = new Reader(r.buf, r.pos, end);
    const keyField: FieldDescriptor = { name: 'key', number: 1, type: field.mapKey! };
    const valueField: FieldDescriptor = { name: 'value', number: 2, type: field.type, ref: field.ref };
    let key: unknown = defaultValue(keyField);
    let value: unknown = field.type === 'message' ? this.readMessage(new Reader(r.buf, 0, 0), this.message(field.ref!)) : defaultValue(valueField);
    while (entry.pos < end) {
      const { lo: tag } = entry.varint();
      if (tag >>> 3 === 1) key = this.readValue(entry, keyField);
      else if (tag >>> 3 === 2) value = this.readValue(entry, valueField);
      else entry.skip((tag & 7) as Wire);
    }
    into[String(key)] = value;
    r.pos = end;
  }

  private readValue(r: Reader, field: FieldDescriptor): unknown {
    switch (field.type) {
      case 'message': {
        const length = r.length();
        const end = r.pos + length;
        const value = this.readMessage(new Reader(r.buf, r.pos, end), this.message(field.ref!));
        r.pos = end;
        return value;
      }
      case 'string': {
        const length = r.length();
        const end = r.pos + length;
        const value = r.buf.toString('utf8', r.pos, end);
        r.pos = end;
        return value;
      }
      case 'bytes': {
        const length = r.length();
        const end = r.pos + length;
        // A view, not a copy: the request buffer belongs to this call alone.
        const value = r.buf.subarray(r.pos, end);
        r.pos = end;
        return value;
      }
      case 'fixed32':
      case 'sfixed32':
      case 'float': {
        if (r.pos + 4 > r.end) throw new ProtocolError('truncated protobuf message');
        const at = r.pos;
        r.pos += 4;
        return field.type === 'float' ? r.buf.readFloatLE(at) : field.type === 'sfixed32' ? r.buf.readInt32LE(at) : r.buf.readUInt32LE(at);
      }
      case 'fixed64':
      case 'sfixed64':
      case 'double': {
        if (r.pos + 8 > r.end) throw new ProtocolError('truncated protobuf message');
        const at = r.pos;
        r.pos += 8;
        if (field.type === 'double') return r.buf.readDoubleLE(at);
        return Number(field.type === 'sfixed64' ? r.buf.readBigInt64LE(at) : r.buf.readBigUInt64LE(at));
      }
    }
    const { lo, hi } = r.varint();
    switch (field.type) {
      case 'bool':
        return lo !== 0 || hi !== 0;
      case 'int32':
      case 'enum':
        return lo | 0;
      case 'uint32':
        return lo;
      case 'sint32':
        return (lo >>> 1) ^ -(lo & 1);
      case 'sint64': {
        const n = hi * TWO_32 + lo;
        return lo & 1 ? -(n + 1) / 2 : n / 2;
      }
      case 'uint64':
        return hi * TWO_32 + lo;
      default: // int64
        return signed64(lo, hi);
    }
  }
}

function defaultValue(field: FieldDescriptor): unknown {
  if (field.mapKey) return {};
  if (field.repeated) return [];
  switch (field.type) {
    case 'message':
      return null;
    case 'string':
      return '';
    case 'bytes':
      return Buffer.alloc(0);
    case 'bool':
      return false;
    default:
      return 0;
  }
}

function isDefault(field: FieldDescriptor, v: unknown): boolean {
  switch (field.type) {
    case 'message':
      return false;
    case 'string':
      return v === '';
    case 'bytes':
      return (v as Uint8Array).length === 0;
    case 'bool':
      return !v;
    case 'enum':
      return v === 0;
    default:
      return Number(v) === 0;
  }
}
