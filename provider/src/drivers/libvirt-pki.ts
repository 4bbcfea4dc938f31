// libvirt's PKI layout for qemu+tls://: the file names its TLS code looks for, where a host and a
// client keep them, and which files a given URI makes a client use. `storm tls` writes this
// layout; the diagnostics name these files when a TLS connection is refused.
import { existsSync } from 'node:fs';

/** File names inside a PKI directory (libvirt's, plus cakey.pem for storm's CA directory). */
export const PKI_FILE = {
  caCert: 'cacert.pem',
  caKey: 'cakey.pem',
  serverCert: 'servercert.pem',
  serverKey: 'serverkey.pem',
  clientCert: 'clientcert.pem',
  clientKey: 'clientkey.pem',
} as const;

/** Where libvirtd (and a client running as root) finds them by default. */
export const SYSTEM_PKI = {
  caCert: '/etc/pki/CA/cacert.pem',
  serverCert: '/etc/pki/libvirt/servercert.pem',
  serverKey: '/etc/pki/libvirt/private/serverkey.pem',
  clientCert: '/etc/pki/libvirt/clientcert.pem',
  clientKey: '/etc/pki/libvirt/private/clientkey.pem',
} as const;

export interface ClientPki {
  caCert: string;
  clientCert: string;
  clientKey: string;
  /** How to say where they came from, e.g. "pkipath=/etc/storm/tls" or "the system PKI". */
  origin: string;
}

/** The transport of a libvirt URI (`tls` for qemu+tls://), or null for a local one. */
export function transportOf(uri: string): string | null {
  return /^[a-z]+\+([a-z0-9]+):/.exec(uri)?.[1] ?? null;
}

/**
 * The files a libvirt client uses for `uri`: the URI's `pkipath` directory when it has one;
 * otherwise the system locations for root, and for anyone else ~/.pki/libvirt (libvirt falls
 * back to the system file for each one missing there, which is not modelled: messages name
 * the per-user file, the one to create).
 */
export function clientPki(uri: string, env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.() ?? 0): ClientPki {
  const query = uri.includes('?') ? new URLSearchParams(uri.slice(uri.indexOf('?') + 1)) : null;
  const pkipath = query?.get('pkipath');
  if (pkipath) {
    const dir = pkipath.replace(/\/+$/, '');
    return { caCert: `${dir}/${PKI_FILE.caCert}`, clientCert: `${dir}/${PKI_FILE.clientCert}`, clientKey: `${dir}/${PKI_FILE.clientKey}`, origin: `pkipath=${pkipath}` };
  }
  if (uid === 0 || !env.HOME) return { ...SYSTEM_PKI, origin: 'the system PKI' };
  const dir = `${env.HOME}/.pki/libvirt`;
  return { caCert: `${dir}/${PKI_FILE.caCert}`, clientCert: `${dir}/${PKI_FILE.clientCert}`, clientKey: `${dir}/${PKI_FILE.clientKey}`, origin: `${dir} (no pkipath in the URI)` };
}

/**
 * What went wrong in a TLS connection, read from libvirt's words (libvirt 9). libvirt reports
 * a failed check of the server's certificate only as "Failed to verify peer's certificate"; the
 * reason is in the warning it logs just before, which virsh prints on stderr (virsh.ts keeps it).
 */
export type TlsProblem =
  /** The server's certificate is not signed by the CA in the client's cacert.pem. */
  | 'server-untrusted'
  /** The server's certificate does not name the host in the URI. */
  | 'server-name'
  /** The server's certificate has expired or is not valid yet. */
  | 'server-expired'
  /** The server's certificate failed another check, or libvirt did not say which. */
  | 'server-rejected'
  /** The client has no certificate, and the server requires one. */
  | 'client-missing'
  /** The server closed the connection after the handshake: it refused the client's certificate. */
  | 'client-refused'
  /** The client's own certificate is not signed by the client's own cacert.pem. */
  | 'client-mismatch'
  /** The client's certificate or key cannot be read. */
  | 'client-unreadable'
  /** There is no CA certificate where the client looks. */
  | 'ca-missing'
  /** No TLS conversation at all: not a libvirt TLS listener at that address and port. */
  | 'handshake';

const SERVER_CHECK_FAILED = /Failed to verify peer's certificate/i;
const SERVER_REASONS: readonly [RegExp, TlsProblem][] = [
  [/hasn't got a known issuer|is not trusted|signer not found/i, 'server-untrusted'],
  [/does not match the hostname/i, 'server-name'],
  [/has expired|not yet activated|expiration|activation/i, 'server-expired'],
];
const CLIENT_REASONS: readonly [RegExp, TlsProblem][] = [
  [/Unable to read TLS confirmation/i, 'client-refused'],
  [/Our own certificate .* failed validation/i, 'client-mismatch'],
  [/Cannot read CA certificate/i, 'ca-missing'],
  [/Unable to load certificate|Cannot read (certificate|private key)/i, 'client-unreadable'],
  [/TLS handshake failed/i, 'handshake'],
];

/** The TLS problem libvirt's message describes for a connection to `uri`, or null for any other failure. */
export function tlsProblemOf(uri: string, message: string, pki: ClientPki = clientPki(uri)): TlsProblem | null {
  if (transportOf(uri) !== 'tls') return null;
  if (SERVER_CHECK_FAILED.test(message)) return SERVER_REASONS.find(([re]) => re.test(message))?.[1] ?? 'server-rejected';
  const problem = CLIENT_REASONS.find(([re]) => re.test(message))?.[1] ?? null;
  // libvirt connects without a client certificate when it finds none; the server then hangs up
  // as it does for a certificate it refuses. The missing file tells the two apart.
  if (problem === 'client-refused' && !existsSync(pki.clientCert)) return 'client-missing';
  return problem;
}
