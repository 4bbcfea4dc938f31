// Serves the provider the way hashicorp/go-plugin expects: gRPC on a unix socket with
// AutoMTLS, the housekeeping services, exit on Shutdown.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { handshakeLine, protocolMismatch } from '../protocol/handshake.ts';
import { log } from '../protocol/log.ts';
import { loadServices } from './proto.ts';
import { createProviderHandlers, type Handler, type ProviderDefinition } from './provider-service.ts';
import { createServerCertificate } from '../protocol/tls-cert.ts';

const MAX_MESSAGE = 256 * 1024 * 1024;

function unary(handler: Handler): grpc.handleUnaryCall<Record<string, unknown>, Record<string, unknown>> {
  return (call, callback) => {
    handler(call.request).then(
      (response) => callback(null, response),
      (err: unknown) => callback({ code: grpc.status.INTERNAL, details: String(err) }),
    );
  };
}

export async function servePlugin(provider: ProviderDefinition): Promise<void> {
  const mismatch = protocolMismatch(process.env);
  if (mismatch) {
    process.stderr.write(mismatch + '\n');
    process.exit(1);
  }
  // Only the handshake line may reach stdout; anything else would break Terraform's parser.
  console.log = (...args: unknown[]) => log.info(args.map(String).join(' '));
  process.on('SIGINT', () => {}); // Terraform sends StopProvider; a Ctrl-C reaches us too and must not kill an apply.

  const services = loadServices();
  const stop = new AbortController();
  const server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_MESSAGE, 'grpc.max_send_message_length': MAX_MESSAGE });
  const socketDir = mkdtempSync(join(process.env.PLUGIN_UNIX_SOCKET_DIR || tmpdir(), 'plugin'));
  const socketPath = join(socketDir, 'storm.sock');
  const streams = new Set<grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>>();
  const exit = (code: number) => {
    rmSync(socketDir, { recursive: true, force: true });
    process.exit(code);
  };
  // Graceful: the Shutdown reply must reach go-plugin before the connection closes, else it
  // logs an error and waits; the long-lived streams would hold tryShutdown open, so end them.
  const shutdown = () => {
    for (const s of streams) s.end();
    const force = setTimeout(() => {
      server.forceShutdown();
      exit(0);
    }, 500);
    server.tryShutdown(() => {
      clearTimeout(force);
      exit(0);
    });
  };

  const handlers = createProviderHandlers(provider, log, stop);
  server.addService(services.provider, Object.fromEntries(Object.entries(handlers).map(([name, h]) => [name, unary(h)])));
  server.addService(services.health, {
    Check: (_call: unknown, cb: grpc.sendUnaryData<{ status: number }>) => cb(null, { status: 1 }),
  });
  // Kept open and silent: storm logs to stderr, which go-plugin reads directly.
  const keepOpen = (call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>) => {
    streams.add(call);
    call.on('cancelled', () => streams.delete(call));
  };
  server.addService(services.stdio, { StreamStdio: keepOpen });
  server.addService(services.broker, { StartStream: keepOpen });
  server.addService(services.controller, {
    Shutdown: (_call: unknown, cb: grpc.sendUnaryData<Record<string, never>>) => {
      // Exiting promptly matters: otherwise go-plugin waits 2 s and kills us.
      cb(null, {});
      shutdown();
    },
  });
  process.on('SIGTERM', shutdown);

  const clientPem = process.env.PLUGIN_CLIENT_CERT;
  let certDer: Uint8Array | undefined;
  let credentials: grpc.ServerCredentials;
  if (clientPem) {
    const cert = createServerCertificate();
    certDer = cert.certDer;
    credentials = grpc.ServerCredentials.createSsl(Buffer.from(clientPem), [{ private_key: Buffer.from(cert.keyPem), cert_chain: Buffer.from(cert.certPem) }], true);
  } else {
    credentials = grpc.ServerCredentials.createInsecure();
  }
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${socketPath}`, credentials, (err) => (err ? reject(err) : resolve())),
  );
  process.stdout.write(handshakeLine(socketPath, certDer));
}
