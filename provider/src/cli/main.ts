// The `storm` command line. Commands load lazily so `storm --help` stays fast.
import { PROVIDER_VERSION } from '../rules.ts';

interface Command {
  summary: string;
  usage: string;
  /** The command prints its own, longer --help. */
  ownHelp?: boolean;
  run(args: string[]): Promise<number>;
}

const commands: Record<string, Command> = {
  fetch: {
    summary: 'download and verify an appliance image into the local cache, with a progress bar',
    usage: 'storm fetch <url> --sha256 <hex> [--cache-dir DIR]',
    ownHelp: true,
    async run(args) {
      const { fetchCommand } = await import('./fetch.ts');
      return fetchCommand(args);
    },
  },
  keygen: {
    summary: 'create a publisher key pair for signing a channel\'s feed and images',
    usage: 'storm keygen [--out PREFIX] [--comment TEXT] [--force]',
    ownHelp: true,
    async run(args) {
      const { keygenCommand } = await import('./keys.ts');
      return keygenCommand(args);
    },
  },
  sign: {
    summary: 'sign images or a feed with a publisher key, writing FILE.sig next to each',
    usage: 'storm sign [--key FILE] [--purpose image|feed] [--channel URL] [--expires-in 7d] FILE...',
    ownHelp: true,
    async run(args) {
      const { signCommand } = await import('./keys.ts');
      return signCommand(args);
    },
  },
  verify: {
    summary: 'check a file\'s .sig against trusted public keys, as the provider does',
    usage: 'storm verify --pub FILE_OR_LINE [--sig FILE.sig] [--purpose image|feed|key-rotation] FILE',
    ownHelp: true,
    async run(args) {
      const { verifyCommand } = await import('./keys.ts');
      return verifyCommand(args);
    },
  },
  'rotate-key': {
    summary: 'announce a channel\'s new publisher key, signed by the old one (keys/rotation-<id>.json)',
    usage: 'storm rotate-key --key OLD.key --new NEW.pub --channel URL [--out DIR]',
    ownHelp: true,
    async run(args) {
      const { rotateKeyCommand } = await import('./keys.ts');
      return rotateKeyCommand(args);
    },
  },
  tls: {
    summary: 'make a CA and the server and client certificates for qemu+tls:// (libvirt\'s PKI layout)',
    usage: 'storm tls ca|server|client [options]',
    ownHelp: true,
    async run(args) {
      const { tlsCommand } = await import('./tls.ts');
      return tlsCommand(args);
    },
  },
  validate: {
    summary: 'check appliance definitions (files or a folder) as the catalog site\'s build does',
    usage: 'storm validate [--quiet] FILE|FOLDER...',
    ownHelp: true,
    async run(args) {
      const { validateCommand } = await import('./validate.ts');
      return validateCommand(args);
    },
  },
  'plan-summary': {
    summary: 'summarize a plan\'s JSON as Markdown for a pull request: changes, capacity and power per server',
    usage: 'storm plan-summary [PLAN_JSON | -] [--fold-above N]',
    ownHelp: true,
    async run(args) {
      const { planSummaryCommand } = await import('./plan-summary.ts');
      return planSummaryCommand(args);
    },
  },
  schema: {
    summary: 'print the provider schema as JSON (the format of `terraform providers schema -json`)',
    usage: 'storm schema',
    async run() {
      const { providerSchemaJson } = await import('../schema/json.ts');
      const { storm } = await import('../provider.ts');
      process.stdout.write(JSON.stringify(providerSchemaJson(storm), null, 2) + '\n');
      return 0;
    },
  },
  version: {
    summary: 'print the version',
    usage: 'storm version',
    async run() {
      process.stdout.write(`storm ${PROVIDER_VERSION}\n`);
      return 0;
    },
  },
};

function help(): string {
  const width = Math.max('controller'.length, ...Object.keys(commands).map((c) => c.length));
  return [
    'storm — virtual appliances on your own hardware',
    '',
    'This program is also terraform-provider-storm. Terraform starts it by itself;',
    'run `terraform init` in a configuration that requires the provider "storm/storm".',
    '',
    'Usage: storm <command> [options]',
    '',
    'Commands:',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    // Its own entry point (main.ts), not a CLI command: listed so that people find it.
    `  ${'controller'.padEnd(width)}  run the controller: scaling groups, host power (storm controller --help)`,
    '',
    'Run `storm <command> --help` for a command\'s options.',
  ].join('\n');
}

export async function runCli(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help() + '\n');
    return 0;
  }
  if (name === '--version') return commands.version!.run([]);
  const command = commands[name];
  if (!command) {
    process.stderr.write(`storm: unknown command "${name}".\n\n${help()}\n`);
    return 2;
  }
  if (!command.ownHelp && (rest.includes('--help') || rest.includes('-h'))) {
    process.stdout.write(`Usage: ${command.usage}\n\n${command.summary}\n`);
    return 0;
  }
  return command.run(rest);
}
