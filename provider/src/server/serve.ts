// Serves the provider the way hashicorp/go-plugin expects: gRPC on a unix socket with
// AutoMTLS, the housekeeping services, exit on Shutdown. Everything the handshake line does not
// need (HTTP/2, TLS, the protobuf codec, schemas, resources, drivers) loads after it is written.
import { handshakeLine, protocolMismatch } from '../protocol/handshake.ts';
import { log } from '../protocol/log.ts';
import { createServerCertificate } from '../protocol/tls-cert.ts';
import { serveGoPluginServices } from './go-plugin-services.ts';
import { GrpcServer, type UnaryMethod } from './grpc/server.ts';
import type { ProviderDefinition } from './provider-service.ts';

// Built-ins on the way to the handshake line come through process.getBuiltinModule, not
// `import`: an ESM import of a built-in reads every export, running their lazy getters (for
// node:fs that loads all of node:stream, ~6 ms of a start).
const { mkdtempSync, rmSync, writeSync } = process.getBuiltinModule('node:fs');
const { tmpdir } = process.getBuiltinModule('node:os');
const { join } = process.getBuiltinModule('node:path');

/** Terraform's own limit for plugin messages (large states and schemas), both ways. */
const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;
/** How long calls in flight may take to finish once we are asked to stop. */
const STOP_GRACE_MS = 500;
/** How often we look whether Terraform still runs. */
const PARENT_CHECK_MS = 1000;

export async function servePlugin(loadProvider: () => Promise<ProviderDefinition>): Promise<void> {
  const mismatch = protocolMismatch(process.env);
  if (mismatch) {
    process.stderr.write(mismatch + '\n');
    process.exit(1);
  }
  // Only the handshake line may reach stdout; anything else would break Terraform's parser.
  console.log = (...args: unknown[]) => log.info(args.map(String).join(' '));
  process.on('SIGINT', () => {}); // Terraform sends StopProvider; a Ctrl-C reaches us too and must not kill an apply.

  // AutoMTLS: Terraform pins our certificate from the handshake line and we trust only its.
  // Without PLUGIN_CLIENT_CERT (a go-plugin client with AutoMTLS off) serve plain h2c.
  const clientPem = process.env.PLUGIN_CLIENT_CERT;
  const cert = clientPem ? createServerCertificate() : undefined;
  const server = new GrpcServer({
    tls: cert && clientPem ? { key: cert.keyPem, cert: cert.certPem, ca: clientPem } : undefined,
    maxMessageBytes: MAX_MESSAGE_BYTES,
    onTransportError: (message) => log.warn(message),
  });

  const stop = new AbortController();
  let methods: Promise<Map<string, UnaryMethod>> | undefined;
  const providerMethods = () =>
    (methods ??= Promise.all([import('./provider-methods.ts'), loadProvider()]).then(([m, provider]) => m.providerMethods(provider, log, stop)));
  server.lazyService('tfplugin6.Provider', async (path) => (await providerMethods()).get(path));

  const socketDir = mkdtempSync(join(process.env.PLUGIN_UNIX_SOCKET_DIR || tmpdir(), 'plugin'));
  const socketPath = join(socketDir, 'storm.sock');
  process.on('exit', () => rmSync(socketDir, { recursive: true, force: true }));
  const shutdown = () => void server.close(STOP_GRACE_MS).then(() => process.exit(0));
  serveGoPluginServices(server, { onShutdown: shutdown });
  process.on('SIGTERM', shutdown);
  // Terraform killed outright (SIGKILL, OOM) never says Shutdown: without it, this process would
  // go on creating things nobody records in state, racing the next run. What it leaves half-made
  // carries storm's marks and the next apply adopts it.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid === parent) return;
    log.warn('terraform is gone: stopping', { parent });
    stop.abort();
    shutdown();
  }, PARENT_CHECK_MS).unref();

  await server.listen(socketPath);
  // Straight to fd 1: the line is all storm ever writes there, and setting up process.stdout
  // (a stream over the pipe) would cost a millisecond before it.
  writeSync(1, handshakeLine(socketPath, cert?.certDer));
  // While Terraform reads the line and dials: first the transport (HTTP/2, TLS) for its
  // connection, then the provider for its first call, GetProviderSchema.
  setImmediate(() => {
    server.prepare();
    setImmediate(() => providerMethods().catch((err: unknown) => log.error('loading the provider failed', { error: String(err) })));
  });
}
