// `npm run demo` as a newcomer runs it, on this machine, then torn down after a crash: the demo
// brings its cluster up, shows the plan summary, deploys mail-cluster with cdktf and runs the
// paper's experiment (load → members added → blade 2 powered on and given one → load off →
// back to one member, blade 2 off), writes the timeline and the status picture. Then its cluster
// process is SIGKILLed (the BMCs, blades and controller must go with it, nothing orphaned), and
// `npm run demo -- --destroy` starts the cluster again from what it left, destroys the stack and
// leaves nothing: no process, no directory. The demo's own output is printed (its progress is
// what the README shows). Its directory is a temporary one (STORM_DEMO_DIR), so a user's demo in
// build/demo is not touched; its ports are the demo's fixed ones.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { REPO_DIR } from '../lib/terraform.ts';

const dir = mkdtempSync('/var/tmp/storm-demo-test-');
const env = { ...process.env, STORM_DEMO_DIR: dir };

function demo(...args: string[]) {
  return execa(process.execPath, ['--import', 'tsx', join(REPO_DIR, 'scripts', 'demo.ts'), ...args], { cwd: REPO_DIR, env, reject: false, all: true, timeout: 30 * 60_000 });
}

/** Processes whose command line names the demo's directory (its cluster, BMCs, blades, controller). */
function demoProcesses(): string[] {
  let out = '';
  try {
    out = execFileSync('pgrep', ['-af', dir], { encoding: 'utf8' });
  } catch {
    // pgrep exits 1 when nothing matches.
  }
  return out.split('\n').filter((l) => l.trim() && !l.includes('pgrep'));
}

const printed = (text: string) => console.log(text.split('\n').map((l) => `# ${l}`).join('\n'));

after(async () => {
  // Whatever failed above, nothing of the demo outlives the test.
  if (existsSync(dir)) await demo('--destroy');
  for (const line of demoProcesses()) process.kill(Number(line.split(' ')[0]), 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('npm run demo', () => {
  test('brings the cluster up, deploys mail-cluster with cdktf and shows the paper\'s experiment', async () => {
    const r = await demo();
    printed(r.all ?? '');
    assert.equal(r.exitCode, 0, 'the demo ran to its end');
    const out = r.all ?? '';
    assert.match(out, /storm plan: 9 to create, 0 to change, 0 to replace, 0 to destroy on 2 servers/);
    assert.match(out, /Apply complete! Resources: 9 added/);
    assert.match(out, /controller: scale out mx: cpu .* → mx-1 on mail-1/);
    assert.match(out, /controller: power on mail-2 \(mx\): every powered server ≥/);
    assert.match(out, /controller: scale out mx: .* → mx-2 on mail-2/);
    assert.match(out, /controller: scale in mx: .* → removed mx-2/);
    assert.match(out, /controller: power off mail-2 \(mx\): mail-2 empty for/);
    assert.match(out, /back to one member on blade1, blade 2 off/);
    assert.match(out, /replay: all \d+ decisions \(scale-outs, scale-ins, power changes\) made by the replay within one round/);
    const svg = readFileSync(join(dir, 'timeline.svg'), 'utf8');
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    for (const series of ['watts:mail-1', 'watts:mail-2', 'instances:mx']) assert.match(svg, new RegExp(`data-series="${series}" d="M`), `the timeline draws ${series}`);
    assert.ok(existsSync(join(dir, 'status.png')), 'the status page picture');
    assert.match(readFileSync(join(dir, 'plan-summary.md'), 'utf8'), /^<!-- storm plan-summary -->/);
    assert.match(readFileSync(join(dir, 'decisions.log'), 'utf8'), /power on mail-2/);
  });

  test('its cluster killed, nothing of it survives; --destroy brings it back from what it left and removes everything', async () => {
    const cluster = JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as { pid: number };
    assert.ok(demoProcesses().length > 3, 'the cluster runs its BMCs, blades and controller');
    process.kill(cluster.pid, 'SIGKILL');
    const deadline = Date.now() + 30_000;
    while (demoProcesses().length && Date.now() < deadline) await sleep(500);
    assert.deepEqual(demoProcesses(), [], 'the BMCs, blades and controller die with the cluster process');

    const r = await demo('--destroy');
    printed(r.all ?? '');
    assert.equal(r.exitCode, 0);
    assert.match(r.all ?? '', /starting the cluster/);
    assert.match(r.all ?? '', /Destroy complete! Resources: 9 destroyed/);
    assert.match(r.all ?? '', /blade1: no domain, network or pool left/);
    assert.match(r.all ?? '', /blade2: no domain, network or pool left/);
    assert.equal(existsSync(dir), false, 'the demo directory is removed');
    assert.deepEqual(demoProcesses(), [], 'no process of the demo is left');
  });
});
