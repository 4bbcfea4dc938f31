// Protobuf codecs for the protocol's services, built from protobufjs reflection.
// protocol.generated.json is compiled from proto/*.proto by `npm run build -w provider`;
// parsing .proto text at start would cost 20-25 ms of every provider start.
import protobuf from 'protobufjs';
import descriptor from './protocol.generated.json' with { type: 'json' };

/** Plain objects with snake_case names, numbers for enums and 64-bit ints, defaults filled. */
const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: Number, defaults: true, oneofs: true };

export type Message = Record<string, unknown>;

export interface MessageCodec {
  encode(value: Message): Uint8Array;
  decode(bytes: Uint8Array): Message;
}

export interface MethodCodecs {
  /** `/package.Service/Method`, as it appears in the HTTP/2 :path. */
  path: string;
  request: MessageCodec;
  response: MessageCodec;
}

function messageCodec(type: protobuf.Type): MessageCodec {
  return {
    encode: (value) => type.encode(type.fromObject(value)).finish(),
    decode: (bytes) => type.toObject(type.decode(bytes), TO_OBJECT),
  };
}

/** The codecs of every unary method of `service` (e.g. `tfplugin6.Provider`), keyed by method name. */
export function unaryMethodCodecs(service: string): Map<string, MethodCodecs> {
  const root = protobuf.Root.fromJSON(descriptor as protobuf.INamespace);
  const methods = new Map<string, MethodCodecs>();
  for (const method of root.lookupService(service).methodsArray) {
    if (method.requestStream || method.responseStream) continue;
    method.resolve();
    methods.set(method.name, {
      path: `/${service}/${method.name}`,
      request: messageCodec(method.resolvedRequestType!),
      response: messageCodec(method.resolvedResponseType!),
    });
  }
  return methods;
}
