// npm run bench: figures and ratios, printed, never asserted.
//   1. provider start → handshake line (median of 25 starts), against a bare `node -e ''`.
//   2. terraform plan/apply/refresh/destroy of 200 storm_appliance_server (qemu:///system) vs 200
//      terraform_data in a storm-free directory; provider processes, their memory, and where the
//      time goes (bench/plan.ts).
//   3. instance-layer creation: overlay vs full copy, by appliance size (bench/layers.ts).
//   4. the channel: site build for 1000 appliances, feed fetch + verify + parse (bench/channel.ts).
import { spawn } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE } from '../provider/src/protocol/handshake.ts';
import { createServerCertificate } from '../provider/src/protocol/tls-cert.ts';
import { benchChannel } from './channel.ts';
import { benchLayers } from './layers.ts';
import { benchPlans, median, ms, pluginExecutable } from './plan.ts';

const STARTS = Number(process.env.BENCH_STARTS ?? 25);

async function handshakeOnce(exe: string, clientPem: string): Promise<number> {
  const t0 = performance.now();
  const child = spawn(exe, [], {
    env: { ...process.env, [MAGIC_COOKIE_KEY]: MAGIC_COOKIE_VALUE, PLUGIN_PROTOCOL_VERSIONS: '6', PLUGIN_CLIENT_CERT: clientPem },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return new Promise((resolve, reject) => {
    child.stdout.once('data', () => {
      const t = performance.now() - t0;
      child.kill('SIGKILL');
      resolve(t);
    });
    child.once('error', reject);
  });
}

function bareNodeOnce(): Promise<number> {
  const t0 = performance.now();
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  return new Promise((resolve, reject) => {
    child.once('exit', () => resolve(performance.now() - t0));
    child.once('error', reject);
  });
}

async function benchStart(): Promise<void> {
  const exe = pluginExecutable();
  const client = createServerCertificate().certPem;
  await handshakeOnce(exe, client); // warm the page cache
  await bareNodeOnce();
  const starts: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < STARTS; i++) {
    starts.push(await handshakeOnce(exe, client));
    bare.push(await bareNodeOnce());
  }
  const s = median(starts);
  const b = median(bare);
  console.log('');
  console.log(`baseline: the same Node (${process.execPath}) running \`-e ''\`, spawned the same way, timed to its exit; storm: its`);
  console.log(`  launcher from the repo mirror with go-plugin's environment (magic cookie, protocol 6, a client certificate), timed to the`);
  console.log(`  first byte of the handshake line on stdout. Alternating, ${STARTS} each, after one warm-up of each.`);
  console.log(`provider start → handshake   median ${ms(s)} (min ${ms(Math.min(...starts))}, max ${ms(Math.max(...starts))}, n=${STARTS})   goal ≤ 60 ms → ${s <= 60 ? 'met' : 'not met'}`);
  console.log(`bare node -e ''              median ${ms(b)} (min ${ms(Math.min(...bare))}, max ${ms(Math.max(...bare))})   → provider overhead ${ms(s - b)} (${(s / b).toFixed(1)}×)`);
}

// `npm run bench -- layers` runs one section; no argument runs them all.
const only = new Set(process.argv.slice(2));
const sections: Record<string, () => Promise<void>> = { start: benchStart, plan: benchPlans, layers: benchLayers, channel: benchChannel };
// The machine is shared: a figure taken under another engineer's test run is not comparable.
const load = () => `load average ${loadavg().map((x) => x.toFixed(2)).join(' ')} on ${availableParallelism()} CPUs`;
console.log(`storm bench — Node ${process.versions.node}, ${new Date().toISOString()}, ${load()}`);
for (const [name, run] of Object.entries(sections)) {
  if (only.size && !only.has(name)) continue;
  await run();
  console.log(`[${name} done, ${load()}]`);
}
