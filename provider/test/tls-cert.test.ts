import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { encodeLength, integer, namedBits, oid, utcTime, x509Time } from '../src/x509/der.ts';
import { createServerCertificate } from '../src/protocol/tls-cert.ts';
import type { ServerCertificate } from '../src/protocol/tls-cert.ts';

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

describe('der', () => {
  it('encodes lengths in short and long form', () => {
    assert.deepEqual(encodeLength(0), Buffer.from([0x00]));
    assert.deepEqual(encodeLength(127), Buffer.from([0x7f]));
    assert.deepEqual(encodeLength(128), Buffer.from([0x81, 0x80]));
    assert.deepEqual(encodeLength(255), Buffer.from([0x81, 0xff]));
    assert.deepEqual(encodeLength(256), Buffer.from([0x82, 0x01, 0x00]));
    assert.deepEqual(encodeLength(70_000), Buffer.from([0x83, 0x01, 0x11, 0x70]));
  });

  it('encodes INTEGERs minimally and keeps them positive', () => {
    assert.deepEqual(integer(0), Buffer.from([0x02, 0x01, 0x00]));
    assert.deepEqual(integer(2), Buffer.from([0x02, 0x01, 0x02]));
    assert.deepEqual(integer(128), Buffer.from([0x02, 0x02, 0x00, 0x80]));
    assert.deepEqual(integer(Buffer.from([0x00, 0x00, 0x7f])), Buffer.from([0x02, 0x01, 0x7f]));
    assert.deepEqual(integer(Buffer.from([0x00, 0xff])), Buffer.from([0x02, 0x02, 0x00, 0xff]));
    assert.deepEqual(integer(Buffer.alloc(0)), Buffer.from([0x02, 0x01, 0x00]));
  });

  it('encodes OIDs including multi-byte arcs', () => {
    assert.equal(oid('1.2.840.10045.4.3.2').toString('hex'), '06082a8648ce3d040302');
    assert.equal(oid('2.5.29.17').toString('hex'), '0603551d11');
    assert.equal(oid('1.3.6.1.5.5.7.3.1').toString('hex'), '06082b06010505070301');
    assert.throws(() => oid('1.40'));
  });

  it('drops trailing zero bits of named bit lists', () => {
    // digitalSignature(0) + keyEncipherment(2) + keyCertSign(5) → 1010 0100, two unused bits.
    assert.equal(namedBits([0, 2, 5]).toString('hex'), '030202a4');
    assert.equal(namedBits([0, 8]).toString('hex'), '0303078080');
  });

  it('switches from UTCTime to GeneralizedTime in 2050', () => {
    assert.equal(utcTime(new Date(Date.UTC(2025, 0, 2, 3, 4, 5, 678))).subarray(2).toString(), '250102030405Z');
    assert.equal(x509Time(new Date(Date.UTC(2049, 11, 31, 23, 59, 59))).toString('hex').slice(0, 2), '17');
    assert.equal(x509Time(new Date(Date.UTC(2050, 0, 1))).subarray(2).toString(), '20500101000000Z');
  });
});

describe('createServerCertificate', () => {
  const started = performance.now();
  const server = createServerCertificate();
  const elapsedMs = performance.now() - started;
  const cert = new X509Certificate(server.certPem);

  it(`creates a certificate (first call took ${elapsedMs.toFixed(2)} ms)`, (t) => {
    const runs = 20;
    const t0 = performance.now();
    for (let i = 0; i < runs; i++) createServerCertificate();
    t.diagnostic(`average over ${runs} calls: ${((performance.now() - t0) / runs).toFixed(2)} ms`);
    assert.ok(server.certDer.length > 300);
  });

  it('parses, and certDer matches certPem', () => {
    assert.deepEqual(cert.raw, server.certDer);
    assert.equal(cert.subject, 'O=storm\nCN=localhost');
    assert.equal(cert.issuer, cert.subject);
  });

  it('carries SAN DNS:localhost and is a CA for serverAuth + clientAuth', () => {
    assert.equal(cert.subjectAltName, 'DNS:localhost');
    assert.equal(cert.ca, true);
    assert.deepEqual([...(cert.keyUsage ?? [])].sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    assert.equal(cert.checkHost('localhost'), 'localhost');
  });

  it('matches its private key and verifies its own signature', () => {
    assert.equal(cert.checkPrivateKey(createPrivateKey(server.keyPem)), true);
    assert.equal(cert.verify(cert.publicKey), true);
    assert.equal(cert.checkIssued(cert), true);
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  });

  it('is valid now, backdated by a minute, for validDays', () => {
    const now = Date.now();
    const from = Date.parse(cert.validFrom);
    const to = Date.parse(cert.validTo);
    assert.ok(from <= now && now < to);
    assert.ok(now - from >= 59_000 && now - from <= 120_000, `notBefore ${cert.validFrom}`);
    assert.ok(Math.abs(to - (now + 365 * 86_400_000)) < 120_000, `notAfter ${cert.validTo}`);

    const short = new X509Certificate(createServerCertificate({ validDays: 2, commonName: 'storm-test' }).certPem);
    assert.ok(Math.abs(Date.parse(short.validTo) - (now + 2 * 86_400_000)) < 120_000);
    assert.equal(short.subject, 'O=storm\nCN=storm-test');
    assert.equal(short.subjectAltName, 'DNS:localhost');

    // Past 2049 the encoder must switch to GeneralizedTime; parsing proves it did so validly.
    const long = new X509Certificate(createServerCertificate({ validDays: 40 * 365 }).certPem);
    assert.ok(Date.parse(long.validTo) > Date.UTC(2050, 0, 1));

    assert.throws(() => createServerCertificate({ validDays: 0 }), RangeError);
  });

  it('gives a positive serial of at most 20 bytes, and fresh serials and keys per call', () => {
    const other = createServerCertificate();
    const otherCert = new X509Certificate(other.certPem);
    assert.notEqual(otherCert.serialNumber, cert.serialNumber);
    assert.notEqual(other.keyPem, server.keyPem);
    assert.ok(!otherCert.publicKey.equals(cert.publicKey));
    for (const c of [cert, otherCert]) {
      assert.match(c.serialNumber, /^[0-9A-F]+$/);
      assert.ok(c.serialNumber.length <= 40);
      assert.ok(parseInt(c.serialNumber.slice(0, 2), 16) < 0x80);
    }
  });

  it('is accepted by the openssl CLI, strict chain verification included', { skip: !hasOpenssl && 'openssl not installed' }, (t) => {
    const text = execFileSync('openssl', ['x509', '-noout', '-text'], { input: server.certPem, encoding: 'utf8' });
    t.diagnostic(text.split('\n').filter((l) => /X509v3|DNS:|CA:|Signature Algorithm|Version/.test(l)).map((l) => l.trim()).join(' | '));
    assert.match(text, /Version: 3 \(0x2\)/);
    assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
    assert.match(text, /X509v3 Basic Constraints: critical\s+CA:TRUE/);
    assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment, Certificate Sign/);
    assert.match(text, /X509v3 Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication/);
    assert.match(text, /X509v3 Subject Alternative Name:\s+DNS:localhost/);
    assert.match(text, /X509v3 Subject Key Identifier/);
    assert.match(text, /NIST CURVE: P-256|ASN1 OID: prime256v1/);

    const dir = mkdtempSync(join(tmpdir(), 'storm-tls-cert-'));
    try {
      const file = join(dir, 'cert.pem');
      writeFileSync(file, server.certPem);
      const verified = execFileSync('openssl', ['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', file, file], { encoding: 'utf8' });
      assert.match(verified, /: OK/);
      // Round-trip through openssl's re-encoder: any non-canonical DER would change the bytes.
      const der = execFileSync('openssl', ['x509', '-outform', 'DER'], { input: server.certPem });
      assert.deepEqual(der, server.certDer);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  async function handshake(
    serverCert: ServerCertificate,
    trustedClient: ServerCertificate,
    presentedClient: ServerCertificate,
  ): Promise<{ serverAuthorized: boolean; clientAuthorized: boolean; echoed: string }> {
    const srv = tls.createServer({
      key: serverCert.keyPem,
      cert: serverCert.certPem,
      ca: [trustedClient.certPem],
      requestCert: true,
      rejectUnauthorized: true,
    });
    const serverSide = new Promise<boolean>((resolve, reject) => {
      srv.on('secureConnection', (socket) => {
        resolve(socket.authorized);
        socket.end('pong');
      });
      srv.on('tlsClientError', reject);
    });
    // A rejected handshake may just look like EOF to the client; don't let that read as success.
    serverSide.catch(() => {});
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    try {
      const { port } = srv.address() as AddressInfo;
      const client = tls.connect({
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        ca: [serverCert.certPem],
        key: presentedClient.keyPem,
        cert: presentedClient.certPem,
      });
      await once(client, 'secureConnect');
      const clientAuthorized = client.authorized;
      // Under TLS 1.3 the client finishes before the server has checked its certificate, so
      // only a completed exchange proves the server accepted us.
      let echoed = '';
      client.setEncoding('utf8');
      client.on('data', (chunk: string) => (echoed += chunk));
      await once(client, 'end');
      client.destroy();
      return { serverAuthorized: await serverSide, clientAuthorized, echoed };
    } finally {
      srv.close();
    }
  }

  it('completes a mutually authenticated TLS handshake on 127.0.0.1', { timeout: 10_000 }, async () => {
    const clientCert = createServerCertificate();
    const result = await handshake(server, clientCert, clientCert);
    assert.deepEqual(result, { serverAuthorized: true, clientAuthorized: true, echoed: 'pong' });
  });

  it('rejects a client certificate other than the trusted one', { timeout: 10_000 }, async () => {
    const trusted = createServerCertificate();
    const stranger = createServerCertificate();
    await assert.rejects(handshake(server, trusted, stranger));
  });
});
