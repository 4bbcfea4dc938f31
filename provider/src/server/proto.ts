// The protocol's services for grpc-js, built straight from protobufjs types.
// protocol.generated.json is compiled from proto/*.proto by `npm run build -w provider`;
// parsing .proto text, or going through @grpc/proto-loader's descriptor conversion, would
// cost 20-25 ms of every provider start (Terraform starts the provider 3-5 times a command).
import type * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import descriptor from './protocol.generated.json' with { type: 'json' };

/** Plain objects with snake_case names, numbers for enums and 64-bit ints, defaults filled. */
const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: Number, defaults: true, oneofs: true };

export interface ProtocolServices {
  provider: grpc.ServiceDefinition;
  stdio: grpc.ServiceDefinition;
  broker: grpc.ServiceDefinition;
  controller: grpc.ServiceDefinition;
  health: grpc.ServiceDefinition;
}

type Message = Record<string, unknown>;

function codec(type: protobuf.Type) {
  return {
    serialize: (value: Message) => Buffer.from(type.encode(type.fromObject(value)).finish()),
    deserialize: (bytes: Buffer) => type.toObject(type.decode(bytes), TO_OBJECT) as Message,
  };
}

export function serviceDefinition(root: protobuf.Root, name: string): grpc.ServiceDefinition {
  const service = root.lookupService(name);
  const definition: Record<string, grpc.MethodDefinition<Message, Message>> = {};
  for (const method of service.methodsArray) {
    method.resolve();
    const request = codec(method.resolvedRequestType!);
    const response = codec(method.resolvedResponseType!);
    definition[method.name] = {
      path: `/${name}/${method.name}`,
      requestStream: method.requestStream === true,
      responseStream: method.responseStream === true,
      requestSerialize: request.serialize,
      requestDeserialize: request.deserialize,
      responseSerialize: response.serialize,
      responseDeserialize: response.deserialize,
      originalName: method.name,
    };
  }
  return definition as grpc.ServiceDefinition;
}

export function protocolRoot(): protobuf.Root {
  return protobuf.Root.fromJSON(descriptor as protobuf.INamespace);
}

export function loadServices(): ProtocolServices {
  const root = protocolRoot();
  return {
    provider: serviceDefinition(root, 'tfplugin6.Provider'),
    stdio: serviceDefinition(root, 'plugin.GRPCStdio'),
    broker: serviceDefinition(root, 'plugin.GRPCBroker'),
    controller: serviceDefinition(root, 'plugin.GRPCController'),
    health: serviceDefinition(root, 'grpc.health.v1.Health'),
  };
}
