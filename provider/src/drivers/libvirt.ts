// An appliance server's libvirt: capacity, storm's storage pool, liveness.
import type { Hypervisor } from '@unraid/libvirt';
import { LibvirtError, LibvirtTlsError, LibvirtUnreachableError, unreachable } from './errors.ts';
import { virsh, virshQuote } from './virsh.ts';
import { kibToMibFloor } from '../rules.ts';

export interface HostObservation {
  cpus: number;
  memoryMib: number;
  hostname: string;
  /** e.g. "QEMU 7.2.0" */
  hypervisor: string;
  pools: ReadonlyMap<string, { active: boolean }>;
  runningDomains: number;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * How long one native call may take before the caller is told the server does not answer. A
 * libvirt call whose reply never comes (seen once under heavy TCG load: a controller round
 * waited forever on a call that never settled) must fail, not stall a long-running process;
 * the abandoned call's connection is left to libvirt's keepalive.
 */
const OPEN_DEADLINE_MS = 30_000;
const CALL_DEADLINE_MS = 120_000;
const CLOSE_DEADLINE_MS = 5_000;

function withDeadline<T>(work: Promise<T>, ms: number, onLate: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onLate()), ms);
    timer.unref();
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/** Connects through the native binding; a refused, dead or silent connection becomes LibvirtUnreachableError. */
export async function withConnection<T>(uri: string, use: (h: Hypervisor) => Promise<T>): Promise<T> {
  // Loaded on first use: the binding pulls an XML library that would slow every provider start,
  // and most provider processes (validate, plan of unchanged config) never touch libvirt.
  const { Hypervisor } = await import('@unraid/libvirt');
  const hypervisor = new Hypervisor({ uri });
  const silent = (ms: number) => () => unreachable(uri, `no answer within ${ms / 1000} s`);
  try {
    await withDeadline(hypervisor.connectOpen(), OPEN_DEADLINE_MS, silent(OPEN_DEADLINE_MS));
  } catch (err) {
    if (err instanceof LibvirtUnreachableError) throw err;
    throw unreachable(uri, errorText(err));
  }
  try {
    return await withDeadline(use(hypervisor), CALL_DEADLINE_MS, silent(CALL_DEADLINE_MS));
  } finally {
    await withDeadline(hypervisor.connectClose(), CLOSE_DEADLINE_MS, silent(CLOSE_DEADLINE_MS)).catch(() => {});
  }
}

/**
 * Capacity, pools and hypervisor of a host, as it is now (sessions cache it: host/session.ts).
 * Read with virsh, one command per fact and all at once: no failure hides behind another's
 * success, and observing needs no native connection (the binding costs a process ~26 MiB,
 * which a plan that only observes servers never needs).
 */
export async function readHost(uri: string): Promise<HostObservation> {
  const [nodeinfo, hostname, running, version, poolList] = await Promise.all(
    ['nodeinfo', 'hostname', 'list --name', 'version', 'pool-list --all'].map((command) => virsh(uri, command)),
  );
  const cpus = Number(/^CPU\(s\):\s*(\d+)/m.exec(nodeinfo!)?.[1] ?? NaN);
  const memoryKib = Number(/^Memory size:\s*(\d+) KiB/m.exec(nodeinfo!)?.[1] ?? NaN);
  if (!Number.isFinite(cpus) || !Number.isFinite(memoryKib)) throw new LibvirtError(`libvirt at ${uri} answered nodeinfo without CPUs or memory: ${nodeinfo!.trim()}`);
  const pools = new Map<string, { active: boolean }>();
  for (const line of poolList!.split('\n')) {
    const m = /^\s*(\S+)\s+(active|inactive)\s/.exec(line);
    if (m) pools.set(m[1]!, { active: m[2] === 'active' });
  }
  return {
    cpus,
    memoryMib: kibToMibFloor(memoryKib),
    hostname: hostname!.trim(),
    hypervisor: /Running hypervisor:\s*(.+)/.exec(version!)?.[1]?.trim() ?? 'unknown',
    pools,
    runningDomains: running!.split('\n').filter((l) => l.trim()).length,
  };
}

/**
 * Defines (unless `defined`), builds, starts and autostarts a dir pool, one step at a time so
 * that no step's failure hides behind the next one's success; undoes its own steps if one fails.
 */
export async function createPool(uri: string, name: string, path: string, defined: boolean): Promise<void> {
  const q = virshQuote(name);
  if (defined) {
    await virsh(uri, `pool-start ${q}`).catch((err: unknown) => {
      if (!(err instanceof LibvirtError && /already active/i.test(err.message))) throw err;
    });
    return;
  }
  try {
    await virsh(uri, `pool-define-as ${q} dir --target ${virshQuote(path)}`);
  } catch (err) {
    // Another process (a parallel terraform run) defined it first: that is what we wanted.
    if (!(err instanceof LibvirtError && /already exists/i.test(err.message))) throw err;
    await virsh(uri, `pool-start ${q}`).catch(() => {});
    return;
  }
  try {
    for (const step of ['pool-build', 'pool-start', 'pool-autostart']) await virsh(uri, `${step} ${q}`);
  } catch (err) {
    await virsh(uri, `pool-destroy ${q}`).catch(() => {});
    await virsh(uri, `pool-undefine ${q}`).catch(() => {});
    throw err;
  }
}

export type PoolRemoval = { removed: true } | { removed: false; volumes: number };

const GONE = /not found|no storage pool/i;

/**
 * Removes a pool when it holds no volumes but storm's own `records` (volumes are appliances
 * someone may still need).
 */
export async function removePool(uri: string, name: string, records: readonly string[]): Promise<PoolRemoval> {
  const q = virshQuote(name);
  let volumes = '';
  try {
    volumes = await virsh(uri, `vol-list ${q}`);
  } catch (err) {
    if (err instanceof LibvirtError && GONE.test(err.message)) return { removed: true };
    if (!(err instanceof LibvirtError && /not active/i.test(err.message))) throw err;
  }
  const names = volumes.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter(Boolean);
  const count = names.filter((n) => !records.includes(n)).length;
  if (count > 0) return { removed: false, volumes: count };
  for (const r of names) await virsh(uri, `vol-delete --pool ${q} ${virshQuote(r)}`).catch(() => {});
  await virsh(uri, `pool-destroy ${q}`).catch(() => {});
  await virsh(uri, `pool-delete ${q}`).catch(() => {});
  try {
    await virsh(uri, `pool-undefine ${q}`);
  } catch (err) {
    // A parallel run removed it between our steps.
    if (!(err instanceof LibvirtError && GONE.test(err.message))) throw err;
  }
  return { removed: true };
}

/** Polls until libvirt answers; throws LibvirtUnreachableError with the last cause at the deadline. */
export async function waitUntilReachable(uri: string, timeoutMs: number, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    try {
      await withConnection(uri, async () => undefined);
      return;
    } catch (err) {
      // A refused certificate will be refused again: fail now. The binding's message is only
      // libvirt's summary; virsh also prints the reason (see virsh.ts), so ask it once.
      if (err instanceof LibvirtTlsError) {
        await virsh(uri, 'uri');
        throw err;
      }
      last = errorText(err instanceof LibvirtUnreachableError ? err.reason : err);
    }
    if (Date.now() >= deadline) throw new LibvirtUnreachableError(uri, `still unreachable after ${Math.round(timeoutMs / 1000)} s (${last})`);
    if (signal.aborted) throw new LibvirtUnreachableError(uri, 'stopped while waiting (Terraform was interrupted)');
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Whether the host's libvirt offers KVM (hardware virtualization) for QEMU domains. */
export async function offersKvm(uri: string): Promise<boolean> {
  const caps = await virsh(uri, 'capabilities');
  return /<domain type='kvm'/.test(caps);
}
