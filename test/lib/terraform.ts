// Runs the real terraform binary in a scratch directory against the provider built into the
// repo-local mirror (npm run build). Tests read like steps: write config, apply, plan, ...
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export const REPO_DIR = fileURLToPath(new URL('../..', import.meta.url));
export const CLI_CONFIG = join(REPO_DIR, 'build', 'terraform.rc');

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** stdout and stderr together, as a person sees them. */
  output: string;
}

export const PROVIDER_BLOCK = `terraform {
  required_providers {
    storm = { source = "storm/storm" }
  }
}
`;

export class TerraformDir {
  readonly dir = mkdtempSync(join(tmpdir(), 'storm-tf-'));

  /** Writes a configuration file; pass prelude '' for one that does not use storm at all. */
  write(hcl: string, file = 'main.tf', prelude = PROVIDER_BLOCK): void {
    writeFileSync(join(this.dir, file), prelude + hcl);
  }

  private runs = 0;

  /** Starts terraform (or `command`, which then runs it, e.g. strace) without waiting; the handle has its pid. */
  start(args: string[], env: Record<string, string> = {}, command: string[] = ['terraform']) {
    // STORM_TEST_TF_LOG=1 keeps each run's log (storm's INFO lines included) in the scratch dir.
    const logging = process.env.STORM_TEST_TF_LOG === '1' ? { TF_LOG: 'INFO', TF_LOG_PATH: join(this.dir, `terraform-${++this.runs}-${args[0]}.log`) } : {};
    return execa(command[0]!, [...command.slice(1), ...args], {
      cwd: this.dir,
      reject: false,
      all: true,
      env: { TF_CLI_CONFIG_FILE: CLI_CONFIG, TF_IN_AUTOMATION: '1', CHECKPOINT_DISABLE: '1', TF_INPUT: '0', ...logging, ...env },
      timeout: 10 * 60_000,
    });
  }

  async run(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
    const r = await this.start(args, env);
    return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr, output: r.all ?? '' };
  }

  async init(): Promise<RunResult> {
    return this.must(['init', '-no-color']);
  }

  async apply(...extra: string[]): Promise<RunResult> {
    return this.run(['apply', '-auto-approve', '-no-color', ...extra]);
  }

  /** -detailed-exitcode: 0 no changes, 2 changes, 1 error. */
  async plan(...extra: string[]): Promise<RunResult> {
    return this.run(['plan', '-no-color', '-detailed-exitcode', ...extra]);
  }

  async destroy(): Promise<RunResult> {
    return this.run(['destroy', '-auto-approve', '-no-color']);
  }

  async state(): Promise<StateJson> {
    const r = await this.must(['show', '-json']);
    return JSON.parse(r.stdout) as StateJson;
  }

  async must(args: string[]): Promise<RunResult> {
    const r = await this.run(args);
    if (r.exitCode !== 0) throw new Error(`terraform ${args.join(' ')} exited ${r.exitCode}:\n${r.output}`);
    return r;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface StateResource {
  address: string;
  type: string;
  name: string;
  values: Record<string, unknown>;
}

export interface StateJson {
  values?: { root_module?: { resources?: StateResource[] } };
}

export function resources(state: StateJson): StateResource[] {
  return state.values?.root_module?.resources ?? [];
}

export async function virsh(uri: string, ...args: string[]): Promise<RunResult> {
  const r = await execa('virsh', ['-q', '-c', uri, ...args], { reject: false, all: true });
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr, output: r.all ?? '' };
}
