// X.509 v3 certificates built with our own DER encoder and signed with node:crypto: the
// self-signed certificate of go-plugin's AutoMTLS (protocol/tls-cert.ts) and a small CA for
// libvirt's TLS transport (cli/tls.ts) are both profiles of `issueCertificate`.
//
// node:crypto is fetched inside the functions, not imported: the provider makes its AutoMTLS
// certificate before its handshake line, and an ESM import reads every export of node:crypto
// (webcrypto included); fetched here, it loads only for a program that makes a certificate.
import type { KeyObject } from 'node:crypto';
import {
  bitString,
  boolean,
  contextExplicit,
  contextPrimitive,
  integer,
  namedBits,
  nullValue,
  octetString,
  oid,
  printableString,
  sequence,
  set,
  utf8String,
  x509Time,
} from './der.ts';
import { children, contents, encoding, readTlv, DerError } from './der-read.ts';

export type KeyUsage = 'digitalSignature' | 'keyEncipherment' | 'keyCertSign' | 'cRLSign';
export type ExtendedKeyUsage = 'serverAuth' | 'clientAuth';

export interface DistinguishedName {
  commonName: string;
  organization?: string;
}

/** Who signs: a CA (its certificate and key), or the new certificate's own key. */
export type Signer = { ca: Buffer; key: KeyObject } | { selfSigned: KeyObject };

export interface CertificateProfile {
  subject: DistinguishedName;
  publicKey: KeyObject;
  signer: Signer;
  validDays: number;
  /** basicConstraints cA: whether this certificate may sign others. */
  ca: boolean;
  keyUsage: readonly KeyUsage[];
  extendedKeyUsage?: readonly ExtendedKeyUsage[];
  dnsNames?: readonly string[];
  /** IPv4 or IPv6 literals, for clients that connect by address (a TLS name check then matches the address). */
  ipAddresses?: readonly string[];
}

export class CertificateError extends Error {}

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

// keyUsage NamedBitList positions (RFC 5280 §4.2.1.3).
const KEY_USAGE_BIT: Record<KeyUsage, number> = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 };

// A certificate that becomes valid in the same second it is checked is fragile against a
// peer's clock being a little behind; go-plugin backdates its own certificates similarly.
const BACKDATE_MS = 60_000;
const DAY_MS = 86_400_000;

const crypto = () => process.getBuiltinModule('node:crypto');

/** A fresh ECDSA P-256 key pair: accepted by Go's crypto/tls and by GnuTLS (libvirt) alike. */
export function newKeyPair(): { privateKey: KeyObject; publicKey: KeyObject } {
  return crypto().generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}

export function toPem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

export const privateKeyPem = (key: KeyObject): string => key.export({ type: 'pkcs8', format: 'pem' }).toString();

function directoryString(text: string): Buffer {
  return /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(text) ? printableString(text) : utf8String(text);
}

function distinguishedName(dn: DistinguishedName): Buffer {
  return sequence(
    ...(dn.organization === undefined ? [] : [set(sequence(oid(OID.organization), directoryString(dn.organization)))]),
    set(sequence(oid(OID.commonName), directoryString(dn.commonName))),
  );
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  // DER omits DEFAULT values, so a non-critical extension carries no BOOLEAN at all.
  return critical ? sequence(oid(id), boolean(true), octetString(value)) : sequence(oid(id), octetString(value));
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits (for EC, the point). */
function keyIdentifier(publicKey: KeyObject): Buffer {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const [, bits] = children(spki, readTlv(spki));
  if (!bits || bits.tag !== 0x03) throw new CertificateError('public key without a subjectPublicKey BIT STRING');
  return crypto().createHash('sha1').update(contents(spki, bits).subarray(1)).digest();
}

/** How `key` signs: the algorithm identifier written into the certificate and node's options. */
function signatureAlgorithm(key: KeyObject): Buffer {
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return sequence(oid(OID.ecdsaWithSha256));
  if (key.asymmetricKeyType === 'rsa') return sequence(oid(OID.sha256WithRsa), nullValue());
  throw new CertificateError(`cannot sign with a ${key.asymmetricKeyType ?? 'unknown'} key${key.asymmetricKeyDetails?.namedCurve ? ` on ${key.asymmetricKeyDetails.namedCurve}` : ''}: storm signs with ECDSA P-256 or RSA keys`);
}

/** The issuer's subject (exactly as encoded) and key identifier, taken from its certificate. */
export function issuerOf(caDer: Buffer): { name: Buffer; keyId: Buffer | null } {
  try {
    const [tbs] = children(caDer, readTlv(caDer));
    if (!tbs) throw new DerError('no tbsCertificate');
    const fields = children(caDer, tbs);
    // version [0] is present in every v3 certificate; serial, signature, issuer, validity follow.
    const first = fields[0]?.tag === 0xa0 ? 1 : 0;
    const subject = fields[first + 4];
    if (!subject) throw new DerError('no subject');
    let keyId: Buffer | null = null;
    const exts = fields.find((f) => f.tag === 0xa3);
    if (exts) {
      const [list] = children(caDer, exts);
      for (const ext of list ? children(caDer, list) : []) {
        const parts = children(caDer, ext);
        if (!encoding(caDer, parts[0]!).equals(oid(OID.subjectKeyIdentifier))) continue;
        const value = contents(caDer, parts[parts.length - 1]!);
        keyId = Buffer.from(contents(value, readTlv(value)));
      }
    }
    return { name: Buffer.from(encoding(caDer, subject)), keyId };
  } catch (err) {
    if (err instanceof DerError) throw new CertificateError(`the CA certificate cannot be read: ${err.message}`);
    throw err;
  }
}

/** An IP literal as the 4 or 16 bytes of a GeneralName iPAddress. */
export function ipAddressBytes(text: string): Buffer {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4) {
    const bytes = v4.slice(1).map(Number);
    if (bytes.every((b) => b <= 255)) return Buffer.from(bytes);
  } else if (text.includes(':') && /^[0-9a-fA-F:]+$/.test(text)) {
    const halves = text.split('::');
    const groups = (s: string | undefined) => (s ? s.split(':') : []);
    const head = groups(halves[0]);
    const tail = groups(halves[1]);
    const missing = 8 - head.length - tail.length;
    const all = halves.length === 2 && missing >= 1 ? [...head, ...Array<string>(missing).fill('0'), ...tail] : halves.length === 1 ? head : [];
    if (all.length === 8 && all.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) {
      const out = Buffer.alloc(16);
      all.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
      return out;
    }
  }
  throw new CertificateError(`not an IP address: ${text}`);
}

function subjectAltName(dnsNames: readonly string[], ipAddresses: readonly string[]): Buffer {
  // GeneralName dNSName is [2] IMPLICIT IA5String and iPAddress [7] IMPLICIT OCTET STRING: the
  // context tag replaces the type's own.
  return sequence(
    ...dnsNames.map((n) => {
      if (!/^[\x21-\x7e]+$/.test(n)) throw new CertificateError(`not a DNS name: ${JSON.stringify(n)}`);
      return contextPrimitive(2, Buffer.from(n, 'ascii'));
    }),
    ...ipAddresses.map((ip) => contextPrimitive(7, ipAddressBytes(ip))),
  );
}

/** Builds and signs a certificate; returns its DER. */
export function issueCertificate(p: CertificateProfile): Buffer {
  if (!Number.isFinite(p.validDays) || p.validDays <= 0) throw new RangeError(`validDays must be positive, got ${p.validDays}`);
  const { randomBytes, sign } = crypto();
  const signingKey = 'ca' in p.signer ? p.signer.key : p.signer.selfSigned;
  const subject = distinguishedName(p.subject);
  const ownKeyId = keyIdentifier(p.publicKey);
  const issuer = 'ca' in p.signer ? issuerOf(p.signer.ca) : { name: subject, keyId: null };
  const algorithm = signatureAlgorithm(signingKey);

  // Positive, non-zero, fixed 16 bytes: well under the 20-octet limit and unique per call.
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x40;
  const now = Date.now();

  const dnsNames = p.dnsNames ?? [];
  const ipAddresses = p.ipAddresses ?? [];
  const extensions = sequence(
    // A leaf says CA:FALSE explicitly (an empty SEQUENCE: cA's DEFAULT FALSE is omitted), since
    // libvirt and strict verifiers check that a peer's certificate is not a CA.
    extension(OID.basicConstraints, true, p.ca ? sequence(boolean(true)) : sequence()),
    extension(OID.keyUsage, true, namedBits(p.keyUsage.map((u) => KEY_USAGE_BIT[u]))),
    ...(p.extendedKeyUsage?.length ? [extension(OID.extKeyUsage, false, sequence(...p.extendedKeyUsage.map((u) => oid(OID[u]))))] : []),
    ...(dnsNames.length + ipAddresses.length > 0 ? [extension(OID.subjectAltName, false, subjectAltName(dnsNames, ipAddresses))] : []),
    // RFC 5280 requires a CA to carry a subjectKeyIdentifier (OpenSSL's strict mode enforces
    // it) and an issued certificate to name its issuer's key, which is how verifiers pick the
    // issuer when a CA has been re-keyed under the same name.
    extension(OID.subjectKeyIdentifier, false, octetString(ownKeyId)),
    ...(issuer.keyId ? [extension(OID.authorityKeyIdentifier, false, sequence(contextPrimitive(0, issuer.keyId)))] : []),
  );

  const tbs = sequence(
    contextExplicit(0, integer(2)), // version v3
    integer(serial),
    algorithm,
    issuer.name,
    sequence(x509Time(new Date(now - BACKDATE_MS)), x509Time(new Date(now + p.validDays * DAY_MS))),
    subject,
    p.publicKey.export({ type: 'spki', format: 'der' }),
    contextExplicit(3, extensions),
  );
  const signature = sign('sha256', tbs, { key: signingKey, dsaEncoding: 'der' });
  return sequence(tbs, algorithm, bitString(signature));
}
