// virsh covers what the native binding lacks (storage pools, volumes, networks, versions).
// Transient refusals are retried here, a bounded number of times with backoff; everything else
// fails at once with a typed error (drivers/errors.ts).
import { LibvirtError, LibvirtUnreachableError, unreachable } from './errors.ts';

const CONNECT_FAILURE = /failed to connect to the hypervisor|unable to connect to server|Cannot recv data|Connection refused|No route to host|Failed to connect socket/i;

/**
 * Failures that say "not now" rather than "no". `always`: libvirt refused before doing anything
 * (a pool-refresh while an upload runs), so any command may be tried again. `reads`: the
 * connection broke mid-call, so only a command that changes nothing may be tried again (a create
 * may have happened).
 */
const TRANSIENT = {
  always: /has asynchronous jobs running|is locked by another|Timed out during operation: cannot acquire state change lock/i,
  reads: /Connection reset by peer|End of file while reading data|Broken pipe/i,
};
const READ_ONLY = /^(\S+-)?(dumpxml|list|info|refresh|nodeinfo|hostname|version|capabilities|dhcp-leases|download|uri)\b|^(nodeinfo|hostname|version|capabilities|uri|list)\b/;

/** Attempts and the first backoff: 100, 200, 400, 800, 1600 ms (about 3 s in all). */
export const RETRY = { attempts: 6, firstDelayMs: 100 };

function retryable(command: string, message: string): boolean {
  if (TRANSIENT.always.test(message)) return true;
  return TRANSIENT.reads.test(message) && READ_ONLY.test(command.trim());
}

/** libvirt's own log lines on stderr: "2026-11-30 11:40:52.817+0000: 25912: warning : func:1086 : text". */
const LOG_LINE = /^\d{4}-\d\d-\d\d [\d:.]+[+-]\d{4}: \d+: (\w+) : (?:\w+:\d+ : )?(.*)$/;

/**
 * virsh's complaint as one line. Its log lines are dropped, except warnings and errors: some
 * failures say why only there (a refused TLS certificate: "Failed to verify peer's certificate"
 * is the error, the reason is the warning before it).
 */
export function virshMessage(output: string): string {
  const errors: string[] = [];
  const logged: string[] = [];
  for (const line of output.split('\n')) {
    const log = LOG_LINE.exec(line);
    if (log) {
      if (log[1] === 'warning' || log[1] === 'error') logged.push(log[2]!.trim());
    } else if (line.trim()) {
      errors.push(line.replace(/^error: /, '').trim());
    }
  }
  return errors.join('; ') + (logged.length ? ` (${logged.join('; ')})` : '');
}

async function runOnce(uri: string, command: string, timeoutMs: number): Promise<{ ok: true; stdout: string } | { ok: false; message: string; timedOut: boolean }> {
  const { execa } = await import('execa');
  const result = await execa('virsh', ['-q', '-c', uri, command], { reject: false, timeout: timeoutMs, env: { LC_ALL: 'C' } });
  if (result.exitCode === 0 && !result.timedOut) return { ok: true, stdout: result.stdout };
  const message = virshMessage(String(result.stderr || result.stdout || result.shortMessage || ''));
  return { ok: false, message, timedOut: Boolean(result.timedOut) };
}

/**
 * Runs a virsh command. A batch (commands joined by ';') exits with its last command's status
 * only, so storm batches nothing but reads whose every result it checks (volumes.ts).
 */
export async function virsh(uri: string, command: string, timeoutMs = 60_000): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    const r = await runOnce(uri, command, timeoutMs);
    if (r.ok) return r.stdout;
    if (r.timedOut) throw new LibvirtUnreachableError(uri, `no answer within ${timeoutMs / 1000} s`);
    if (attempt < RETRY.attempts && retryable(command, r.message)) {
      await new Promise((resolve) => setTimeout(resolve, RETRY.firstDelayMs * 2 ** (attempt - 1)));
      continue;
    }
    if (CONNECT_FAILURE.test(r.message)) throw unreachable(uri, r.message);
    // The connection broke under a command that changes things: the server went away (a crash,
    // a power cut), which is not libvirt refusing the command.
    if (TRANSIENT.reads.test(r.message)) throw new LibvirtUnreachableError(uri, `the connection broke during ${command.split(' ')[0]}: ${r.message}`);
    throw new LibvirtError(attempt > 1 ? `${r.message} (still, after ${attempt} attempts)` : r.message);
  }
}

/** Quotes one argument for virsh's own command parser. */
export function virshQuote(arg: string): string {
  return `'${arg.replace(/'/g, "'\\''")}'`;
}
