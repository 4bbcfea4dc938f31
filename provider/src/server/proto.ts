// Protobuf codecs for the protocol's services. protocol.generated.json is compiled from
// proto/*.proto by `npm run build -w provider` (scripts/compile-proto.ts).
import descriptorJson from './protocol.generated.json' with { type: 'json' };
import type { ProtocolDescriptor } from './wire/descriptor.ts';
import { ProtoCodec, type Message } from './wire/codec.ts';

export type { Message };

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

export const PROTOCOL: ProtocolDescriptor = descriptorJson as ProtocolDescriptor;

/** The codecs of every unary method of `service` (e.g. `tfplugin6.Provider`), keyed by method name. */
export function unaryMethodCodecs(service: string, descriptor: ProtocolDescriptor = PROTOCOL): Map<string, MethodCodecs> {
  const codec = new ProtoCodec(descriptor);
  const methods = new Map<string, MethodCodecs>();
  for (const [name, method] of Object.entries(descriptor.services[service] ?? {})) {
    if (method.requestStream || method.responseStream) continue;
    methods.set(name, {
      path: `/${service}/${name}`,
      request: { encode: (v) => codec.encode(method.request, v), decode: (b) => codec.decode(method.request, b) },
      response: { encode: (v) => codec.encode(method.response, v), decode: (b) => codec.decode(method.response, b) },
    });
  }
  return methods;
}
