// Typed driver failures: resources decide which attribute they blame and what fix to suggest.
export class LibvirtUnreachableError extends Error {
  constructor(readonly uri: string, readonly reason: string) {
    super(`libvirt at ${uri} did not answer: ${reason}`);
  }
}

export class LibvirtError extends Error {}

export class IpmiAuthError extends Error {}
export class IpmiUnreachableError extends Error {}
export class IpmiError extends Error {}
