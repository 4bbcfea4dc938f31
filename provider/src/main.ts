// One executable, two faces: started by Terraform (magic cookie set) it serves the plugin
// protocol; started by a person it is the `storm` command line. Each face loads only its own
// code, and the plugin loads the provider (resources, drivers) after its handshake.
import { startedByTerraform } from './protocol/handshake.ts';

if (startedByTerraform(process.env)) {
  const { servePlugin } = await import('./server/serve.ts');
  await servePlugin(async () => (await import('./provider.ts')).storm);
} else {
  const { runCli } = await import('./cli/main.ts');
  process.exitCode = await runCli(process.argv.slice(2));
}
