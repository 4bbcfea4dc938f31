// npm run bench: figures and ratios, printed, never asserted.
//   1. provider start → handshake line, and → the first call's reply (medians of 25 starts),
//      against a bare `node -e ''`.
//   2. terraform plan/apply of 200 storm_appliance_server (qemu:///system) vs 200 terraform_data.
//   3. instance-layer creation: overlay vs full copy, by appliance size (bench/layers.ts).
//   4. the channel: site build for 1000 appliances, feed fetch + verify + parse (bench/channel.ts).
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE } from '../provider/src/protocol/handshake.ts';
import { createServerCertificate, type ServerCertificate } from '../provider/src/protocol/tls-cert.ts';
import { certificatePem, GrpcTestClient } from '../provider/test/lib/grpc-client.ts';
import { REPO_DIR, TerraformDir } from '../test/lib/terraform.ts';
import { benchChannel } from './channel.ts';
import { benchLayers } from './layers.ts';

const COUNT = Number(process.env.BENCH_RESOURCES ?? 200);
const STARTS = Number(process.env.BENCH_STARTS ?? 25);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

const ms = (x: number) => `${x.toFixed(0)} ms`;

function pluginExecutable(): string {
  const base = join(REPO_DIR, 'build', 'terraform-mirror', 'registry.terraform.io', 'storm', 'storm');
  const version = readdirSync(base)[0]!;
  const dir = join(base, version, 'linux_amd64');
  return join(dir, readdirSync(dir)[0]!);
}

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

async function benchStart(): Promise<void> {
  const exe = pluginExecutable();
  const client = createServerCertificate();
  // Warms the page cache, and (ending with Shutdown, like Terraform) node's compile cache,
  // which a build empties: without it every start would compile the bundle afresh.
  await startOnce(exe, client, { firstCall: true, graceful: true });
  const starts: number[] = [];
  const firstCalls: number[] = [];
  for (let i = 0; i < STARTS; i++) starts.push((await startOnce(exe, client, { firstCall: false, graceful: false })).handshake);
  for (let i = 0; i < STARTS; i++) firstCalls.push((await startOnce(exe, client, { firstCall: true, graceful: false })).firstCall);
  const bare: number[] = [];
  for (let i = 0; i < STARTS; i++) {
    const t0 = performance.now();
    spawnSync(process.execPath, ['-e', '']);
    bare.push(performance.now() - t0);
  }
  console.log(`provider start → handshake   median ${ms(median(starts))} (min ${ms(Math.min(...starts))}, max ${ms(Math.max(...starts))}, n=${STARTS})`);
  console.log(`bare node -e ''              median ${ms(median(bare))}   → provider overhead ${ms(median(starts) - median(bare))}   goal ≤ 60 ms`);
  console.log(`start → GetProviderSchema    median ${ms(median(firstCalls))} (min ${ms(Math.min(...firstCalls))}, max ${ms(Math.max(...firstCalls))}; connect + mTLS + first call)`);
}

function stormHcl(n: number): string {
  return `
resource "storm_appliance_server" "s" {
  count       = ${n}
  name        = "bench-\${count.index}"
  libvirt_uri = "qemu:///system"
  pool_path   = "/var/tmp/storm-bench-pool"
}
`;
}

function dataHcl(n: number): string {
  return `
resource "terraform_data" "s" {
  count = ${n}
  input = { name = "bench-\${count.index}", libvirt_uri = "qemu:///system" }
}
`;
}

async function timed(label: string, run: () => Promise<{ exitCode: number; output: string }>): Promise<number> {
  const t0 = performance.now();
  const r = await run();
  const t = performance.now() - t0;
  if (r.exitCode !== 0 && r.exitCode !== 2) throw new Error(`${label} failed:\n${r.output.slice(-2000)}`);
  return t;
}

async function benchPlans(): Promise<void> {
  const storm = new TerraformDir();
  const data = new TerraformDir();
  try {
    storm.write(stormHcl(COUNT));
    data.write(dataHcl(COUNT));
    await storm.init();
    await data.init();
    const rows: [string, number, number][] = [];
    const pair = async (label: string, args: string[]) => {
      const s = await timed(`storm ${label}`, () => storm.run(args));
      const d = await timed(`terraform_data ${label}`, () => data.run(args));
      rows.push([label, s, d]);
    };
    await pair(`plan, ${COUNT} to create`, ['plan', '-no-color', '-detailed-exitcode']);
    await pair(`apply, ${COUNT} created`, ['apply', '-auto-approve', '-no-color']);
    await pair(`plan, ${COUNT} refreshed`, ['plan', '-no-color', '-detailed-exitcode']);
    await pair(`destroy, ${COUNT}`, ['destroy', '-auto-approve', '-no-color']);
    console.log('');
    console.log(`terraform ${COUNT} resources         storm        terraform_data   ratio`);
    for (const [label, s, d] of rows) console.log(`  ${label.padEnd(26)} ${ms(s).padStart(9)}   ${ms(d).padStart(12)}   ${(s / d).toFixed(2)}×`);
    console.log('  goal: plan ratio ≤ 2×');
  } finally {
    await storm.run(['destroy', '-auto-approve', '-no-color']);
    storm.remove();
    data.remove();
  }
}

// `npm run bench -- layers` runs one section; no argument runs them all.
const only = new Set(process.argv.slice(2));
const sections: Record<string, () => Promise<void>> = { start: benchStart, plan: benchPlans, layers: benchLayers, channel: benchChannel };
console.log(`storm bench — Node ${process.versions.node}, ${new Date().toISOString()}`);
for (const [name, run] of Object.entries(sections)) if (!only.size || only.has(name)) await run();
