// The housekeeping services hashicorp/go-plugin's client calls next to the provider service.
// Their messages are so small that they are written here as literal protobuf bytes, which
// keeps protobuf reflection out of the handshake path.
import type { GrpcServer } from './grpc/server.ts';

/** HealthCheckResponse{status: SERVING}: field 1, varint, value 1. */
const SERVING = Uint8Array.of(0x08, 0x01);
/** plugin.Empty. */
const EMPTY = new Uint8Array(0);

export interface GoPluginHooks {
  /** Called once the Shutdown reply is written; stopping must let it drain before the process exits. */
  onShutdown(): void;
}

export function serveGoPluginServices(server: GrpcServer, hooks: GoPluginHooks): void {
  // go-plugin pings Check (service "plugin") to see that the provider is alive.
  server.unary('/grpc.health.v1.Health/Check', async () => SERVING);
  // Kept open and silent: storm logs to stderr, which go-plugin reads directly, and never
  // brokers extra connections.
  server.openStream('/plugin.GRPCStdio/StreamStdio');
  server.openStream('/plugin.GRPCBroker/StartStream');
  server.unary('/plugin.GRPCController/Shutdown', async () => {
    // Exiting promptly matters (else go-plugin waits 2 s and kills us), but only after the
    // reply is on its way: setImmediate runs after the server has written it.
    setImmediate(hooks.onShutdown);
    return EMPTY;
  });
}
