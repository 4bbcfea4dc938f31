// Refused qemu+tls:// connections, from what libvirt 9.0 actually printed (recorded with virsh
// against a lab blade, test/e2e/tls-blade.test.ts) to the diagnostic the user reads.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LibvirtTlsError, LibvirtUnreachableError, unreachable } from '../src/drivers/errors.ts';
import { clientPki, tlsProblemOf } from '../src/drivers/libvirt-pki.ts';
import { virshMessage } from '../src/drivers/virsh.ts';
import { diagnosed } from '../src/resources/diagnose.ts';
import { DiagnosticError, attr } from '../src/protocol/diagnostics.ts';

const pkipath = mkdtempSync(join(tmpdir(), 'storm-libvirt-tls-'));
writeFileSync(join(pkipath, 'clientcert.pem'), 'present');
const noClient = mkdtempSync(join(tmpdir(), 'storm-libvirt-tls-'));
process.on('exit', () => {
  rmSync(pkipath, { recursive: true, force: true });
  rmSync(noClient, { recursive: true, force: true });
});
const URI = `qemu+tls://127.0.0.11/system?pkipath=${pkipath}`;

const log = (level: string, text: string) => `2026-11-30 11:40:52.817+0000: 25912: ${level} : virNetTLSContextCheckCertificate:1086 : ${text}`;
const STDERR = {
  otherCa: [
    log('info', 'libvirt version: 9.0.0, package: 9.0.0-4+deb12u2 (Debian)'),
    log('info', 'hostname: vm'),
    log('warning', "Certificate check failed Certificate failed validation: The certificate hasn't got a known issuer."),
    'error: failed to connect to the hypervisor',
    "error: authentication failed: Failed to verify peer's certificate",
  ].join('\n'),
  name: [
    log('warning', 'Certificate check failed Certificate [session] owner does not match the hostname 127.0.0.11'),
    'error: failed to connect to the hypervisor',
    "error: authentication failed: Failed to verify peer's certificate",
  ].join('\n'),
  serverHungUp: 'error: failed to connect to the hypervisor\nerror: Unable to read TLS confirmation: Input/output error',
  mixed: `error: failed to connect to the hypervisor\nerror: Our own certificate ${pkipath}/clientcert.pem failed validation against ${pkipath}/cacert.pem: The certificate hasn't got a known issuer.`,
  noCa: `error: failed to connect to the hypervisor\nerror: Cannot read CA certificate '${pkipath}/cacert.pem': No such file or directory`,
  notTls: 'error: failed to connect to the hypervisor\nerror: authentication failed: TLS handshake failed Error in the pull function.',
  refused: "error: failed to connect to the hypervisor\nerror: unable to connect to server at '127.0.0.11:16514': Connection refused",
};

describe('virsh messages', () => {
  it('keep libvirt\'s warnings (they say why) and drop its info lines', () => {
    assert.equal(
      virshMessage(STDERR.otherCa),
      "failed to connect to the hypervisor; authentication failed: Failed to verify peer's certificate " +
        "(Certificate check failed Certificate failed validation: The certificate hasn't got a known issuer.)",
    );
    assert.equal(virshMessage('error: Domain not found\n'), 'Domain not found');
  });
});

describe('TLS problems from libvirt\'s words', () => {
  const problem = (stderr: string, uri = URI) => tlsProblemOf(uri, virshMessage(stderr));

  it('tells the server\'s certificate problems apart by the warning', () => {
    assert.equal(problem(STDERR.otherCa), 'server-untrusted');
    assert.equal(problem(STDERR.name), 'server-name');
    // The native binding says only the summary.
    assert.equal(tlsProblemOf(URI, "authentication failed: Failed to verify peer's certificate"), 'server-rejected');
  });

  it('tells a missing client certificate from a refused one by the file', () => {
    assert.equal(problem(STDERR.serverHungUp), 'client-refused');
    assert.equal(problem(STDERR.serverHungUp, `qemu+tls://127.0.0.11/system?pkipath=${noClient}`), 'client-missing');
  });

  it('reads the client-side checks, and leaves other failures alone', () => {
    assert.equal(problem(STDERR.mixed), 'client-mismatch');
    assert.equal(problem(STDERR.noCa), 'ca-missing');
    assert.equal(problem(STDERR.notTls), 'handshake');
    assert.equal(problem(STDERR.refused), null);
    assert.equal(problem(STDERR.otherCa, 'qemu+tcp://127.0.0.11/system'), null, 'only a tls URI has TLS problems');
  });

  it('knows where a client looks for its files', () => {
    assert.deepEqual(clientPki('qemu+tls://h/system?pkipath=/srv/pki/'), {
      caCert: '/srv/pki/cacert.pem',
      clientCert: '/srv/pki/clientcert.pem',
      clientKey: '/srv/pki/clientkey.pem',
      origin: 'pkipath=/srv/pki/',
    });
    assert.equal(clientPki('qemu+tls://h/system', {}, 0).clientKey, '/etc/pki/libvirt/private/clientkey.pem');
    assert.equal(clientPki('qemu+tls://h/system', { HOME: '/home/ann' }, 1000).caCert, '/home/ann/.pki/libvirt/cacert.pem');
  });

  it('become LibvirtTlsError, still a LibvirtUnreachableError for code that only knows that', () => {
    const err = unreachable(URI, virshMessage(STDERR.otherCa));
    assert.ok(err instanceof LibvirtTlsError && err instanceof LibvirtUnreachableError);
    assert.equal(err.problem, 'server-untrusted');
    assert.ok(!(unreachable(URI, virshMessage(STDERR.refused)) instanceof LibvirtTlsError));
  });
});

describe('TLS diagnostics', () => {
  const context = { server: 'blade1', libvirt: { path: attr('libvirt_uri'), via: 'uri' as const } };
  const read = (stderr: string, uri = URI) => {
    const d = diagnosed(unreachable(uri, virshMessage(stderr)), context);
    assert.ok(d instanceof DiagnosticError);
    return d.diagnostic;
  };

  it('name the server, the file at fault and the storm command that fixes it', (t) => {
    const cases: [string, RegExp, RegExp[]][] = [
      [STDERR.otherCa, /TLS certificate of server "blade1" is not signed by the CA storm trusts/, [new RegExp(`${pkipath}/cacert\\.pem`), /storm tls server --ca CA_DIR --host 127\.0\.0\.11/]],
      [STDERR.name, /TLS certificate of server "blade1" does not name "127\.0\.0\.11"/, [/--host/]],
      [STDERR.serverHungUp, /Server "blade1" refused storm's TLS client certificate/, [/storm tls client/, /\/etc\/pki\/CA\/cacert\.pem/]],
      [STDERR.mixed, /client certificate is not signed by its CA/, [/storm tls client/]],
      [STDERR.noCa, /no CA certificate to check server "blade1"/, [/cacert\.pem does not exist/]],
      [STDERR.notTls, /No TLS conversation with server "blade1"/, [/listen_tls = 1/]],
    ];
    for (const [stderr, summary, details] of cases) {
      const d = read(stderr);
      t.diagnostic(`${d.summary} — ${d.detail}`);
      assert.match(d.summary, summary);
      for (const re of details) assert.match(d.detail ?? '', re);
      assert.deepEqual(d.path, attr('libvirt_uri'));
      assert.doesNotMatch(`${d.summary} ${d.detail}`, /undefined|null|\[object/);
    }
    const missing = read(STDERR.serverHungUp, `qemu+tls://127.0.0.11/system?pkipath=${noClient}`);
    assert.match(missing.summary, /storm has no TLS client certificate for server "blade1"/);
    assert.match(missing.detail ?? '', new RegExp(`${noClient}/clientcert\\.pem does not exist`));
  });

  it('leave an unreachable host to the row it had', () => {
    const d = diagnosed(unreachable(URI, virshMessage(STDERR.refused)), context);
    assert.ok(d instanceof DiagnosticError);
    assert.equal(d.diagnostic.summary, 'Cannot reach libvirt on the server');
  });
});
