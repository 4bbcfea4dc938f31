// Domains through the native libvirt binding: define, lifecycle, facts. Leases come from
// the network driver (virsh), which the binding does not cover.
import type { Domain, Hypervisor } from '@unraid/libvirt';
import { parseDomainXml, STORM_XMLNS, type DomainFacts } from './domain-xml.ts';
import { LibvirtError } from './errors.ts';
import { withConnection } from './libvirt.ts';
import { virsh, virshQuote as q } from './virsh.ts';

export type DomainState = 'running' | 'paused' | 'shutoff';

export interface DomainObservation extends DomainFacts {
  name: string;
  state: DomainState;
  /** Defined by storm (carries storm's metadata element). */
  storm: boolean;
}

const NO_DOMAIN = /Domain not found|no domain with matching (name|uuid)/i;

/** The binding's failure for a domain that is not (or no longer) defined. */
export function isNoDomain(err: unknown): boolean {
  return NO_DOMAIN.test(String((err as Error | undefined)?.message ?? err));
}

/** libvirt's state code (virDomainState) in storm's three states. */
export function stateName(code: number): DomainState {
  // 1 running, 2 blocked (running, waiting on I/O), 3 paused, 7 pm-suspended; the rest are off.
  return code === 1 || code === 2 ? 'running' : code === 3 || code === 7 ? 'paused' : 'shutoff';
}

async function lookup(h: Hypervisor, name: string): Promise<Domain | null> {
  try {
    return await h.domainLookupByName(name);
  } catch (err) {
    if (isNoDomain(err)) return null;
    throw err;
  }
}

async function observe(d: Domain): Promise<DomainObservation> {
  const [info, xml, name] = await Promise.all([d.getInfo(), d.getXMLDesc(), d.getName()]);
  return { ...parseDomainXml(xml), name, state: stateName(info.state), storm: xml.includes(STORM_XMLNS) };
}

export function getDomain(uri: string, name: string): Promise<DomainObservation | null> {
  return withConnection(uri, async (h) => {
    const d = await lookup(h, name);
    return d ? observe(d) : null;
  });
}

/** Every domain on the host: placement counts what they were promised. */
export function listDomains(uri: string): Promise<DomainObservation[]> {
  return withConnection(uri, async (h) => {
    const seen = await Promise.all(
      (await h.connectListAllDomains()).map((d) =>
        // A domain undefined between the listing and the look (a parallel destroy) is simply gone.
        observe(d).catch((err: unknown) => {
          if (isNoDomain(err)) return null;
          throw err;
        }),
      ),
    );
    return seen.filter((d): d is DomainObservation => d !== null);
  });
}

export function defineDomain(uri: string, xml: string): Promise<void> {
  return withConnection(uri, async (h) => {
    await h.domainDefineXML(xml);
  });
}

/** Moves a domain to the wanted state from whatever it is in. */
export function setDomainState(uri: string, name: string, want: DomainState): Promise<void> {
  return withConnection(uri, async (h) => {
    const d = await lookup(h, name);
    if (!d) throw new LibvirtError(`domain ${name} does not exist`);
    const now = stateName((await d.getInfo()).state);
    if (now === want) return;
    if (want === 'shutoff') return d.destroy();
    if (now === 'shutoff') await d.create();
    if (want === 'paused') await d.suspend();
    else if (now === 'paused') await d.resume();
  });
}

/** Stops (hard) and undefines; false when there was nothing to remove. */
export function removeDomain(uri: string, name: string): Promise<boolean> {
  return withConnection(uri, async (h) => {
    const d = await lookup(h, name);
    if (!d) return false;
    if (stateName((await d.getInfo()).state) !== 'shutoff') await d.destroy().catch(() => {});
    await d.undefine();
    return true;
  });
}

export async function leaseIp(uri: string, network: string, mac: string): Promise<string | null> {
  const out = await virsh(uri, `net-dhcp-leases ${q(network)} --mac ${q(mac)}`).catch(() => '');
  const m = /\s(\d+\.\d+\.\d+\.\d+)\/\d+/.exec(out);
  return m ? m[1]! : null;
}

export async function waitForLease(uri: string, network: string, mac: string, timeoutMs: number, signal: AbortSignal): Promise<string | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ip = await leaseIp(uri, network, mac);
    if (ip || Date.now() >= deadline || signal.aborted) return ip;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Grows the disk of a running domain (qemu sees it at once); volumes of stopped ones are resized directly. */
export async function growRunningDisk(uri: string, name: string, bytes: number): Promise<void> {
  await virsh(uri, `blockresize ${q(name)} vda ${bytes}B`);
}
