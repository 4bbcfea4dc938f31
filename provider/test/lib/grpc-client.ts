// A gRPC client for tests, written on node:http2 so the server is checked against a real,
// independent HTTP/2 peer and not against itself. Speaks bytes; callers bring codecs.
import { connect as h2connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { decodeGrpcMessage } from '../../src/server/grpc/status.ts';
import { MessageReader, messagePrefix } from '../../src/server/grpc/frames.ts';

export interface ClientTls {
  /** PEM the server's certificate must chain to (the one from the handshake line). */
  ca: string;
  key: string;
  cert: string;
}

export interface Reply {
  status: number;
  message: string;
  messages: Buffer[];
  headers: IncomingHttpHeaders;
  trailers: IncomingHttpHeaders;
}

export interface CallOptions {
  /** Send the framed request in pieces of this many bytes, one write (so one or more DATA frames) each. */
  chunkBytes?: number;
}

export function certificatePem(der: Buffer): string {
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
}

export class GrpcTestClient {
  private constructor(readonly session: ClientHttp2Session) {}

  static async connect(socketPath: string, tls?: ClientTls): Promise<GrpcTestClient> {
    const session = tls
      ? h2connect('https://localhost', {
          createConnection: () => tlsConnect({ path: socketPath, servername: 'localhost', ca: tls.ca, key: tls.key, cert: tls.cert, ALPNProtocols: ['h2'] }),
        })
      : h2connect('http://localhost', { createConnection: () => netConnect(socketPath) });
    await new Promise<void>((resolve, reject) => {
      session.once('connect', () => resolve());
      session.once('error', reject);
    });
    session.on('error', () => {});
    return new GrpcTestClient(session);
  }

  /** Opens a call; the reply promise settles when the server ends the stream. */
  open(path: string, headers: Record<string, string> = {}): { stream: ClientHttp2Stream; reply: Promise<Reply> } {
    const stream = this.session.request({
      [constants.HTTP2_HEADER_METHOD]: 'POST',
      [constants.HTTP2_HEADER_PATH]: path,
      [constants.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
      te: 'trailers',
      ...headers,
    });
    const reply = new Promise<Reply>((resolve, reject) => {
      const reader = new MessageReader(1024 * 1024 * 1024);
      const messages: Buffer[] = [];
      let responseHeaders: IncomingHttpHeaders = {};
      let trailers: IncomingHttpHeaders | undefined;
      stream.on('response', (h) => (responseHeaders = h));
      stream.on('trailers', (t) => (trailers = t));
      stream.on('data', (chunk: Buffer) => messages.push(...reader.push(chunk)));
      stream.on('error', reject);
      stream.on('close', () => {
        // Trailers-Only: the status is in the response headers themselves.
        const status = trailers ?? responseHeaders;
        if (status['grpc-status'] === undefined) return reject(new Error(`stream closed without grpc-status (rst code ${stream.rstCode})`));
        resolve({
          status: Number(status['grpc-status']),
          message: decodeGrpcMessage(String(status['grpc-message'] ?? '')),
          messages,
          headers: responseHeaders,
          trailers: trailers ?? {},
        });
      });
    });
    return { stream, reply };
  }

  async call(path: string, request: Uint8Array, options: CallOptions = {}): Promise<Reply> {
    const { stream, reply } = this.open(path);
    const framed = Buffer.concat([messagePrefix(request.length), request]);
    const size = options.chunkBytes ?? framed.length;
    for (let at = 0; at < framed.length; at += size) {
      stream.write(framed.subarray(at, at + size));
      // Yield so each piece leaves as its own DATA frame(s) rather than one coalesced write.
      if (options.chunkBytes) await new Promise((r) => setImmediate(r));
    }
    stream.end();
    return reply;
  }

  close(): Promise<void> {
    if (this.session.closed || this.session.destroyed) return Promise.resolve();
    return new Promise((resolve) => this.session.close(() => resolve()));
  }
}
