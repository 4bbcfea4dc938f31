// npm run bench: figures and ratios, printed, never asserted.
//   1. provider start → handshake line, and → the first call's reply (medians of 25 starts),
//      against a bare `node -e ''`.
//   2. terraform plan/apply/refresh/destroy of 200 storm_appliance_server (qemu:///system) vs 200
//      terraform_data in a storm-free directory; provider processes, their memory, and where the
//      time goes (bench/plan.ts).
//   3. instance-layer creation: overlay vs full copy, by appliance size (bench/layers.ts).
//   4. the channel: one 1 MiB definition validated against a plain XML parse (bench/definition.ts),
//      site build for 1000 appliances, feed fetch + verify + parse (bench/channel.ts).
//   5. the controller: reaction (load crossing → member running) against a hand-run terraform apply
//      on a lab blade, memory and CPU per round with 1000 simulated members against a bare node,
//      sampling CPU against virsh domstats (bench/controller.ts).
//   6. energy: the power policies on simulated blades against the lower bound (bench/energy.ts).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { availableParallelism, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE } from '../provider/src/protocol/handshake.ts';
import { createServerCertificate, type ServerCertificate } from '../provider/src/protocol/tls-cert.ts';
import { certificatePem, GrpcTestClient } from '../provider/test/lib/grpc-client.ts';
import { benchChannel } from './channel.ts';
import { benchController } from './controller.ts';
import { benchEnergy } from './energy.ts';
import { benchLayers } from './layers.ts';
import { benchPlans, median, ms, pluginExecutable } from './plan.ts';

const STARTS = Number(process.env.BENCH_STARTS ?? 25);

interface StartTimes {
  /** Spawn → the handshake line on stdout. */
  handshake: number;
  /** Spawn → the reply to GetProviderSchema, Terraform's first call (connect and TLS included). */
  firstCall: number;
}

/**
 * Starts the provider as Terraform does and times its handshake line; with `firstCall`, also
 * connects over mTLS and times the GetProviderSchema reply. Ends with Shutdown when `graceful`
 * (so node writes its compile cache, as after a real Terraform run), else with SIGKILL.
 */
async function startOnce(exe: string, client: ServerCertificate, options: { firstCall: boolean; graceful: boolean }): Promise<StartTimes> {
  const t0 = performance.now();
  const child = spawn(exe, [], {
    env: { ...process.env, [MAGIC_COOKIE_KEY]: MAGIC_COOKIE_VALUE, PLUGIN_PROTOCOL_VERSIONS: '6', PLUGIN_CLIENT_CERT: client.certPem },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const exited = once(child, 'exit');
  const [line] = (await Promise.race([once(createInterface({ input: child.stdout }), 'line'), once(child, 'error').then(([e]) => Promise.reject(e))])) as [string];
  const handshake = performance.now() - t0;
  let firstCall = NaN;
  if (options.firstCall || options.graceful) {
    const [, , , socketPath, , cert] = line.split('|');
    const grpc = await GrpcTestClient.connect(socketPath!, { ca: certificatePem(Buffer.from(cert!, 'base64')), key: client.keyPem, cert: client.certPem });
    const schema = await grpc.call('/tfplugin6.Provider/GetProviderSchema', new Uint8Array(0));
    firstCall = performance.now() - t0;
    if (schema.status !== 0) throw new Error(`GetProviderSchema failed: ${schema.message}`);
    if (options.graceful) await grpc.call('/plugin.GRPCController/Shutdown', new Uint8Array(0));
    grpc.session.destroy();
  }
  if (!options.graceful) child.kill('SIGKILL');
  await exited;
  return { handshake, firstCall };
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
  const client = createServerCertificate();
  // Warms the page cache, and (ending with Shutdown, like Terraform) node's compile cache,
  // which a build empties: without it every start would compile the bundle afresh.
  await startOnce(exe, client, { firstCall: true, graceful: true });
  await bareNodeOnce();
  const starts: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < STARTS; i++) {
    starts.push((await startOnce(exe, client, { firstCall: false, graceful: false })).handshake);
    bare.push(await bareNodeOnce());
  }
  const firstCalls: number[] = [];
  for (let i = 0; i < STARTS; i++) firstCalls.push((await startOnce(exe, client, { firstCall: true, graceful: false })).firstCall);
  const s = median(starts);
  const b = median(bare);
  console.log('');
  console.log(`baseline: the same Node (${process.execPath}) running \`-e ''\`, spawned the same way, timed to its exit; storm: its`);
  console.log(`  launcher from the repo mirror with go-plugin's environment (magic cookie, protocol 6, a client certificate), timed to the`);
  console.log(`  handshake line on stdout. Alternating, ${STARTS} each, after one warm-up of each (the provider's ends with Shutdown, so`);
  console.log(`  node keeps its compile cache as after a real Terraform run).`);
  console.log(`provider start → handshake   median ${ms(s)} (min ${ms(Math.min(...starts))}, max ${ms(Math.max(...starts))}, n=${STARTS})   goal ≤ 60 ms → ${s <= 60 ? 'met' : 'not met'}`);
  console.log(`bare node -e ''              median ${ms(b)} (min ${ms(Math.min(...bare))}, max ${ms(Math.max(...bare))})   → provider overhead ${ms(s - b)} (${(s / b).toFixed(1)}×)`);
  console.log(`start → GetProviderSchema    median ${ms(median(firstCalls))} (min ${ms(Math.min(...firstCalls))}, max ${ms(Math.max(...firstCalls))}; connect + mTLS + the first call's reply)`);
}

// `npm run bench -- layers` runs one section; no argument runs them all.
const only = new Set(process.argv.slice(2));
const sections: Record<string, () => Promise<void>> = { start: benchStart, plan: benchPlans, layers: benchLayers, channel: benchChannel, controller: benchController, energy: benchEnergy };
// The machine is shared: a figure taken under another engineer's test run is not comparable.
const load = () => `load average ${loadavg().map((x) => x.toFixed(2)).join(' ')} on ${availableParallelism()} CPUs`;
console.log(`storm bench — Node ${process.versions.node}, ${new Date().toISOString()}, ${load()}`);
for (const [name, run] of Object.entries(sections)) {
  if (only.size && !only.has(name)) continue;
  await run();
  console.log(`[${name} done, ${load()}]`);
}
