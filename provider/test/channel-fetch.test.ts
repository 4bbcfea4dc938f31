// Channel documents over HTTP: what is served comes back byte for byte, a 404 is an absence, and
// an answer larger than any channel document is refused while it arrives (declared or not),
// never held whole in memory.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ChannelHttpError, fetchBytes } from '../src/drivers/channel.ts';
import { MAX_CHANNEL_DOCUMENT_BYTES } from '../src/rules.ts';

describe('fetching a channel document', () => {
  let server: Server;
  let base = '';
  let sentBeforeGivingUp = 0;
  const small = Buffer.from('<rss/>'.repeat(200));
  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/small') return void res.end(small);
      if (req.url === '/declared') {
        res.writeHead(200, { 'Content-Length': String(MAX_CHANNEL_DOCUMENT_BYTES + 1) });
        return void res.end(Buffer.alloc(MAX_CHANNEL_DOCUMENT_BYTES + 1));
      }
      if (req.url === '/endless') {
        // Chunked, no length: 1 MiB at a time until the client goes away (or 64 MiB).
        const chunk = Buffer.alloc(1 << 20, 0x61);
        sentBeforeGivingUp = 0;
        const more = (): void => {
          while (sentBeforeGivingUp < 64 << 20) {
            sentBeforeGivingUp += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', more);
          }
          res.end();
        };
        return more();
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test('byte for byte; a 404 is null', async () => {
    assert.deepEqual(await fetchBytes(`${base}/small`), new Uint8Array(small));
    assert.equal(await fetchBytes(`${base}/nothing`), null);
  });

  test('an answer declared larger than any channel document is refused before its body is read', async () => {
    await assert.rejects(fetchBytes(`${base}/declared`), (e: unknown) => e instanceof ChannelHttpError && /larger than 16 MiB.*is this a channel's URL\?/.test(e.message));
  });

  test('an answer of no declared length is given up once past the cap', async () => {
    await assert.rejects(fetchBytes(`${base}/endless`), (e: unknown) => e instanceof ChannelHttpError && /larger than 16 MiB/.test(e.message));
    // The server was stopped well short of its 64 MiB: the client went away.
    assert.ok(sentBeforeGivingUp < 48 << 20, `sent ${sentBeforeGivingUp} bytes`);
  });
});
