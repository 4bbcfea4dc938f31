// Self-signed certificate for go-plugin AutoMTLS. Terraform pins exactly this certificate
// (sent base64 DER on the handshake line), so it only has to satisfy Go's crypto/x509 checks:
// Go ignores the CN and matches the SAN, and a pinned root still needs CA:TRUE + keyCertSign.
import {
  boolean,
  contextExplicit,
  contextPrimitive,
  bitString,
  integer,
  namedBits,
  octetString,
  oid,
  printableString,
  sequence,
  set,
  utf8String,
  x509Time,
} from './der.ts';

export interface ServerCertificateOptions {
  commonName?: string;
  validDays?: number;
}

export interface ServerCertificate {
  certPem: string;
  keyPem: string;
  certDer: Buffer;
}

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

// keyUsage NamedBitList positions (RFC 5280 §4.2.1.3).
const KEY_USAGE = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5 } as const;

// Clock skew between us and Terraform is nil (same host), but a cert that becomes valid in
// the same second it is checked is fragile; go-plugin backdates its own certs similarly.
const BACKDATE_MS = 60_000;
const DAY_MS = 86_400_000;

function directoryString(text: string): Buffer {
  return /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(text) ? printableString(text) : utf8String(text);
}

function name(commonName: string): Buffer {
  return sequence(
    set(sequence(oid(OID.organization), directoryString('storm'))),
    set(sequence(oid(OID.commonName), directoryString(commonName))),
  );
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  // DER omits DEFAULT values, so a non-critical extension carries no BOOLEAN at all.
  return critical ? sequence(oid(id), boolean(true), octetString(value)) : sequence(oid(id), octetString(value));
}

function toPem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

export function createServerCertificate(options: ServerCertificateOptions = {}): ServerCertificate {
  const commonName = options.commonName ?? 'localhost';
  const validDays = options.validDays ?? 365;
  if (!Number.isFinite(validDays) || validDays <= 0) throw new RangeError(`validDays must be positive, got ${validDays}`);

  // Not `import ... from 'node:crypto'`: the provider makes this certificate before its
  // handshake line, and an ESM import reads every export of node:crypto (webcrypto included);
  // fetched here, node:crypto loads only for a program that makes a certificate.
  const { createHash, generateKeyPairSync, randomBytes, sign } = process.getBuiltinModule('node:crypto');
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });

  // RFC 5280 requires CA certificates to carry a subjectKeyIdentifier (and OpenSSL's strict
  // mode enforces it); method 1: SHA-1 of the subjectPublicKey bits, i.e. the EC point.
  const jwk = publicKey.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from([0x04]), Buffer.from(jwk.x ?? '', 'base64url'), Buffer.from(jwk.y ?? '', 'base64url')]);
  const keyId = createHash('sha1').update(point).digest();

  // Positive, non-zero, fixed 16 bytes: well under the 20-octet limit and unique per call.
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x40;

  const now = Date.now();
  const notBefore = new Date(now - BACKDATE_MS);
  const notAfter = new Date(now + validDays * DAY_MS);

  const signatureAlgorithm = sequence(oid(OID.ecdsaWithSha256));
  const subject = name(commonName);

  const extensions = sequence(
    extension(OID.basicConstraints, true, sequence(boolean(true))),
    extension(
      OID.keyUsage,
      true,
      namedBits([KEY_USAGE.digitalSignature, KEY_USAGE.keyEncipherment, KEY_USAGE.keyCertSign]),
    ),
    extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth), oid(OID.clientAuth))),
    // GeneralName dNSName is [2] IMPLICIT IA5String: the tag replaces IA5String's own.
    extension(OID.subjectAltName, false, sequence(contextPrimitive(2, Buffer.from('localhost', 'ascii')))),
    extension(OID.subjectKeyIdentifier, false, octetString(keyId)),
  );

  const tbs = sequence(
    contextExplicit(0, integer(2)), // version v3
    integer(serial),
    signatureAlgorithm,
    subject, // issuer: self-signed
    sequence(x509Time(notBefore), x509Time(notAfter)),
    subject,
    spki,
    contextExplicit(3, extensions),
  );

  const signature = sign('sha256', tbs, { key: privateKey, dsaEncoding: 'der' });
  const certDer = sequence(tbs, signatureAlgorithm, bitString(signature));

  return {
    certPem: toPem('CERTIFICATE', certDer),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    certDer,
  };
}
