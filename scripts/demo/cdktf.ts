// cdktf and terraform as the demo runs them: cdktf-cli from node_modules under the repo's Node 22,
// the provider from the repo-local mirror, the stack's inputs as TF_VAR_*, offline. cdktf's own
// output goes to deploy.log; what a viewer wants to follow (each resource created or destroyed,
// errors) is handed to `progress` line by line.
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { CLI_CONFIG, REPO_DIR } from '../../test/lib/terraform.ts';
import { paths } from './state.ts';

export type Vars = Record<string, string | number>;

const FOLLOWED = /(Creation complete|Modifications complete|Destruction complete|Apply complete|Destroy complete|Error|error:|│)/;

function env(vars: Vars): Record<string, string> {
  const tfVars = Object.fromEntries(Object.entries(vars).map(([k, v]) => [`TF_VAR_${k}`, String(v)]));
  return {
    PATH: `${join(REPO_DIR, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`,
    TF_CLI_CONFIG_FILE: CLI_CONFIG,
    CHECKPOINT_DISABLE: '1',
    // Plain line output from cdktf (no interactive UI), and no prompts.
    CI: '1',
    TF_IN_AUTOMATION: '1',
    TF_INPUT: '0',
    NO_COLOR: '1',
    FORCE_COLOR: '0',
    ...tfVars,
  };
}

/** cdktf's project for the demo: the repo's cdktf.json with its app named absolutely, so state stays in build/demo/project. */
export function writeProject(): void {
  mkdirSync(paths.project, { recursive: true });
  const config = JSON.parse(readFileSync(join(REPO_DIR, 'cdktf.json'), 'utf8')) as { app: string };
  writeFileSync(join(paths.project, 'cdktf.json'), `${JSON.stringify({ ...config, app: `tsx ${join(REPO_DIR, 'stacks', 'main.ts')}` }, null, 2)}\n`);
}

export interface RunOutcome { exitCode: number; tail: string[] }

/** Runs `cdktf ARGS --output build/demo/cdktf.out` in the demo's project, logging to deploy.log. */
export async function cdktf(args: string[], vars: Vars, progress: (line: string) => void): Promise<RunOutcome> {
  return follow('cdktf', [...args, '--output', paths.out], paths.project, vars, progress);
}

/** Runs terraform in the synthesized stack's directory (init, plan, show). */
export async function terraform(args: string[], vars: Vars, progress: (line: string) => void = () => {}): Promise<RunOutcome & { stdout: string }> {
  const dir = join(paths.out, 'stacks', 'mail-cluster');
  let stdout = '';
  const r = await follow('terraform', args, dir, vars, progress, (chunk) => { stdout += chunk; });
  return { ...r, stdout };
}

async function follow(cmd: string, args: string[], cwd: string, vars: Vars, progress: (line: string) => void, onStdout?: (chunk: string) => void): Promise<RunOutcome> {
  const log = createWriteStream(paths.deployLog, { flags: 'a' });
  log.write(`\n$ ${cmd} ${args.join(' ')}\n`);
  const child = execa(cmd, args, { cwd, env: env(vars), reject: false, all: true, timeout: 20 * 60_000, stdin: 'ignore' });
  const tail: string[] = [];
  let rest = '';
  child.stdout?.on('data', (b: Buffer) => onStdout?.(b.toString()));
  child.all?.on('data', (b: Buffer) => {
    log.write(b);
    rest += b.toString();
    const lines = rest.split('\n');
    rest = lines.pop()!;
    for (const raw of lines) {
      const line = raw.replace(/^mail-cluster\s+/, '').trimEnd();
      if (!line.trim()) continue;
      tail.push(line);
      if (tail.length > 40) tail.shift();
      if (FOLLOWED.test(line)) progress(line.trim());
    }
  });
  const r = await child;
  await new Promise((resolve) => log.end(resolve));
  return { exitCode: r.exitCode ?? 1, tail };
}
