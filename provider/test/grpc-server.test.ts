// The gRPC server against node:http2 as the client: the wire facts go-plugin's grpc-go relies
// on (framing across DATA frames, Trailers-Only errors, large messages, parallel calls, the
// housekeeping services, a Shutdown reply that arrives before the connection closes).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createServerCertificate } from '../src/protocol/tls-cert.ts';
import { serveGoPluginServices } from '../src/server/go-plugin-services.ts';
import { MessageReader, messagePrefix } from '../src/server/grpc/frames.ts';
import { GrpcServer } from '../src/server/grpc/server.ts';
import { decodeGrpcMessage, encodeGrpcMessage, GrpcError, Status } from '../src/server/grpc/status.ts';
import { GrpcTestClient, type ClientTls } from './lib/grpc-client.ts';

const framed = (body: Buffer) => Buffer.concat([messagePrefix(body.length), body]);

describe('MessageReader', () => {
  it('reassembles a message cut at every possible place, and several messages in one chunk', () => {
    const a = Buffer.from('hello, terraform');
    const b = Buffer.alloc(0);
    const c = Buffer.from([1, 2, 3]);
    const wire = Buffer.concat([framed(a), framed(b), framed(c)]);
    for (let cut = 0; cut <= wire.length; cut++) {
      for (let cut2 = cut; cut2 <= wire.length; cut2 += 3) {
        const reader = new MessageReader(1024);
        const got = [wire.subarray(0, cut), wire.subarray(cut, cut2), wire.subarray(cut2)].flatMap((chunk) => reader.push(chunk));
        assert.deepEqual(got, [a, b, c], `cut at ${cut}/${cut2}`);
        assert.equal(reader.partial, false);
      }
    }
  });

  it('knows when the stream ended inside a message', () => {
    const reader = new MessageReader(1024);
    assert.deepEqual(reader.push(framed(Buffer.from('abc')).subarray(0, 6)), []);
    assert.equal(reader.partial, true);
  });

  it('refuses a message over the limit before buffering it, and compressed messages', () => {
    assert.throws(() => new MessageReader(10).push(messagePrefix(11)), (e: GrpcError) => e.code === Status.RESOURCE_EXHAUSTED && /11 bytes/.test(e.message));
    assert.throws(() => new MessageReader(10).push(Buffer.from([1, 0, 0, 0, 1, 0])), (e: GrpcError) => e.code === Status.INTERNAL && /compressed/.test(e.message));
  });
});

describe('grpc-message encoding', () => {
  it('percent-encodes what an HTTP/2 header cannot carry, and decodes it back', () => {
    assert.equal(encodeGrpcMessage('50% done\nnext'), '50%25 done%0Anext');
    assert.equal(encodeGrpcMessage('é'), '%C3%A9');
    for (const text of ['plain', 'über 100%', 'line\r\nbreak', '→ ✓']) assert.equal(decodeGrpcMessage(encodeGrpcMessage(text)), text);
    assert.equal(decodeGrpcMessage('100%'), '100%');
  });
});

describe('GrpcServer over mTLS on a unix socket', () => {
  const dir = mkdtempSync(join(tmpdir(), 'storm-grpc-'));
  const socketPath = join(dir, 'test.sock');
  const serverCert = createServerCertificate();
  const clientCert = createServerCertificate();
  const tls: ClientTls = { ca: serverCert.certPem, key: clientCert.keyPem, cert: clientCert.certPem };
  let server: GrpcServer;
  let client: GrpcTestClient;
  let shutdowns = 0;
  let inFlight = 0;
  let maxInFlight = 0;

  before(async () => {
    server = new GrpcServer({ tls: { key: serverCert.keyPem, cert: serverCert.certPem, ca: clientCert.certPem }, maxMessageBytes: 64 * 1024 * 1024 });
    server.unary('/test.Echo/Echo', async (request) => request);
    server.unary('/test.Echo/Slow', async (request) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, 100));
      inFlight--;
      return request;
    });
    server.unary('/test.Echo/Throw', async () => {
      throw new Error('libvirt said: 100% broken\nsecond line');
    });
    server.unary('/test.Echo/Refuse', async () => {
      throw new GrpcError(Status.UNAVAILABLE, 'not now');
    });
    server.lazyService('test.Lazy', async (path) => (path === '/test.Lazy/Known' ? async () => Buffer.from('lazy') : undefined));
    server.lazyService('test.Broken', async () => {
      throw new Error('the provider failed to load');
    });
    serveGoPluginServices(server, { onShutdown: () => shutdowns++ });
    await server.listen(socketPath);
    client = await GrpcTestClient.connect(socketPath, tls);
  });

  after(async () => {
    await client.close().catch(() => {});
    await server.close(100);
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers a unary call with headers, one message and grpc-status 0 in trailers', async () => {
    const reply = await client.call('/test.Echo/Echo', Buffer.from('ping'));
    assert.equal(reply.headers['content-type'], 'application/grpc');
    assert.equal(reply.trailers['grpc-status'], '0');
    assert.deepEqual(reply.messages, [Buffer.from('ping')]);
  });

  it('reads a request whose prefix and body are split over many DATA frames', async () => {
    const body = Buffer.from('split across frames, prefix included');
    const reply = await client.call('/test.Echo/Echo', body, { chunkBytes: 2 });
    assert.equal(reply.status, 0);
    assert.deepEqual(reply.messages, [body]);
  });

  it('echoes a 20 MiB message intact, both ways', { timeout: 30_000 }, async () => {
    const body = Buffer.alloc(20 * 1024 * 1024);
    for (let i = 0; i < body.length; i += 4096) body.writeUInt32BE(i, i);
    const reply = await client.call('/test.Echo/Echo', body, { chunkBytes: 1024 * 1024 });
    assert.equal(reply.status, 0);
    assert.equal(reply.messages.length, 1);
    assert.ok(reply.messages[0]!.equals(body));
  });

  it('refuses a message over the limit with RESOURCE_EXHAUSTED', async () => {
    const { stream, reply } = client.open('/test.Echo/Echo');
    stream.end(messagePrefix(64 * 1024 * 1024 + 1));
    const r = await reply;
    assert.equal(r.status, Status.RESOURCE_EXHAUSTED);
  });

  it('serves ten calls at once, as Terraform does', async () => {
    const started = performance.now();
    const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => client.call('/test.Echo/Slow', Buffer.from(`call ${i}`))));
    assert.deepEqual(
      replies.map((r) => r.messages[0]!.toString()),
      Array.from({ length: 10 }, (_, i) => `call ${i}`),
    );
    assert.equal(maxInFlight, 10);
    assert.ok(performance.now() - started < 900, 'the calls overlapped');
  });

  it('answers an unknown method with UNIMPLEMENTED (Trailers-Only), in a known service or not', async () => {
    for (const path of ['/test.Echo/Nope', '/nothing.Here/At', '/test.Lazy/Unknown']) {
      const reply = await client.call(path, Buffer.alloc(0));
      assert.equal(reply.status, Status.UNIMPLEMENTED, path);
      assert.match(reply.message, /unknown method/);
      assert.deepEqual(reply.messages, []);
      assert.deepEqual(reply.trailers, {}, 'status travels in the response headers');
    }
    assert.deepEqual((await client.call('/test.Lazy/Known', Buffer.alloc(0))).messages, [Buffer.from('lazy')]);
  });

  it('turns a handler that throws into INTERNAL with its message (no stack), and keeps a GrpcError code', async () => {
    const thrown = await client.call('/test.Echo/Throw', Buffer.alloc(0));
    assert.equal(thrown.status, Status.INTERNAL);
    assert.equal(thrown.message, 'libvirt said: 100% broken\nsecond line');
    const refused = await client.call('/test.Echo/Refuse', Buffer.alloc(0));
    assert.deepEqual([refused.status, refused.message], [Status.UNAVAILABLE, 'not now']);
  });

  it('answers INTERNAL, without crashing, when a lazily loaded service fails to load before the request has arrived', async () => {
    const { stream, reply } = client.open('/test.Broken/Anything');
    stream.write(messagePrefix(3));
    await new Promise((r) => setTimeout(r, 50)); // the load has failed by now; the request is not complete
    stream.end(Buffer.from('abc'));
    const r = await reply;
    assert.deepEqual([r.status, r.message], [Status.INTERNAL, 'the provider failed to load']);
  });

  it('refuses a unary call without exactly one request message', async () => {
    const { stream, reply } = client.open('/test.Echo/Echo');
    stream.end();
    assert.equal((await reply).status, Status.INTERNAL);
  });

  it('answers a request that is not gRPC with HTTP 415', async () => {
    const { reply } = client.open('/test.Echo/Echo', { 'content-type': 'application/json' });
    await assert.rejects(reply, /without grpc-status/);
  });

  it('answers the go-plugin health check with SERVING', async () => {
    const reply = await client.call('/grpc.health.v1.Health/Check', Buffer.from('0a06706c7567696e', 'hex'));
    assert.equal(reply.status, 0);
    assert.deepEqual(reply.messages, [Buffer.from([0x08, 0x01])]);
  });

  it('refuses a client whose certificate Terraform did not send us', async () => {
    const stranger = createServerCertificate();
    const other = await GrpcTestClient.connect(socketPath, { ...tls, key: stranger.keyPem, cert: stranger.certPem }).catch((e: Error) => e);
    if (other instanceof GrpcTestClient) {
      // TLS 1.3 lets the client finish first; the server's refusal then ends the call.
      await assert.rejects(other.call('/test.Echo/Echo', Buffer.from('x')));
      other.session.destroy();
    } else {
      assert.ok(other instanceof Error);
    }
  });

  it('Shutdown: the reply arrives, then open streams end with OK and the connection closes', async () => {
    const stdio = client.open('/plugin.GRPCStdio/StreamStdio');
    stdio.stream.end(messagePrefix(0));
    const broker = client.open('/plugin.GRPCBroker/StartStream');
    broker.stream.write(messagePrefix(0));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(stdio.stream.closed, false, 'the stdio stream stays open');

    const sessionClosed = new Promise<number>((resolve) => client.session.once('close', () => resolve(performance.now())));
    const reply = await client.call('/plugin.GRPCController/Shutdown', Buffer.alloc(0));
    const replied = performance.now();
    assert.equal(reply.status, 0);
    assert.deepEqual(reply.messages, [Buffer.alloc(0)]);
    await new Promise((r) => setImmediate(r));
    assert.equal(shutdowns, 1);

    // The test plays serve.ts's part: on Shutdown it closes the server.
    await server.close(1000);
    assert.ok((await sessionClosed) >= replied, 'the connection closed after the reply arrived');
    assert.deepEqual([(await stdio.reply).status, (await broker.reply).status], [0, 0]);
  });
});

describe('GrpcServer without a client certificate (h2c)', () => {
  it('serves plain HTTP/2 with prior knowledge', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'storm-grpc-'));
    const server = new GrpcServer({ maxMessageBytes: 1024 }).unary('/test.Echo/Echo', async (r) => r);
    try {
      await server.listen(join(dir, 'h2c.sock'));
      const client = await GrpcTestClient.connect(join(dir, 'h2c.sock'));
      const reply = await client.call('/test.Echo/Echo', Buffer.from('clear'));
      assert.deepEqual([reply.status, reply.messages], [0, [Buffer.from('clear')]]);
      await client.close();
    } finally {
      await server.close(100);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
