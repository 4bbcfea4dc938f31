// Where the demo keeps what outlives one command: build/demo/ holds the running cluster's
// description (cluster.json, written by the cluster process once everything answers), the lab
// blades' disks, the channel, the controller's CA and store, the cdktf project with its state,
// the logs and the timeline. `npm run demo -- --destroy` removes all of it.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Blade } from '../../test/lib/lab.ts';
import { REPO_DIR } from '../../test/lib/terraform.ts';

export const DEMO_DIR = process.env.STORM_DEMO_DIR ?? join(REPO_DIR, 'build', 'demo');

export const paths = {
  cluster: join(DEMO_DIR, 'cluster.json'),
  clusterLog: join(DEMO_DIR, 'cluster.log'),
  controllerLog: join(DEMO_DIR, 'controller.log'),
  lab: join(DEMO_DIR, 'lab'),
  channel: join(DEMO_DIR, 'channel'),
  controller: join(DEMO_DIR, 'controller'),
  project: join(DEMO_DIR, 'project'),
  out: join(DEMO_DIR, 'cdktf.out'),
  deployLog: join(DEMO_DIR, 'deploy.log'),
  planSummary: join(DEMO_DIR, 'plan-summary.md'),
  timeline: join(DEMO_DIR, 'timeline.svg'),
  statusShot: join(DEMO_DIR, 'status.png'),
  decisions: join(DEMO_DIR, 'decisions.log'),
  replay: join(DEMO_DIR, 'replay.txt'),
};

/** The controller's --interval: short, so the experiment fits in minutes. */
export const ROUND_SECONDS = 2;

/** Fixed, so that a demo run again after an interruption finds the same channel and controller. */
export const CHANNEL_PORT = Number(process.env.STORM_DEMO_CHANNEL_PORT ?? 8480);
export const CONTROLLER_PORT = Number(process.env.STORM_DEMO_CONTROLLER_PORT ?? 9443);
export const BMC_FIRST_PORT = Number(process.env.STORM_DEMO_BMC_PORT ?? 9601);
/** The mail network: one /24 per blade, since both blades bridge on this one machine. */
export const LANS = ['192.168.160', '192.168.161'] as const;

export interface ClusterInfo {
  pid: number;
  startedAt: string;
  blades: Blade[];
  channel: { feedUrl: string; publicKeyLine: string; catalogUrl: string };
  controller: { url: string; dir: string };
}

export function readCluster(): ClusterInfo | null {
  if (!existsSync(paths.cluster)) return null;
  try {
    return JSON.parse(readFileSync(paths.cluster, 'utf8')) as ClusterInfo;
  } catch {
    return null;
  }
}

/** Whether `pid` is a live (not zombie) process running the demo's cluster. */
export function clusterAlive(pid: number): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return cmdline.includes('demo/cluster.ts') && stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
