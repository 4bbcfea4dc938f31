// One executable, three faces: started by Terraform (magic cookie set) it serves the plugin
// protocol; `storm controller` is the long-running controller; otherwise it is the `storm`
// command line. The plugin server is part of this entry file (every extra module file costs a
// provider start ~1 ms before its handshake line, and the server's built-ins load only when it
// runs); the provider itself (resources, drivers), the controller and the CLI load on demand.
import { startedByTerraform } from './protocol/handshake.ts';
import { servePlugin } from './server/serve.ts';

if (startedByTerraform(process.env)) {
  await servePlugin(async () => (await import('./provider.ts')).storm);
} else if (process.argv[2] === 'controller') {
  const { runController } = await import('./controller/main.ts');
  process.exitCode = await runController(process.argv.slice(3));
} else {
  const { runCli } = await import('./cli/main.ts');
  process.exitCode = await runCli(process.argv.slice(2));
}
