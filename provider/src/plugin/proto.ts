// The protocol's message descriptors. protocol.generated.json is compiled from proto/*.proto
// by `npm run build -w provider` (parsing .proto at every start costs ~25 ms of a ~100 ms start).
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import descriptor from './protocol.generated.json' with { type: 'json' };

export const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: Number, enums: Number, defaults: true, oneofs: true };

interface ServiceHolder {
  service: grpc.ServiceDefinition;
}

export interface ProtocolServices {
  provider: grpc.ServiceDefinition;
  stdio: grpc.ServiceDefinition;
  broker: grpc.ServiceDefinition;
  controller: grpc.ServiceDefinition;
  health: grpc.ServiceDefinition;
}

function service(root: grpc.GrpcObject, path: string): grpc.ServiceDefinition {
  let node: unknown = root;
  for (const part of path.split('.')) node = (node as Record<string, unknown>)[part];
  return (node as ServiceHolder).service;
}

export function loadServices(): ProtocolServices {
  const definition = protoLoader.fromJSON(descriptor as Parameters<typeof protoLoader.fromJSON>[0], LOADER_OPTIONS);
  const root = grpc.loadPackageDefinition(definition);
  return {
    provider: service(root, 'tfplugin6.Provider'),
    stdio: service(root, 'plugin.GRPCStdio'),
    broker: service(root, 'plugin.GRPCBroker'),
    controller: service(root, 'plugin.GRPCController'),
    health: service(root, 'grpc.health.v1.Health'),
  };
}
