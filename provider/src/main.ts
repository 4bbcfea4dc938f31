// One executable, two faces: started by Terraform (magic cookie set) it serves the plugin
// protocol; started by a person it is the `storm` command line.
import { startedByTerraform } from './protocol/handshake.ts';

if (startedByTerraform(process.env)) {
  const [{ servePlugin }, { storm }] = await Promise.all([import('./server/serve.ts'), import('./provider.ts')]);
  await servePlugin(storm);
} else {
  const { runCli } = await import('./cli/main.ts');
  process.exitCode = await runCli(process.argv.slice(2));
}
