// virsh covers what the native binding lacks (storage pools, versions). One virsh process
// can run several commands separated by ';', which keeps reads to one process per host.
import { LibvirtError, LibvirtUnreachableError } from './errors.ts';

const CONNECT_FAILURE = /failed to connect to the hypervisor|unable to connect to server|Cannot recv data|Connection refused|No route to host|Failed to connect socket/i;

export async function virsh(uri: string, commands: string, timeoutMs = 60_000): Promise<string> {
  const { execa } = await import('execa');
  const result = await execa('virsh', ['-q', '-c', uri, commands], { reject: false, timeout: timeoutMs, env: { LC_ALL: 'C' } });
  if (result.exitCode === 0 && !result.timedOut) return result.stdout;
  const message = String(result.stderr || result.stdout || result.shortMessage || '').replace(/^error: /gm, '').trim().split('\n').filter(Boolean).join('; ');
  if (result.timedOut) throw new LibvirtUnreachableError(uri, `no answer within ${timeoutMs / 1000} s`);
  if (CONNECT_FAILURE.test(message)) throw new LibvirtUnreachableError(uri, message);
  throw new LibvirtError(message);
}

/** Quotes one argument for virsh's own command parser. */
export function virshQuote(arg: string): string {
  return `'${arg.replace(/'/g, "'\\''")}'`;
}
