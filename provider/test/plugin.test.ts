// Starts the provider the way Terraform does (magic cookie, client certificate) and speaks
// mTLS gRPC to it over the unix socket from its handshake line.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { encodeMsgpack } from '../src/protocol/cty/index.ts';
import { MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE, handshakeLine } from '../src/protocol/handshake.ts';
import { unaryMethodCodecs, type Message } from '../src/server/proto.ts';
import { createServerCertificate } from '../src/protocol/tls-cert.ts';
import { blockCtyType } from '../src/schema/cty-type.ts';
import { applianceServer } from '../src/resources/appliance-server.ts';
import { certificatePem, GrpcTestClient } from './lib/grpc-client.ts';

const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const providerCodecs = unaryMethodCodecs('tfplugin6.Provider');

let child: ChildProcess;
let socketPath: string;
let client: GrpcTestClient;

async function call(method: string, req: Message = {}): Promise<Message> {
  const codecs = providerCodecs.get(method)!;
  const reply = await client.call(codecs.path, codecs.request.encode(req));
  assert.equal(reply.status, 0, `${method}: grpc-status ${reply.status} ${reply.message}`);
  return codecs.response.decode(reply.messages[0]!);
}

before(async () => {
  const clientCert = createServerCertificate();
  child = spawn(process.execPath, ['--import', 'tsx', main], {
    env: { ...process.env, [MAGIC_COOKIE_KEY]: MAGIC_COOKIE_VALUE, PLUGIN_PROTOCOL_VERSIONS: '5,6', PLUGIN_CLIENT_CERT: clientCert.certPem },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  const [core, version, network, address, protocol, cert] = line.split('|');
  assert.deepEqual([core, version, network, protocol], ['1', '6', 'unix', 'grpc']);
  assert.ok(!cert!.endsWith('='), 'certificate is base64 without padding');
  socketPath = address!;
  client = await GrpcTestClient.connect(socketPath, { ca: certificatePem(Buffer.from(cert!, 'base64')), key: clientCert.keyPem, cert: clientCert.certPem });
});

after(() => child.kill('SIGKILL'));

test('handshake line format', () => {
  assert.equal(handshakeLine('/tmp/x.sock', Uint8Array.of(1, 2, 3, 4)), '1|6|unix|/tmp/x.sock|grpc|AQIDBA\n');
});

test('GetProviderSchema over mTLS lists storm_appliance_server with JSON-typed attributes', async () => {
  const res = await call('GetProviderSchema');
  const schemas = res.resource_schemas as Record<string, { block: { attributes: { name: string; type: Buffer; sensitive: boolean }[]; block_types: { type_name: string }[] } }>;
  const server = schemas.storm_appliance_server!;
  const name = server.block.attributes.find((a) => a.name === 'name')!;
  assert.equal(Buffer.from(name.type).toString(), '"string"');
  assert.deepEqual(server.block.block_types.map((b) => b.type_name), ['ipmi']);
  assert.equal((res.server_capabilities as { get_provider_schema_optional: boolean }).get_provider_schema_optional, true);
});

test('ValidateResourceConfig returns a diagnostic with the attribute path', async () => {
  const type = blockCtyType(applianceServer.schema.block);
  const config = Object.fromEntries(Object.keys((type as { attributes: object }).attributes).map((k) => [k, null]));
  const msgpack = encodeMsgpack({ ...config, name: 'a', libvirt_uri: 'qemu:/system', ipmi: { address: 'h', port: 0, username: 'u', password: 'p' } }, type);
  const res = await call('ValidateResourceConfig', { type_name: 'storm_appliance_server', config: { msgpack } });
  const diags = res.diagnostics as { severity: number; summary: string; attribute: { steps: { attribute_name: string }[] } }[];
  assert.deepEqual(diags.map((d) => d.summary).sort(), ['Invalid libvirt_uri', 'Invalid port']);
  assert.deepEqual(diags.find((d) => d.summary === 'Invalid port')!.attribute.steps.map((s) => s.attribute_name), ['ipmi', 'port']);
  assert.ok(diags.every((d) => d.severity === 1));
});

test('an unknown resource type is a diagnostic, not an rpc error', async () => {
  const res = await call('ValidateResourceConfig', { type_name: 'storm_nothing', config: { msgpack: Uint8Array.of(0xc0) } });
  assert.match((res.diagnostics as { detail: string }[])[0]!.detail, /no resource type "storm_nothing"/);
});

test('go-plugin health check answers SERVING', async () => {
  const reply = await client.call('/grpc.health.v1.Health/Check', Buffer.from('0a06706c7567696e', 'hex')); // {service: "plugin"}
  assert.equal(reply.status, 0);
  assert.deepEqual([...reply.messages[0]!], [0x08, 0x01]);
});

test('a method storm does not implement is UNIMPLEMENTED', async () => {
  const reply = await client.call('/tfplugin6.Provider/NoSuchMethod', new Uint8Array(0));
  assert.equal(reply.status, 12);
  assert.match(reply.message, /NoSuchMethod/);
});

test('Ctrl-C (SIGINT) does not stop the provider; Terraform sends StopProvider instead', async () => {
  child.kill('SIGINT');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(child.exitCode, null);
  const res = await call('StopProvider');
  assert.equal(res.Error, '');
});

test('SIGTERM stops a provider gracefully and removes its socket directory', async () => {
  const other = spawn(process.execPath, ['--import', 'tsx', main], {
    env: { ...process.env, [MAGIC_COOKIE_KEY]: MAGIC_COOKIE_VALUE, PLUGIN_PROTOCOL_VERSIONS: '6' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(createInterface({ input: other.stdout! }), 'line')) as [string];
  const address = line.split('|')[3]!;
  assert.equal(line.split('|')[5], '', 'no PLUGIN_CLIENT_CERT: plain h2c, no certificate');
  const h2c = await GrpcTestClient.connect(address);
  assert.equal((await h2c.call('/grpc.health.v1.Health/Check', new Uint8Array(0))).status, 0);
  const exited = once(other, 'exit');
  other.kill('SIGTERM');
  assert.deepEqual(await exited, [0, null]);
  assert.equal(existsSync(dirname(address)), false);
  await h2c.close();
});

test('Shutdown replies, then exits the process and removes the socket', async () => {
  const exited = once(child, 'exit');
  const reply = await client.call('/plugin.GRPCController/Shutdown', new Uint8Array(0));
  assert.equal(reply.status, 0);
  const [code] = (await exited) as [number];
  assert.equal(code, 0);
  assert.equal(existsSync(socketPath), false);
});
