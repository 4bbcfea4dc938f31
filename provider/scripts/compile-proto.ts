// Compiles provider/proto/*.proto into the JSON descriptor the provider loads at start.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const protoDir = fileURLToPath(new URL('../proto/', import.meta.url));
export const DESCRIPTOR_PATH = fileURLToPath(new URL('../src/server/protocol.generated.json', import.meta.url));

export function compileProto(): string {
  const root = new protobuf.Root();
  root.loadSync(['tfplugin6.proto', 'go-plugin.proto', 'health.proto'].map((f) => protoDir + f), { keepCase: true });
  return JSON.stringify(root.toJSON(), null, 1) + '\n';
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync(DESCRIPTOR_PATH, compileProto());
  console.log(`wrote ${DESCRIPTOR_PATH}`);
}
