// libvirt's PKI layout for qemu+tls://: the file names its TLS code looks for, where a host and a
// client keep them, and which files a given URI makes a client use. `storm tls` writes this
// layout; the diagnostics name these files when a TLS connection is refused.

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
