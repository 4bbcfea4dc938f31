// A small gRPC server on node:http2: exactly what go-plugin's client (grpc-go) uses and no
// more. Unary calls, server streams that stay open and silent, Trailers-Only errors, and a
// graceful close that lets replies already written reach the client. Messages are bytes
// here; encoding them is the caller's business.
import type {
  Http2SecureServer,
  Http2Server,
  IncomingHttpHeaders,
  OutgoingHttpHeaders,
  ServerHttp2Session,
  ServerHttp2Stream,
  Settings,
} from 'node:http2';
import type { Server as NetServer, Socket } from 'node:net';
import { MessageReader, messagePrefix } from './frames.ts';
import { encodeGrpcMessage, GrpcError, Status, type StatusCode } from './status.ts';

/** Answers one request message with one response message, or throws (a GrpcError keeps its code; anything else is INTERNAL). */
export type UnaryMethod = (request: Buffer) => Promise<Uint8Array>;

/** Resolves a method of a service whose code is loaded on first use; undefined means UNIMPLEMENTED. */
export type MethodResolver = (path: string) => Promise<UnaryMethod | undefined>;

export interface GrpcServerOptions {
  /** Mutual TLS: serve `cert`/`key` and accept only clients whose certificate chains to `ca`. Without it, h2c (plain HTTP/2). */
  tls?: { key: string; cert: string; ca: string };
  maxMessageBytes: number;
  /** Reports transport trouble that has no call to answer (a failed TLS handshake, a broken session). */
  onTransportError?: (message: string) => void;
}

const GRPC_CONTENT_TYPE = 'application/grpc';
/** HTTP/2 error code 0 (RFC 9113 §7). */
const NGHTTP2_NO_ERROR = 0;

// HTTP/2's default 64 KiB windows make a 256 MiB message crawl in 64 KiB round trips; larger
// windows let a peer stream big states and schemas without waiting on us.
const STREAM_WINDOW_BYTES = 4 * 1024 * 1024;
const SESSION_WINDOW_BYTES = 64 * 1024 * 1024;
const SETTINGS: Settings = { initialWindowSize: STREAM_WINDOW_BYTES, maxConcurrentStreams: 1000 };
// node:http2 refuses new streams once a session buffers more than maxSessionMemory (MB,
// default 10); with large messages in flight that would refuse Terraform's parallel calls.
const SESSION_MEMORY_MB = 4096;
/** How often close() looks whether every session is gone. */
const CLOSE_POLL_MS = 2;

// node:http2 and node:tls (and the TLS context) cost more than the rest of a start together;
// they are loaded when the transport is first needed, after the handshake line. Not through
// `import`: that would load them with this module.
const http2 = () => process.getBuiltinModule('node:http2');

export class GrpcServer {
  private readonly listener: NetServer;
  private http2Server: Http2Server | Http2SecureServer | undefined;
  private readonly unaryMethods = new Map<string, UnaryMethod>();
  private readonly openStreamPaths = new Set<string>();
  private readonly lazyServices: { prefix: string; resolve: MethodResolver }[] = [];
  private readonly sessions = new Set<ServerHttp2Session>();
  private readonly openStreams = new Set<ServerHttp2Stream>();
  private closing: Promise<void> | undefined;

  constructor(private readonly options: GrpcServerOptions) {
    // A plain listener owns the socket so it can be bound (and announced) before HTTP/2 and
    // TLS are loaded. Connections stay paused, their first bytes unread in the kernel, until
    // handed to the HTTP/2 server, which then reads them from the start.
    // node:net via getBuiltinModule: an ESM import would read all its exports (see serve.ts).
    this.listener = process.getBuiltinModule('node:net').createServer({ pauseOnConnect: true }, (socket) => this.accept(socket));
  }

  /** Builds the HTTP/2 (and TLS) side now rather than on the first connection. */
  prepare(): void {
    this.transport();
  }

  private accept(socket: Socket): void {
    if (this.closing) return void socket.destroy();
    // TLS takes over the paused socket and starts reading it itself; plain HTTP/2 needs it
    // resumed (before the hand-over, so HTTP/2 consumes the handle before any read happens).
    if (!this.options.tls) socket.resume();
    this.transport().emit('connection', socket);
  }

  private transport(): Http2Server | Http2SecureServer {
    if (this.http2Server) return this.http2Server;
    const { createSecureServer, createServer } = http2();
    const common = { settings: SETTINGS, maxSessionMemory: SESSION_MEMORY_MB };
    const tls = this.options.tls;
    const server: Http2Server | Http2SecureServer = tls
      ? createSecureServer({
          ...common,
          key: tls.key,
          cert: tls.cert,
          ca: tls.ca,
          requestCert: true,
          rejectUnauthorized: true,
          minVersion: 'TLSv1.2',
          // grpc-go refuses a TLS server that does not negotiate h2 by ALPN.
          ALPNProtocols: ['h2'],
        })
      : createServer(common);
    server.on('session', (session) => this.track(session));
    server.on('stream', (stream, headers) => this.dispatch(stream, headers));
    server.on('tlsClientError', (err: Error) => this.report(`TLS handshake failed: ${err.message}`));
    server.on('sessionError', (err: Error) => this.report(`HTTP/2 session failed: ${err.message}`));
    this.http2Server = server;
    return server;
  }

  /** Serves `/package.Service/Method` as a unary call. */
  unary(path: string, method: UnaryMethod): this {
    this.unaryMethods.set(path, method);
    return this;
  }

  /** Serves a server (or bidi) stream that sends nothing and stays open until close(): go-plugin's stdio and broker streams. */
  openStream(path: string): this {
    this.openStreamPaths.add(path);
    return this;
  }

  /** Serves every method under `/package.Service/` through `resolve`, called per call (cache in it). */
  lazyService(service: string, resolve: MethodResolver): this {
    this.lazyServices.push({ prefix: `/${service}/`, resolve });
    return this;
  }

  listen(socketPath: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.listener.once('error', reject);
      this.listener.listen(socketPath, () => {
        this.listener.off('error', reject);
        // Later trouble (a failed accept) must not end a provider that has calls in flight.
        this.listener.on('error', (err: Error) => this.report(`listener error: ${err.message}`));
        resolve();
      });
    });
  }

  /**
   * Stops accepting, ends the open streams with OK, lets calls in flight finish and their
   * replies drain (GOAWAY, then close), and gives up on stragglers after `graceMs`.
   */
  close(graceMs: number): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.listener.close();
      for (const stream of this.openStreams) finish(stream, Status.OK);
      for (const session of this.sessions) if (!session.closed) session.close();
      // Polled rather than awaited through 'close' events: when go-plugin drops the connection
      // while our graceful close is under way, node:http2 (22.x) sometimes destroys the session
      // without ever emitting 'close'. Seen with Terraform 1.11 in about one provider stop in
      // three, each then held for the whole grace period.
      const deadline = Date.now() + graceMs;
      const poll = setInterval(() => {
        const drained = [...this.sessions].every((session) => session.destroyed);
        if (!drained && Date.now() < deadline) return;
        clearInterval(poll);
        for (const session of this.sessions) session.destroy();
        resolve();
      }, CLOSE_POLL_MS);
    });
    return this.closing;
  }

  private track(session: ServerHttp2Session): void {
    this.sessions.add(session);
    session.on('close', () => this.sessions.delete(session));
    // Without a listener an 'error' would throw; the peer vanishing is not our failure.
    session.on('error', (err: Error) => this.report(`HTTP/2 session error: ${err.message}`));
    session.once('connect', () => session.setLocalWindowSize(SESSION_WINDOW_BYTES));
    if (this.closing) session.close();
  }

  private report(message: string): void {
    this.options.onTransportError?.(message);
  }

  private dispatch(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    // A client reset (cancelled call) surfaces as a stream error; there is no one to answer.
    stream.on('error', () => {});
    const path = String(headers[':path'] ?? '');
    const contentType = String(headers['content-type'] ?? '');
    if (headers[':method'] !== 'POST' || !isGrpcContentType(contentType)) {
      // PROTOCOL-HTTP2: a request that is not gRPC gets HTTP 415, not a gRPC status.
      if (!stream.destroyed) stream.respond({ [':status']: 415 }, { endStream: true });
      return;
    }
    if (this.openStreamPaths.has(path)) return this.holdOpen(stream);
    const known = this.unaryMethods.get(path);
    if (known) return this.serveUnary(stream, Promise.resolve(known), path);
    const lazy = this.lazyServices.find((s) => path.startsWith(s.prefix));
    if (lazy) return this.serveUnary(stream, lazy.resolve(path), path);
    drainAndFinish(stream, Status.UNIMPLEMENTED, `unknown method ${path}`);
  }

  private holdOpen(stream: ServerHttp2Stream): void {
    this.openStreams.add(stream);
    stream.on('close', () => this.openStreams.delete(stream));
    // Whatever the client sends (broker ConnInfo) is read and dropped, so flow control never stalls it.
    stream.on('data', () => {});
    if (this.closing) return finish(stream, Status.OK);
    stream.respond({ [':status']: 200, ['content-type']: GRPC_CONTENT_TYPE }, { waitForTrailers: true });
  }

  private serveUnary(stream: ServerHttp2Stream, method: Promise<UnaryMethod | undefined>, path: string): void {
    // The method is resolved (its code loading) while the request is still arriving, and is
    // awaited only once it has: marked handled now, a failed load cannot become an unhandled
    // rejection, which would end the process. The call still answers it below.
    method.catch(() => {});
    const reader = new MessageReader(this.options.maxMessageBytes);
    const messages: Buffer[] = [];
    let failed = false;
    stream.on('data', (chunk: Buffer) => {
      if (failed) return;
      try {
        messages.push(...reader.push(chunk));
      } catch (err) {
        failed = true;
        const e = err as GrpcError;
        finish(stream, e.code, e.message);
      }
    });
    stream.on('end', () => {
      if (failed) return;
      if (messages.length !== 1 || reader.partial) {
        return finish(stream, Status.INTERNAL, `a unary call carries exactly one request message; ${path} got ${messages.length}${reader.partial ? ' and a truncated one' : ''}`);
      }
      void method
        .then((m) => {
          if (!m) throw new GrpcError(Status.UNIMPLEMENTED, `unknown method ${path}`);
          return m(messages[0]!);
        })
        .then(
          (response) => reply(stream, response),
          (err: unknown) => {
            if (err instanceof GrpcError) return finish(stream, err.code, err.message);
            // The message only: a stack trace means nothing to a Terraform user.
            finish(stream, Status.INTERNAL, err instanceof Error ? err.message : String(err));
          },
        )
        // Answering can fail only with the stream itself (reset, session gone): nobody to tell.
        .catch((err: unknown) => this.report(`could not answer ${path}: ${err instanceof Error ? err.message : String(err)}`));
    });
  }
}

function isGrpcContentType(value: string): boolean {
  // "application/grpc", optionally followed by "+proto" or ";params".
  return value === GRPC_CONTENT_TYPE || value.startsWith(GRPC_CONTENT_TYPE + '+') || value.startsWith(GRPC_CONTENT_TYPE + ';');
}

/** Headers, one message, then the OK trailers. */
function reply(stream: ServerHttp2Stream, message: Uint8Array): void {
  if (stream.destroyed || stream.closed) return; // cancelled by the client meanwhile
  stream.respond({ [':status']: 200, ['content-type']: GRPC_CONTENT_TYPE }, { waitForTrailers: true });
  stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': String(Status.OK) }));
  stream.write(messagePrefix(message.length));
  stream.end(message);
}

/**
 * Ends a call with a status: as trailers when headers went out already, else as a
 * Trailers-Only response (one HEADERS frame with END_STREAM), which is how gRPC sends errors.
 */
function finish(stream: ServerHttp2Stream, code: StatusCode, message?: string): void {
  if (stream.destroyed || stream.closed) return;
  const status: OutgoingHttpHeaders = { 'grpc-status': String(code), ...(message ? { 'grpc-message': encodeGrpcMessage(message) } : {}) };
  if (stream.headersSent) {
    // Only open streams get here, and they responded with waitForTrailers. A client that never
    // half-closes its side (go-plugin's broker stream) would keep the stream, and so a graceful
    // session close, open forever: after the status, ask it to stop sending (RFC 9113 §8.1:
    // RST_STREAM NO_ERROR after a complete response).
    stream.once('wantTrailers', () => {
      stream.sendTrailers(status);
      setImmediate(() => stream.closed || stream.close(NGHTTP2_NO_ERROR));
    });
    stream.end();
    return;
  }
  stream.respond({ [':status']: 200, ['content-type']: GRPC_CONTENT_TYPE, ...status }, { endStream: true });
}

/** Answers a call we will not serve, after its request is read, so the peer's send side ends cleanly. */
function drainAndFinish(stream: ServerHttp2Stream, code: StatusCode, message: string): void {
  stream.on('data', () => {});
  finish(stream, code, message);
}
