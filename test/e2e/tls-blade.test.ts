// qemu+tls:// to a lab blade with its own CA: `storm tls` makes the CA and the certificates
// (the blade's server certificate too, through the lab), libvirtd checks them with GnuTLS, and
// a client that cannot prove itself or cannot trust the server gets a diagnostic naming the
// server, the file at fault and the storm command that fixes it.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import { startLab, type Blade, type Lab } from '../lib/lab.ts';
import { REPO_DIR, TerraformDir, resources, virsh } from '../lib/terraform.ts';

const STORM = join(REPO_DIR, 'build', 'bin', 'storm');
const pki = mkdtempSync(join(tmpdir(), 'storm-tls-e2e-'));
const dirs = {
  ca: join(pki, 'ca'),
  client: join(pki, 'client'),
  otherCa: join(pki, 'other-ca'),
  /** A consistent client directory of another CA: its cacert.pem does not know the blade's. */
  stranger: join(pki, 'stranger'),
  /** The CA certificate alone: the client step was forgotten. */
  noClientCert: join(pki, 'no-client-cert'),
};

async function storm(...args: string[]): Promise<string> {
  const r = await execa(STORM, args, { reject: false, all: true });
  assert.equal(r.exitCode, 0, `storm ${args.join(' ')}:\n${r.all}`);
  return r.stdout;
}

const serverHcl = (uri: string) => `
resource "storm_appliance_server" "blade1" {
  name        = "blade1"
  libvirt_uri = "${uri}"
}
`;

let lab: Lab;
let blade: Blade;

before(async () => {
  await storm('tls', 'ca', '--dir', dirs.ca);
  await storm('tls', 'client', '--ca', dirs.ca, '--out', dirs.client, '--name', 'storm-e2e');
  await storm('tls', 'ca', '--dir', dirs.otherCa, '--name', 'another CA');
  await storm('tls', 'client', '--ca', dirs.otherCa, '--out', dirs.stranger);
  mkdirSync(dirs.noClientCert);
  copyFileSync(join(dirs.ca, 'cacert.pem'), join(dirs.noClientCert, 'cacert.pem'));
  lab = await startLab({ blades: 1, initialPower: 'on', tls: { caDir: dirs.ca } });
  blade = lab.blades[0]!;
});

after(async () => {
  await lab?.stop();
  rmSync(pki, { recursive: true, force: true });
});

const uriWith = (dir: string) => `${blade.tlsUri}?pkipath=${dir}`;
/** Terraform wraps a diagnostic's detail to the terminal's width: compare words, not lines. */
const flat = (text: string) => text.replace(/\s+/g, ' ');

describe('storm_appliance_server over qemu+tls://', () => {
  const tf = new TerraformDir();
  before(async () => {
    tf.write(serverHcl(uriWith(dirs.client)));
    await tf.init();
  });
  after(async () => {
    await tf.destroy();
    tf.remove();
  });

  test('libvirt accepts the certificates storm tls made (virsh, as a person would check)', async () => {
    const r = await virsh(uriWith(dirs.client), 'uri');
    assert.equal(r.exitCode, 0, r.output);
    assert.equal(r.stdout.trim(), uriWith(dirs.client));
  });

  test('apply creates the server and reads the blade through TLS', async () => {
    const r = await tf.apply();
    assert.equal(r.exitCode, 0, r.output);
    const [server] = resources(await tf.state());
    assert.equal(server?.values.hostname, 'blade1');
    assert.equal(server?.values.id, `blade1@${uriWith(dirs.client)}`);
    assert.match((await virsh(blade.libvirtUri, 'pool-info', 'storm')).stdout, /State:\s+running/);
  });
});

describe('refused TLS connections read as what to fix', () => {
  const tf = new TerraformDir();
  before(async () => {
    tf.write(serverHcl(uriWith(dirs.stranger)));
    await tf.init();
  });
  after(() => tf.remove());

  test('a server whose certificate another CA signed is refused, naming the CA file and storm tls server', async () => {
    const r = await tf.apply();
    assert.equal(r.exitCode, 1, r.output);
    const said = flat(r.stderr);
    assert.match(said, /The TLS certificate of server "blade1" is not signed by the CA storm trusts/);
    assert.ok(said.includes(`${join(dirs.stranger, 'cacert.pem')} (pkipath=${dirs.stranger})`), r.stderr);
    assert.match(said, /storm tls server --ca CA_DIR --host 127\.0\.0\.\d+/);
    assert.match(said, /in resource "storm_appliance_server" "blade1": \d+: libvirt_uri = /, 'the diagnostic blames libvirt_uri');
    assert.doesNotMatch(r.stderr, /\n\s+at \S+ \(/, 'no stack trace');
  });

  test('a server reached by a name its certificate does not list is refused, naming that name', async () => {
    // The same listener through an IPv4-mapped IPv6 address: a name the certificate (127.0.0.X, blade1) does not list.
    const address = /^qemu\+tls:\/\/([^/]+)\//.exec(blade.tlsUri!)![1]!;
    tf.write(serverHcl(`qemu+tls://[::ffff:${address}]/system?pkipath=${dirs.client}`));
    const r = await tf.apply();
    assert.equal(r.exitCode, 1, r.output);
    const said = flat(r.stderr);
    assert.match(said, new RegExp(`The TLS certificate of server "blade1" does not name "::ffff:${address.replaceAll('.', '\\.')}"`));
    assert.match(said, /storm tls server --ca CA_DIR --host ::ffff:/);
    assert.doesNotMatch(r.stderr, /\n\s+at \S+ \(/, 'no stack trace');
  });

  test('a client without a certificate is refused, naming the missing file and storm tls client', async () => {
    tf.write(serverHcl(uriWith(dirs.noClientCert)));
    const r = await tf.apply();
    assert.equal(r.exitCode, 1, r.output);
    const said = flat(r.stderr);
    assert.match(said, /storm has no TLS client certificate for server "blade1"/);
    assert.ok(said.includes(`${join(dirs.noClientCert, 'clientcert.pem')} does not exist`), r.stderr);
    assert.match(said, /storm tls client --ca CA_DIR --out DIR/);
    assert.doesNotMatch(r.stderr, /\n\s+at \S+ \(/, 'no stack trace');
  });
});
