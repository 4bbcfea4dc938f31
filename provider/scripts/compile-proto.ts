// Compiles provider/proto/*.proto into the descriptor the provider's codec reads at run time
// (src/server/wire/descriptor.ts describes it). protobufjs parses and resolves the .proto
// text here, at build time only; the provider itself never loads it.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import type { FieldDescriptor, MessageDescriptor, ProtocolDescriptor, ScalarType } from '../src/server/wire/descriptor.ts';

const protoDir = fileURLToPath(new URL('../proto/', import.meta.url));
export const DESCRIPTOR_PATH = fileURLToPath(new URL('../src/server/protocol.generated.json', import.meta.url));

const fullName = (t: protobuf.ReflectionObject) => t.fullName.replace(/^\./, '');

function field(f: protobuf.Field): FieldDescriptor {
  const resolved = f.resolve().resolvedType;
  const out: FieldDescriptor = {
    name: f.name,
    number: f.id,
    type: resolved instanceof protobuf.Type ? 'message' : resolved instanceof protobuf.Enum ? 'enum' : (f.type as ScalarType),
  };
  if (resolved) out.ref = fullName(resolved);
  if (f.repeated) out.repeated = true;
  if (f instanceof protobuf.MapField) out.mapKey = f.keyType as ScalarType;
  if (f.partOf) out.oneof = f.partOf.name;
  return out;
}

export function compileProto(): string {
  const root = new protobuf.Root();
  root.loadSync(['tfplugin6.proto', 'go-plugin.proto', 'health.proto'].map((f) => protoDir + f), { keepCase: true });
  root.resolveAll();
  const descriptor: ProtocolDescriptor = { messages: {}, enums: {}, services: {} };
  const walk = (ns: protobuf.NamespaceBase) => {
    for (const item of ns.nestedArray) {
      if (item instanceof protobuf.Type) descriptor.messages[fullName(item)] = { fields: item.fieldsArray.map(field) } satisfies MessageDescriptor;
      else if (item instanceof protobuf.Enum) descriptor.enums[fullName(item)] = { ...item.values };
      else if (item instanceof protobuf.Service) {
        descriptor.services[fullName(item)] = Object.fromEntries(
          item.methodsArray.map((m) => {
            m.resolve();
            return [m.name, { request: fullName(m.resolvedRequestType!), response: fullName(m.resolvedResponseType!), ...(m.requestStream ? { requestStream: true } : {}), ...(m.responseStream ? { responseStream: true } : {}) }];
          }),
        );
      }
      if (item instanceof protobuf.Namespace || item instanceof protobuf.Type) walk(item);
    }
  };
  walk(root);
  return JSON.stringify(descriptor) + '\n';
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync(DESCRIPTOR_PATH, compileProto());
  console.log(`wrote ${DESCRIPTOR_PATH}`);
}
