// The tfplugin6.Provider service as gRPC methods: protobuf bytes in, handler, bytes out.
// serve.ts loads this module only after the handshake line, so a start does not pay for
// protobuf reflection or the schema code before Terraform can connect.
import type { Logger } from '../protocol/log.ts';
import type { UnaryMethod } from './grpc/server.ts';
import { unaryMethodCodecs } from './proto.ts';
import { createProviderHandlers, type ProviderDefinition } from './provider-service.ts';

export const PROVIDER_SERVICE = 'tfplugin6.Provider';

/** Methods keyed by HTTP/2 path; a protocol method storm has no handler for is absent (UNIMPLEMENTED). */
export function providerMethods(provider: ProviderDefinition, log: Logger, stop: AbortController): Map<string, UnaryMethod> {
  const handlers = createProviderHandlers(provider, log, stop);
  const methods = new Map<string, UnaryMethod>();
  for (const [name, codecs] of unaryMethodCodecs(PROVIDER_SERVICE)) {
    const handler = handlers[name];
    if (!handler) continue;
    methods.set(codecs.path, async (request) => codecs.response.encode(await handler(codecs.request.decode(request))));
  }
  return methods;
}
