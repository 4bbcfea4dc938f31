// storm tls: the CA, server and client certificates of libvirt's TLS transport, checked by
// openssl (chain, purpose, host name, extensions) and node:crypto, and the command's files.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueCa, issueClient, issueServer, loadCa, sortHosts } from '../src/x509/issue.ts';
import { tlsCommand } from '../src/cli/tls.ts';
import { CertificateError, ipAddressBytes, issuerOf } from '../src/x509/certificate.ts';

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

function scratch(): { dir: string; file(name: string, text: string): string; done(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'storm-tls-ca-'));
  return {
    dir,
    file(name, text) {
      writeFileSync(join(dir, name), text);
      return join(dir, name);
    },
    done: () => rmSync(dir, { recursive: true, force: true }),
  };
}

const openssl = (...args: string[]) => execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const text = (pem: string) => execFileSync('openssl', ['x509', '-noout', '-text'], { input: pem, encoding: 'utf8' });

describe('libvirt PKI certificates', () => {
  const caPair = issueCa('storm test CA');
  const ca = loadCa(caPair.certPem, caPair.keyPem);
  const server = issueServer(ca, ['blade1.lab.example', '127.0.0.11', '::1']);
  const client = issueClient(ca, 'terraform@ci');

  it('a CA that signs, a server and a client it issued, each with its own key', () => {
    const caCert = new X509Certificate(caPair.certPem);
    const serverCert = new X509Certificate(server.certPem);
    const clientCert = new X509Certificate(client.certPem);
    assert.equal(caCert.ca, true);
    assert.equal(serverCert.ca, false);
    assert.equal(clientCert.ca, false);
    assert.ok(serverCert.checkIssued(caCert) && serverCert.verify(caCert.publicKey));
    assert.ok(clientCert.checkIssued(caCert) && clientCert.verify(caCert.publicKey));
    assert.equal(serverCert.issuer, caCert.subject);
    assert.equal(serverCert.subject, 'O=storm\nCN=blade1.lab.example');
    assert.equal(clientCert.subject, 'O=storm\nCN=terraform@ci');
    assert.ok(serverCert.checkPrivateKey(createPrivateKey(server.keyPem)));
    assert.ok(!serverCert.checkPrivateKey(createPrivateKey(client.keyPem)));
    assert.equal(serverCert.checkHost('blade1.lab.example'), 'blade1.lab.example');
    assert.equal(serverCert.checkIP('127.0.0.11'), '127.0.0.11');
    assert.equal(serverCert.checkIP('127.0.0.12'), undefined);
  });

  it('never outlives its CA', () => {
    const shortCa = issueCa('short', 10);
    const leaf = issueServer(loadCa(shortCa.certPem, shortCa.keyPem), ['h'], 825);
    assert.ok(leaf.notAfter.getTime() <= shortCa.notAfter.getTime());
  });

  it('is what openssl calls a valid chain for each purpose, strict mode included', { skip: !hasOpenssl && 'openssl not installed' }, () => {
    const s = scratch();
    try {
      const caFile = s.file('cacert.pem', caPair.certPem);
      const serverFile = s.file('servercert.pem', server.certPem);
      const clientFile = s.file('clientcert.pem', client.certPem);
      assert.match(openssl('verify', '-x509_strict', '-CAfile', caFile, caFile), /: OK/);
      assert.match(openssl('verify', '-x509_strict', '-purpose', 'sslserver', '-verify_ip', '127.0.0.11', '-CAfile', caFile, serverFile), /: OK/);
      assert.match(openssl('verify', '-x509_strict', '-purpose', 'sslserver', '-verify_hostname', 'blade1.lab.example', '-CAfile', caFile, serverFile), /: OK/);
      assert.match(openssl('verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', caFile, clientFile), /: OK/);
      // Roles are not interchangeable: a client certificate cannot serve, a server's cannot be a client.
      assert.throws(() => openssl('verify', '-purpose', 'sslserver', '-CAfile', caFile, clientFile));
      assert.throws(() => openssl('verify', '-purpose', 'sslclient', '-CAfile', caFile, serverFile));
      assert.throws(() => openssl('verify', '-verify_hostname', 'blade2.lab.example', '-CAfile', caFile, serverFile));
      // Another CA does not vouch for them.
      const other = s.file('other.pem', issueCa('other').certPem);
      assert.throws(() => openssl('verify', '-CAfile', other, serverFile));
    } finally {
      s.done();
    }
  });

  it('carries the extensions libvirt checks, in canonical DER', { skip: !hasOpenssl && 'openssl not installed' }, () => {
    const caText = text(caPair.certPem);
    assert.match(caText, /Basic Constraints: critical\s+CA:TRUE/);
    assert.match(caText, /Key Usage: critical\s+Certificate Sign, CRL Sign/);
    assert.doesNotMatch(caText, /Extended Key Usage/);
    const caKeyId = /Subject Key Identifier:\s+(\S+)/.exec(caText)?.[1];
    assert.ok(caKeyId);

    const serverText = text(server.certPem);
    assert.match(serverText, /Basic Constraints: critical\s+CA:FALSE/);
    assert.match(serverText, /Key Usage: critical\s+Digital Signature, Key Encipherment/);
    assert.match(serverText, /Extended Key Usage:\s+TLS Web Server Authentication\n/);
    assert.match(serverText, /Subject Alternative Name:\s+DNS:blade1\.lab\.example, IP Address:127\.0\.0\.11, IP Address:0:0:0:0:0:0:0:1/);
    assert.match(serverText, new RegExp(`Authority Key Identifier:\\s+(keyid:)?${caKeyId}`));
    assert.match(serverText, /Signature Algorithm: ecdsa-with-SHA256/);

    const clientText = text(client.certPem);
    assert.match(clientText, /Extended Key Usage:\s+TLS Web Client Authentication\n/);
    assert.doesNotMatch(clientText, /Subject Alternative Name/);

    for (const pem of [caPair.certPem, server.certPem, client.certPem]) {
      const der = execFileSync('openssl', ['x509', '-outform', 'DER'], { input: pem });
      assert.deepEqual(der, new X509Certificate(pem).raw);
    }
  });

  it('signs with a CA made elsewhere (openssl, RSA), naming it exactly as it names itself', { skip: !hasOpenssl && 'openssl not installed' }, () => {
    const s = scratch();
    try {
      const key = join(s.dir, 'cakey.pem');
      const cert = join(s.dir, 'cacert.pem');
      openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '30', '-subj', '/C=DE/O=Acme Lab/CN=Acme Root', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
      const foreign = loadCa(readFileSync(cert, 'utf8'), readFileSync(key, 'utf8'));
      const leaf = issueServer(foreign, ['blade7']);
      const leafFile = s.file('servercert.pem', leaf.certPem);
      assert.match(openssl('verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', cert, leafFile), /: OK/);
      const caKeyId = /Subject Key Identifier:\s+(\S+)/.exec(openssl('x509', '-in', cert, '-noout', '-text'))?.[1];
      assert.match(text(leaf.certPem), new RegExp(`Authority Key Identifier:\\s+(keyid:)?${caKeyId}`));
      assert.match(text(leaf.certPem), /Signature Algorithm: sha256WithRSAEncryption/);
      assert.equal(new X509Certificate(leaf.certPem).issuer, 'C=DE\nO=Acme Lab\nCN=Acme Root');
    } finally {
      s.done();
    }
  });

  it('refuses a CA directory whose parts do not belong together, or that is no CA', () => {
    const other = issueCa('other');
    assert.throws(() => loadCa(caPair.certPem, other.keyPem), /does not belong/);
    assert.throws(() => loadCa(server.certPem, server.keyPem), /not a CA/);
    assert.throws(() => loadCa('not a certificate', caPair.keyPem), CertificateError);
    assert.throws(() => issuerOf(Buffer.from([0x30, 0x05, 0x01])), CertificateError);
  });

  it('tells host names from addresses, and refuses what is neither', () => {
    assert.deepEqual(sortHosts(['Blade1', '10.0.0.1', 'fe80::1', '*.lab.example']), { dnsNames: ['blade1', '*.lab.example'], ipAddresses: ['10.0.0.1', 'fe80::1'] });
    assert.throws(() => sortHosts(['blade 1']), CertificateError);
    assert.throws(() => sortHosts(['qemu+tls://blade1/system']), CertificateError);
    assert.equal(ipAddressBytes('192.168.1.20').toString('hex'), 'c0a80114');
    assert.equal(ipAddressBytes('2001:db8::1').toString('hex'), '20010db8000000000000000000000001');
    assert.equal(ipAddressBytes('::').toString('hex'), '0'.repeat(32));
    for (const bad of ['256.1.1.1', '1::2::3', '1:2:3:4:5:6:7:8:9', 'fe80::1%eth0']) assert.throws(() => ipAddressBytes(bad), CertificateError, bad);
  });
});

describe('storm tls', () => {
  function io() {
    let out = '';
    let err = '';
    return { stdout: { write: (t: string) => (out += t) }, stderr: { write: (t: string) => (err += t) }, env: {}, out: () => out, err: () => err };
  }

  it('writes the CA, a server and a client in libvirt\'s layout, keys 0600, and says where they go', async () => {
    const s = scratch();
    try {
      const ca = join(s.dir, 'ca');
      const a = io();
      assert.equal(await tlsCommand(['ca', '--dir', ca], a), 0, a.err());
      assert.match(a.out(), /cacert\.pem/);
      assert.equal(statSync(join(ca, 'cakey.pem')).mode & 0o777, 0o600);
      assert.equal(statSync(join(ca, 'cacert.pem')).mode & 0o777, 0o644);

      const b = io();
      assert.equal(await tlsCommand(['server', '--ca', ca, '--host', 'blade1', '--host', '127.0.0.11'], b), 0, b.err());
      const serverDir = join(ca, 'server-blade1');
      for (const f of ['cacert.pem', 'servercert.pem', 'serverkey.pem']) statSync(join(serverDir, f));
      assert.equal(statSync(join(serverDir, 'serverkey.pem')).mode & 0o777, 0o600);
      assert.ok(b.out().includes(`install -D -m 0600 ${join(serverDir, 'serverkey.pem')} /etc/pki/libvirt/private/serverkey.pem`), b.out());
      assert.ok(b.out().includes('/etc/pki/CA/cacert.pem'));
      assert.deepEqual(new X509Certificate(readFileSync(join(serverDir, 'servercert.pem'))).subjectAltName, 'DNS:blade1, IP Address:127.0.0.11');

      const c = io();
      const out = join(s.dir, 'pki');
      assert.equal(await tlsCommand(['client', '--ca', ca, '--out', out, '--name', 'ci'], c), 0, c.err());
      assert.ok(c.out().includes(`?pkipath=${out}`), c.out());
      assert.equal(readFileSync(join(out, 'cacert.pem'), 'utf8'), readFileSync(join(ca, 'cacert.pem'), 'utf8'));
      assert.ok(new X509Certificate(readFileSync(join(out, 'clientcert.pem'))).checkPrivateKey(createPrivateKey(readFileSync(join(out, 'clientkey.pem')))));
    } finally {
      s.done();
    }
  });

  it('replaces no key without --force, and writes nothing when one file is in the way', async () => {
    const s = scratch();
    try {
      const ca = join(s.dir, 'ca');
      assert.equal(await tlsCommand(['ca', '--dir', ca], io()), 0);
      const before = readFileSync(join(ca, 'cakey.pem'), 'utf8');
      const again = io();
      assert.equal(await tlsCommand(['ca', '--dir', ca], again), 1);
      assert.match(again.err(), /already exist.*--force/);
      assert.equal(readFileSync(join(ca, 'cakey.pem'), 'utf8'), before);

      const out = join(s.dir, 'client');
      assert.equal(await tlsCommand(['client', '--ca', ca, '--out', out], io()), 0);
      const cert = readFileSync(join(out, 'clientcert.pem'), 'utf8');
      assert.equal(await tlsCommand(['client', '--ca', ca, '--out', out], io()), 1);
      assert.equal(readFileSync(join(out, 'clientcert.pem'), 'utf8'), cert);
      assert.equal(await tlsCommand(['client', '--ca', ca, '--out', out, '--force'], io()), 0);
      assert.notEqual(readFileSync(join(out, 'clientcert.pem'), 'utf8'), cert);

      assert.equal(await tlsCommand(['ca', '--dir', ca, '--force'], io()), 0);
      assert.notEqual(readFileSync(join(ca, 'cakey.pem'), 'utf8'), before);
    } finally {
      s.done();
    }
  });

  it('says what is missing: the CA, a --host, a known step', async () => {
    const s = scratch();
    try {
      const noCa = io();
      assert.equal(await tlsCommand(['client', '--ca', join(s.dir, 'nothing')], noCa), 1);
      assert.match(noCa.err(), /cacert\.pem does not exist: make the CA first with `storm tls ca --dir /);
      const noHost = io();
      assert.equal(await tlsCommand(['server', '--ca', s.dir], noHost), 2);
      assert.match(noHost.err(), /--host is required/);
      const badHost = io();
      assert.equal(await tlsCommand(['server', '--ca', s.dir, '--host', 'a b'], badHost), 2);
      assert.match(badHost.err(), /neither a host name nor an IP address/);
      const unknown = io();
      assert.equal(await tlsCommand(['sign'], unknown), 2);
      assert.match(unknown.err(), /expected ca, server or client/);
      const bad = io();
      assert.equal(await tlsCommand(['ca', '--dir', s.dir, '--days', 'soon'], bad), 2);
      const help = io();
      assert.equal(await tlsCommand(['server', '--help'], help), 0);
      assert.match(help.out(), /storm tls server --host NAME_OR_IP/);
    } finally {
      s.done();
    }
  });
});
