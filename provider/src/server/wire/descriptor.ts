// The shape of protocol.generated.json: the .proto files reduced at build time to what the
// runtime codec needs, with every type name already resolved to its full name. Types only.

export type ScalarType =
  | 'double'
  | 'float'
  | 'int32'
  | 'int64'
  | 'uint32'
  | 'uint64'
  | 'sint32'
  | 'sint64'
  | 'fixed32'
  | 'fixed64'
  | 'sfixed32'
  | 'sfixed64'
  | 'bool'
  | 'string'
  | 'bytes';

export interface FieldDescriptor {
  /** The .proto name (snake_case); also the property name in decoded objects. */
  name: string;
  number: number;
  /** For a map field, the type of its values. */
  type: ScalarType | 'enum' | 'message';
  /** Full name of the message or enum type, for `enum` and `message`. */
  ref?: string;
  repeated?: true;
  /** Present on map fields: the key type (an integral type, bool or string). */
  mapKey?: ScalarType;
  /** The oneof this field belongs to: it then has presence and no default. */
  oneof?: string;
}

export interface MessageDescriptor {
  fields: FieldDescriptor[];
}

export interface MethodDescriptor {
  request: string;
  response: string;
  requestStream?: true;
  responseStream?: true;
}

export interface ProtocolDescriptor {
  messages: Record<string, MessageDescriptor>;
  enums: Record<string, Record<string, number>>;
  services: Record<string, Record<string, MethodDescriptor>>;
}
