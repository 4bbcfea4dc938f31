// Typed driver failures: resources decide which attribute they blame and what fix to suggest.
import { clientPki, tlsProblemOf, type ClientPki, type TlsProblem } from './libvirt-pki.ts';

export class LibvirtUnreachableError extends Error {
  constructor(readonly uri: string, readonly reason: string) {
    super(`libvirt at ${uri} did not answer: ${reason}`);
  }
}

/**
 * A qemu+tls:// connection refused over certificates: the host is up and answering, so waiting
 * or retrying cannot help; the fix is a file on one side or the other.
 */
export class LibvirtTlsError extends LibvirtUnreachableError {
  constructor(uri: string, reason: string, readonly problem: TlsProblem, readonly pki: ClientPki) {
    super(uri, reason);
    this.message = `libvirt at ${uri} refused the TLS connection: ${reason}`;
  }
}

/** The failure to connect to `uri` that libvirt's `reason` describes. */
export function unreachable(uri: string, reason: string): LibvirtUnreachableError {
  const pki = clientPki(uri);
  const problem = tlsProblemOf(uri, reason, pki);
  return problem ? new LibvirtTlsError(uri, reason, problem, pki) : new LibvirtUnreachableError(uri, reason);
}

export class LibvirtError extends Error {}

export class IpmiAuthError extends Error {}
export class IpmiUnreachableError extends Error {}
export class IpmiError extends Error {}
