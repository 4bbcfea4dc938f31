// go-plugin's handshake: the environment Terraform sets, and the one line we answer on stdout.
export const MAGIC_COOKIE_KEY = 'TF_PLUGIN_MAGIC_COOKIE';
export const MAGIC_COOKIE_VALUE = 'd602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2';
export const CORE_PROTOCOL_VERSION = 1;
export const APP_PROTOCOL_VERSION = 6;

export function startedByTerraform(env: NodeJS.ProcessEnv): boolean {
  return env[MAGIC_COOKIE_KEY] === MAGIC_COOKIE_VALUE;
}

/** Undefined when Terraform offers protocol 6, else a message for a human. */
export function protocolMismatch(env: NodeJS.ProcessEnv): string | undefined {
  const offered = (env.PLUGIN_PROTOCOL_VERSIONS ?? String(APP_PROTOCOL_VERSION)).split(',').map((v) => v.trim());
  if (offered.includes(String(APP_PROTOCOL_VERSION))) return undefined;
  return `storm speaks Terraform plugin protocol ${APP_PROTOCOL_VERSION}, but this Terraform offers ${offered.join(', ')}. Use Terraform 1.0 or newer (or OpenTofu).`;
}

/** Go decodes the certificate with RawStdEncoding: base64 without '=' padding. */
export function handshakeLine(socketPath: string, serverCertDer: Uint8Array | undefined): string {
  const cert = serverCertDer ? Buffer.from(serverCertDer).toString('base64').replace(/=+$/, '') : '';
  return `${CORE_PROTOCOL_VERSION}|${APP_PROTOCOL_VERSION}|unix|${socketPath}|grpc|${cert}\n`;
}
