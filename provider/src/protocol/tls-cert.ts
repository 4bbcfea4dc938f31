// Self-signed certificate for go-plugin AutoMTLS. Terraform pins exactly this certificate
// (sent base64 DER on the handshake line), so it only has to satisfy Go's crypto/x509 checks:
// Go ignores the CN and matches the SAN, and a pinned root still needs CA:TRUE + keyCertSign.
import { issueCertificate, newKeyPair, privateKeyPem, toPem } from '../x509/certificate.ts';

export interface ServerCertificateOptions {
  commonName?: string;
  validDays?: number;
}

export interface ServerCertificate {
  certPem: string;
  keyPem: string;
  certDer: Buffer;
}

export function createServerCertificate(options: ServerCertificateOptions = {}): ServerCertificate {
  const { privateKey, publicKey } = newKeyPair();
  const certDer = issueCertificate({
    subject: { organization: 'storm', commonName: options.commonName ?? 'localhost' },
    publicKey,
    signer: { selfSigned: privateKey },
    validDays: options.validDays ?? 365,
    ca: true,
    keyUsage: ['digitalSignature', 'keyEncipherment', 'keyCertSign'],
    // One certificate for both ends: go-plugin uses it as the server's and Terraform's client's.
    extendedKeyUsage: ['serverAuth', 'clientAuth'],
    dnsNames: ['localhost'],
  });
  return { certPem: toPem('CERTIFICATE', certDer), keyPem: privateKeyPem(privateKey), certDer };
}
