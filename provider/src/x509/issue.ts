// The three certificates of libvirt's TLS transport, as libvirt checks them (its
// virNetTLSContextCheckCert*): the CA is CA:TRUE with keyCertSign; a server or client
// certificate is CA:FALSE with digitalSignature + keyEncipherment, and its extendedKeyUsage
// names its role. A server needs only serverAuth: libvirtd presents servercert.pem when it
// serves and clientcert.pem when it is itself a client (peer-to-peer migration). No file I/O
// here: `storm tls` (tls.ts) decides where the PEM texts go.
import type { KeyObject } from 'node:crypto';
import { CertificateError, ipAddressBytes, issueCertificate, newKeyPair, privateKeyPem, toPem } from './certificate.ts';

export interface IssuedPair {
  certPem: string;
  keyPem: string;
  notAfter: Date;
}

export interface CertificateAuthority {
  certPem: string;
  key: KeyObject;
}

export const DEFAULT_DAYS = { ca: 3650, leaf: 825 } as const;

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
const DNS_NAME = /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function isIpAddress(text: string): boolean {
  try {
    ipAddressBytes(text);
    return true;
  } catch {
    return false;
  }
}

/** Splits server names into the SAN's DNS names and IP addresses; throws on anything else. */
export function sortHosts(hosts: readonly string[]): { dnsNames: string[]; ipAddresses: string[] } {
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  for (const h of hosts) {
    if (isIpAddress(h)) ipAddresses.push(h);
    else if (DNS_NAME.test(h) && !IPV4.test(h)) dnsNames.push(h.toLowerCase());
    else throw new CertificateError(`"${h}" is neither a host name nor an IP address`);
  }
  return { dnsNames, ipAddresses };
}

function notAfterOf(certPem: string): Date {
  const { X509Certificate } = process.getBuiltinModule('node:crypto');
  return new Date(new X509Certificate(certPem).validTo);
}

export function issueCa(commonName: string, validDays: number = DEFAULT_DAYS.ca): IssuedPair {
  const { privateKey, publicKey } = newKeyPair();
  const der = issueCertificate({
    subject: { organization: 'storm', commonName },
    publicKey,
    signer: { selfSigned: privateKey },
    validDays,
    ca: true,
    keyUsage: ['keyCertSign', 'cRLSign'],
  });
  const certPem = toPem('CERTIFICATE', der);
  return { certPem, keyPem: privateKeyPem(privateKey), notAfter: notAfterOf(certPem) };
}

/** Checks that a CA directory's certificate and key belong together and may sign. */
export function loadCa(certPem: string, keyPem: string): CertificateAuthority {
  const { X509Certificate, createPrivateKey } = process.getBuiltinModule('node:crypto');
  let cert;
  let key;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw new CertificateError(`the CA certificate cannot be read (${(err as Error).message})`);
  }
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new CertificateError(`the CA key cannot be read (${(err as Error).message})`);
  }
  if (!cert.ca) throw new CertificateError('the CA certificate is not a CA (basicConstraints CA:FALSE)');
  if (!cert.checkPrivateKey(key)) throw new CertificateError('the CA key does not belong to the CA certificate');
  if (Date.parse(cert.validTo) <= Date.now()) throw new CertificateError(`the CA certificate expired on ${cert.validTo}`);
  return { certPem, key };
}

function issueLeaf(ca: CertificateAuthority, commonName: string, role: 'serverAuth' | 'clientAuth', hosts: { dnsNames: string[]; ipAddresses: string[] }, validDays: number): IssuedPair {
  const { X509Certificate } = process.getBuiltinModule('node:crypto');
  const caCert = new X509Certificate(ca.certPem);
  const { privateKey, publicKey } = newKeyPair();
  // A certificate outliving its CA would only fail later, when the CA expires; stop at the CA's end.
  const caDaysLeft = Math.floor((Date.parse(caCert.validTo) - Date.now()) / 86_400_000);
  const der = issueCertificate({
    subject: { organization: 'storm', commonName },
    publicKey,
    signer: { ca: caCert.raw, key: ca.key },
    validDays: Math.max(1, Math.min(validDays, caDaysLeft)),
    ca: false,
    keyUsage: ['digitalSignature', 'keyEncipherment'],
    extendedKeyUsage: [role],
    ...hosts,
  });
  const certPem = toPem('CERTIFICATE', der);
  return { certPem, keyPem: privateKeyPem(privateKey), notAfter: notAfterOf(certPem) };
}

/** A server certificate naming every way clients reach the host (the URI's host must be one of them). */
export function issueServer(ca: CertificateAuthority, hosts: readonly string[], validDays: number = DEFAULT_DAYS.leaf): IssuedPair {
  if (hosts.length === 0) throw new CertificateError('a server certificate needs at least one host name or IP address');
  return issueLeaf(ca, hosts[0]!, 'serverAuth', sortHosts(hosts), validDays);
}

export function issueClient(ca: CertificateAuthority, commonName: string, validDays: number = DEFAULT_DAYS.leaf): IssuedPair {
  return issueLeaf(ca, commonName, 'clientAuth', { dnsNames: [], ipAddresses: [] }, validDays);
}
