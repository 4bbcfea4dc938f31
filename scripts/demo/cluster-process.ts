// The demo's cluster process (cluster.ts) seen from the commands: the running one adopted, or a
// new one started detached and waited for until it has written cluster.json; stopped with SIGTERM.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_DIR } from '../../test/lib/terraform.ts';
import { clusterAlive, DEMO_DIR, paths, readCluster, type ClusterInfo } from './state.ts';
import { DemoError, waitFor } from './wait.ts';

/** The running cluster, or a new one started detached (its BMCs live as long as it does). */
export async function ensureCluster(say: (line: string) => void): Promise<ClusterInfo> {
  const up = readCluster();
  if (up && clusterAlive(up.pid)) {
    say(`the demo cluster is already up (pid ${up.pid}, since ${up.startedAt}): using it`);
    return up;
  }
  rmSync(paths.cluster, { force: true });
  mkdirSync(DEMO_DIR, { recursive: true });
  const out = openSync(paths.clusterLog, 'a');
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_DIR, 'scripts', 'demo', 'cluster.ts')], { cwd: REPO_DIR, detached: true, stdio: ['ignore', out, out] });
  closeSync(out);
  let exited: string | null = null;
  child.on('exit', (code, signal) => { exited = signal ?? `exit ${code}`; });
  child.unref();
  say(`starting the cluster (pid ${child.pid}; log ${paths.clusterLog})`);
  const info = await waitFor('the cluster to answer', 300_000, async () => {
    if (exited) throw new DemoError(`the cluster process ended (${exited}):\n${tail(paths.clusterLog, 15)}`);
    const c = readCluster();
    return c && c.pid === child.pid ? c : null;
  }).catch((e: Error) => {
    if (exited) throw new DemoError(`the cluster process ended (${exited}):\n${tail(paths.clusterLog, 15)}`);
    throw e;
  });
  return info;
}

/** Stops the cluster process (it stops its controller, blades and channel) and waits for it to end. */
export async function stopCluster(): Promise<void> {
  const up = readCluster();
  if (!up || !clusterAlive(up.pid)) return;
  process.kill(up.pid, 'SIGTERM');
  await waitFor('the cluster to stop', 60_000, async () => !clusterAlive(up.pid));
}

function tail(file: string, lines: number): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).map((l) => `    ${l}`).join('\n');
}
