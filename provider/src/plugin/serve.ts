// Serves the provider the way hashicorp/go-plugin expects: gRPC on a unix socket with
// AutoMTLS, the housekeeping services, exit on Shutdown.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { handshakeLine, protocolMismatch } from './handshake.ts';
import { log } from './log.ts';
import { loadServices } from './proto.ts';
import { createProviderHandlers, type Handler, type ProviderDefinition } from './provider-service.ts';
import { createServerCertificate } from './tls-cert.ts';

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
  const exit = (code: number) => {
    server.forceShutdown();
    rmSync(socketDir, { recursive: true, force: true });
    process.exit(code);
  };

  const handlers = createProviderHandlers(provider, log, stop);
  server.addService(services.provider, Object.fromEntries(Object.entries(handlers).map(([name, h]) => [name, unary(h)])));
  server.addService(services.health, {
    Check: (_call: unknown, cb: grpc.sendUnaryData<{ status: number }>) => cb(null, { status: 1 }),
  });
  // Kept open and silent: storm logs to stderr, which go-plugin reads directly.
  server.addService(services.stdio, { StreamStdio: () => {} });
  server.addService(services.broker, { StartStream: () => {} });
  server.addService(services.controller, {
    Shutdown: (_call: unknown, cb: grpc.sendUnaryData<Record<string, never>>) => {
      cb(null, {});
      // Reply first; otherwise go-plugin waits 2 s and kills us.
      setImmediate(() => exit(0));
    },
  });
  process.on('SIGTERM', () => exit(0));

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
