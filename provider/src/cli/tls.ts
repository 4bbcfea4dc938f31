// `storm tls ca|server|client`: a small CA for libvirt's qemu+tls:// transport, writing libvirt's
// PKI layout (drivers/libvirt-pki.ts) and saying where each file goes on a real host.
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PKI_FILE, SYSTEM_PKI } from '../drivers/libvirt-pki.ts';
import { CertificateError } from '../x509/certificate.ts';
import { DEFAULT_DAYS, issueCa, issueClient, issueServer, loadCa, sortHosts, type IssuedPair } from '../x509/issue.ts';

export interface TlsCommandIO {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** XDG_CONFIG_HOME, HOME: where the CA lives by default. */
  env?: NodeJS.ProcessEnv;
}

const defaultIO = (): TlsCommandIO => ({ stdout: process.stdout, stderr: process.stderr, env: process.env });

/** Outside any project directory, so the CA key does not end up committed with a configuration. */
export function defaultCaDir(env: NodeJS.ProcessEnv = process.env): string {
  const config = env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), '.config');
  return path.join(config, 'storm', 'libvirt-ca');
}

export const tlsUsage = 'storm tls ca|server|client [options]';

const caUsage = 'storm tls ca [--dir DIR] [--name NAME] [--days N] [--force]';
const serverUsage = 'storm tls server --host NAME_OR_IP [--host …] [--ca DIR] [--out DIR] [--days N] [--force]';
const clientUsage = 'storm tls client [--name NAME] [--ca DIR] [--out DIR] [--days N] [--force]';

export const tlsHelp = `Usage: ${tlsUsage}

Certificates for libvirt's TLS transport (qemu+tls://HOST/system), in libvirt's PKI layout,
signed by a CA of your own. Three steps:

  ${caUsage}
      the CA: DIR/${PKI_FILE.caCert} (give it to every host and client) and DIR/${PKI_FILE.caKey}
      (mode 0600; it signs everything below, keep it on this machine)
  ${serverUsage}
      a libvirt host's ${PKI_FILE.serverCert} + ${PKI_FILE.serverKey}, naming every host name
      and address clients put in their URIs (the name check compares them)
  ${clientUsage}
      storm's ${PKI_FILE.clientCert} + ${PKI_FILE.clientKey}; libvirtd refuses clients without one

Each prints where its files went and where they go on a host. Keys are ECDSA P-256.

  --dir, --ca DIR   the CA directory (default: $XDG_CONFIG_HOME/storm/libvirt-ca, else
                    ~/.config/storm/libvirt-ca)
  --out DIR         where a server or client certificate goes, next to a copy of
                    ${PKI_FILE.caCert} (default: CA_DIR/server-HOST, CA_DIR/client-NAME). A
                    client's --out directory is ready to use as ?pkipath=DIR in libvirt_uri.
  --name NAME       the CA's or the client's common name (default: "storm CA", this machine's
                    host name)
  --days N          validity (default: ${DEFAULT_DAYS.ca} for the CA, ${DEFAULT_DAYS.leaf} for the others,
                    never past the CA's own end)
  --force           replace existing files (a new CA makes every certificate it signed useless)

Exit status: 0 written, 1 failure (e.g. the files exist), 2 usage error.
`;

class UsageError extends Error {}

function days(text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 36_500) throw new UsageError(`--days must be a whole number of days from 1 to 36500, got "${text}"`);
  return n;
}

interface Output {
  file: string;
  text: string;
  secret: boolean;
  what: string;
}

/**
 * Writes every file or none: all are checked before the first is written. A copy of the CA
 * certificate that is already there with the same text is no conflict.
 */
async function writeAll(outputs: readonly Output[], force: boolean): Promise<void> {
  if (!force) {
    const existing: string[] = [];
    for (const o of outputs) {
      const current = await fs.readFile(o.file, 'utf8').catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? null : Promise.reject(e)));
      if (current !== null && current !== o.text) existing.push(o.file);
    }
    if (existing.length > 0) throw new CertificateError(`${existing.join(', ')} already exist${existing.length === 1 ? 's' : ''}; not replacing. Use --force to replace, or another directory`);
  }
  for (const o of outputs) {
    // 0700 applies only to directories made here: a directory of private keys.
    await fs.mkdir(path.dirname(o.file), { recursive: true, mode: 0o700 });
    const mode = o.secret ? 0o600 : 0o644;
    const handle = await fs.open(o.file, 'w', mode);
    try {
      // open()'s mode does not apply to a file that already existed.
      await handle.chmod(mode);
      await handle.writeFile(o.text);
    } finally {
      await handle.close();
    }
  }
}

function listing(outputs: readonly Output[]): string[] {
  const width = Math.max(...outputs.map((o) => o.file.length));
  return outputs.map((o) => `  ${o.file.padEnd(width)}  ${o.what}${o.secret ? ' (mode 0600)' : ''}`);
}

const until = (p: IssuedPair) => p.notAfter.toISOString().slice(0, 10);

async function readCa(dir: string): Promise<{ ca: ReturnType<typeof loadCa>; certPem: string }> {
  const certFile = path.join(dir, PKI_FILE.caCert);
  const keyFile = path.join(dir, PKI_FILE.caKey);
  let certPem: string;
  let keyPem: string;
  try {
    // One after the other: with both missing, the message names the certificate every time
    // (read together, whichever failed first was said, and that varied).
    certPem = await fs.readFile(certFile, 'utf8');
    keyPem = await fs.readFile(keyFile, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new CertificateError(err.code === 'ENOENT' ? `${err.path} does not exist: make the CA first with \`storm tls ca --dir ${dir}\`` : `${err.path ?? dir}: ${err.message}`);
  }
  try {
    return { ca: loadCa(certPem, keyPem), certPem };
  } catch (e) {
    throw e instanceof CertificateError ? new CertificateError(`${dir}: ${e.message}`) : e;
  }
}

async function ca(args: string[], io: TlsCommandIO): Promise<number> {
  const { values } = parseArgs({ args, options: { dir: { type: 'string' }, name: { type: 'string' }, days: { type: 'string' }, force: { type: 'boolean' } } });
  const dir = path.resolve(values.dir ?? defaultCaDir(io.env));
  const issued = issueCa(values.name ?? 'storm CA', days(values.days, DEFAULT_DAYS.ca));
  const outputs: Output[] = [
    { file: path.join(dir, PKI_FILE.caCert), text: issued.certPem, secret: false, what: 'the CA certificate: every libvirt host and client trusts it' },
    { file: path.join(dir, PKI_FILE.caKey), text: issued.keyPem, secret: true, what: 'its key: it signs the certificates below; keep it here' },
  ];
  await writeAll(outputs, Boolean(values.force));
  io.stdout.write(
    [
      `Made a CA valid until ${until(issued)}:`,
      ...listing(outputs),
      '',
      'Next, a certificate for each libvirt host (every name and address clients will use):',
      `  storm tls server --ca ${dir} --host HOST_NAME --host IP_ADDRESS`,
      'and one for storm itself:',
      `  storm tls client --ca ${dir}`,
      '',
    ].join('\n'),
  );
  return 0;
}

/** Writes a leaf certificate, its key and a copy of the CA into `out` (libvirt's names for `role`). */
async function writeLeaf(out: string, role: 'server' | 'client', caPem: string, issued: { certPem: string; keyPem: string }, what: { ca: string; cert: string }, force: boolean): Promise<{ files: { ca: string; cert: string; key: string }; outputs: Output[] }> {
  const files = {
    ca: path.join(out, PKI_FILE.caCert),
    cert: path.join(out, role === 'server' ? PKI_FILE.serverCert : PKI_FILE.clientCert),
    key: path.join(out, role === 'server' ? PKI_FILE.serverKey : PKI_FILE.clientKey),
  };
  const outputs: Output[] = [
    { file: files.ca, text: caPem, secret: false, what: what.ca },
    { file: files.cert, text: issued.certPem, secret: false, what: what.cert },
    { file: files.key, text: issued.keyPem, secret: true, what: 'its key' },
  ];
  await writeAll(outputs, force);
  return { files, outputs };
}

async function server(args: string[], io: TlsCommandIO): Promise<number> {
  const { values } = parseArgs({ args, options: { ca: { type: 'string' }, host: { type: 'string', multiple: true }, out: { type: 'string' }, days: { type: 'string' }, force: { type: 'boolean' } } });
  const hosts = values.host ?? [];
  if (hosts.length === 0) throw new UsageError('--host is required: the host name or IP address clients put in qemu+tls://HOST/system (repeat it for each)');
  try {
    sortHosts(hosts);
  } catch (e) {
    throw new UsageError(`--host ${(e as Error).message}`);
  }
  const caDir = path.resolve(values.ca ?? defaultCaDir(io.env));
  const out = path.resolve(values.out ?? path.join(caDir, `server-${hosts[0]!.replaceAll(':', '_')}`));
  const { ca: authority, certPem: caPem } = await readCa(caDir);
  const issued = issueServer(authority, hosts, days(values.days, DEFAULT_DAYS.leaf));
  const { files, outputs } = await writeLeaf(out, 'server', caPem, issued, { ca: 'a copy of the CA certificate', cert: `the server certificate for ${hosts.join(', ')}` }, Boolean(values.force));
  io.stdout.write(
    [
      `Made a server certificate valid until ${until(issued)}:`,
      ...listing(outputs),
      '',
      'On the libvirt host, as root:',
      `  install -D -m 0644 ${files.ca} ${SYSTEM_PKI.caCert}`,
      `  install -D -m 0644 ${files.cert} ${SYSTEM_PKI.serverCert}`,
      `  install -D -m 0600 ${files.key} ${SYSTEM_PKI.serverKey}`,
      '  systemctl enable --now libvirtd-tls.socket   # or listen_tls = 1 in libvirtd.conf with libvirtd --listen',
      '',
      `Clients then use qemu+tls://HOST/system with HOST one of: ${hosts.join(', ')}.`,
      '',
    ].join('\n'),
  );
  return 0;
}

async function client(args: string[], io: TlsCommandIO): Promise<number> {
  const { values } = parseArgs({ args, options: { ca: { type: 'string' }, name: { type: 'string' }, out: { type: 'string' }, days: { type: 'string' }, force: { type: 'boolean' } } });
  const name = values.name ?? os.hostname();
  if (!/^[\x20-\x7e]{1,64}$/.test(name)) throw new UsageError('--name must be 1 to 64 printable ASCII characters');
  const caDir = path.resolve(values.ca ?? defaultCaDir(io.env));
  const out = path.resolve(values.out ?? path.join(caDir, `client-${name.replace(/[^\w.-]/g, '_')}`));
  const { ca: authority, certPem: caPem } = await readCa(caDir);
  const issued = issueClient(authority, name, days(values.days, DEFAULT_DAYS.leaf));
  const { files, outputs } = await writeLeaf(out, 'client', caPem, issued, { ca: 'a copy of the CA certificate: the servers storm trusts', cert: `the client certificate "${name}"` }, Boolean(values.force));
  io.stdout.write(
    [
      `Made a client certificate valid until ${until(issued)}:`,
      ...listing(outputs),
      '',
      'Use the directory in each server\'s URI (no root needed; Terraform must be able to read the key):',
      `  libvirt_uri = "qemu+tls://HOST/system?pkipath=${out}"`,
      'or, for every connection root makes from this machine without a pkipath:',
      `  install -D -m 0644 ${files.ca} ${SYSTEM_PKI.caCert}`,
      `  install -D -m 0644 ${files.cert} ${SYSTEM_PKI.clientCert}`,
      `  install -D -m 0600 ${files.key} ${SYSTEM_PKI.clientKey}`,
      '',
    ].join('\n'),
  );
  return 0;
}

const SUBCOMMANDS: Record<string, { usage: string; run(args: string[], io: TlsCommandIO): Promise<number> }> = {
  ca: { usage: caUsage, run: ca },
  server: { usage: serverUsage, run: server },
  client: { usage: clientUsage, run: client },
};

export async function tlsCommand(args: string[], io: TlsCommandIO = defaultIO()): Promise<number> {
  const [name, ...rest] = args;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(tlsHelp);
    return name ? 0 : 2;
  }
  const sub = SUBCOMMANDS[name];
  if (!sub) {
    io.stderr.write(`storm tls: unknown step "${name}": expected ca, server or client.\nUsage: ${tlsUsage}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(tlsHelp);
    return 0;
  }
  try {
    return await sub.run(rest, io);
  } catch (e) {
    if (e instanceof UsageError || (e instanceof TypeError && 'code' in e && String(e.code).startsWith('ERR_PARSE_ARGS'))) {
      io.stderr.write(`storm tls ${name}: ${e.message}\nUsage: ${sub.usage}\n`);
      return 2;
    }
    if (e instanceof CertificateError) {
      io.stderr.write(`storm tls ${name}: ${e.message}\n`);
      return 1;
    }
    const err = e as NodeJS.ErrnoException;
    if (err.code && err.path) {
      io.stderr.write(`storm tls ${name}: ${err.code} on ${err.path}\n`);
      return 1;
    }
    throw e;
  }
}
