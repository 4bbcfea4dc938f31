// libvirt networks through virsh (the native binding has none): storm's NAT networks with
// DHCP and DNS host records. Each step is its own virsh call, so no step's failure hides
// behind the next one's success.
import { createHash } from 'node:crypto';
import { LibvirtError } from './errors.ts';
import { withXmlFile } from './volumes.ts';
import { virsh, virshQuote as q } from './virsh.ts';
import { escapeXml } from './xml.ts';

export interface DnsHost {
  hostname: string;
  ip: string;
}

export interface NetworkSpec {
  name: string;
  /** The Linux bridge: host-wide, so it must differ between servers that share a kernel (see bridgeName). */
  bridge: string;
  /** The first three octets of the /24, e.g. "192.168.150". */
  prefix: string;
  domain: string;
  hosts: readonly DnsHost[];
}

export interface NetworkObservation {
  bridge: string | null;
  hosts: DnsHost[];
  active: boolean;
}

/**
 * The bridge for network `name` on server `server`: at most 15 characters (the kernel's limit),
 * and distinct per server, because servers may share one kernel's bridges (several libvirtds
 * on one machine, as in the lab) and a network name is per server.
 */
export function bridgeName(server: string, name: string): string {
  const tag = createHash('sha256').update(`${server}\u0000${name}`).digest('hex').slice(0, 4);
  return `sb${tag}-${name}`.slice(0, 15);
}

function dnsHostsXml(hosts: readonly DnsHost[]): string {
  const byIp = new Map<string, string[]>();
  for (const h of hosts) byIp.set(h.ip, [...(byIp.get(h.ip) ?? []), h.hostname]);
  return [...byIp].map(([ip, names]) => `<host ip='${escapeXml(ip)}'>${names.map((n) => `<hostname>${escapeXml(n)}</hostname>`).join('')}</host>`).join('');
}

export function networkXml(s: NetworkSpec): string {
  return (
    // no-ping: dnsmasq otherwise pings each address before offering it, 3 s per lease.
    `<network xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'><name>${escapeXml(s.name)}</name><forward mode='nat'/><bridge name='${escapeXml(s.bridge)}' stp='off'/>` +
    `<domain name='${escapeXml(s.domain)}' localOnly='yes'/><dns>${dnsHostsXml(s.hosts)}</dns>` +
    `<ip address='${s.prefix}.1' netmask='255.255.255.0'><dhcp><range start='${s.prefix}.100' end='${s.prefix}.254'/></dhcp></ip>` +
    `<dnsmasq:options><dnsmasq:option value='no-ping'/></dnsmasq:options></network>`
  );
}

export function parseDnsHosts(xml: string): DnsHost[] {
  const out: DnsHost[] = [];
  for (const m of xml.matchAll(/<host ip='([^']+)'>([\s\S]*?)<\/host>/g)) {
    for (const n of m[2]!.matchAll(/<hostname>([^<]+)<\/hostname>/g)) out.push({ hostname: n[1]!, ip: m[1]! });
  }
  return out;
}

const NO_NETWORK = /Network not found|no network with matching name/i;

export async function getNetwork(uri: string, name: string): Promise<NetworkObservation | null> {
  let xml: string;
  let info: string;
  try {
    xml = await virsh(uri, `net-dumpxml ${q(name)}`);
    info = await virsh(uri, `net-info ${q(name)}`);
  } catch (err) {
    if (err instanceof LibvirtError && NO_NETWORK.test(err.message)) return null;
    throw err;
  }
  return { bridge: /<bridge name='([^']+)'/.exec(xml)?.[1] ?? null, hosts: parseDnsHosts(xml), active: /^Active:\s+yes/m.test(info) };
}

/** A network that cannot start because its addresses or bridge are taken. */
export class NetworkConflictError extends LibvirtError {}

/** Defines, starts and autostarts a network; a failed step undefines it again. */
export async function createNetwork(uri: string, spec: NetworkSpec): Promise<void> {
  await withXmlFile(networkXml(spec), (file) => virsh(uri, `net-define ${q(file)}`));
  try {
    await virsh(uri, `net-start ${q(spec.name)}`);
    await virsh(uri, `net-autostart ${q(spec.name)}`);
  } catch (err) {
    await virsh(uri, `net-destroy ${q(spec.name)}`).catch(() => {});
    await virsh(uri, `net-undefine ${q(spec.name)}`).catch(() => {});
    if (err instanceof LibvirtError && /address already in use|already in use|overlap/i.test(err.message)) throw new NetworkConflictError(err.message);
    throw err;
  }
}

/** Changes DNS host records in the running dnsmasq and the stored definition, without a restart. */
export async function updateDnsHosts(uri: string, name: string, remove: readonly DnsHost[], add: readonly DnsHost[]): Promise<void> {
  const record = (h: DnsHost) => q(`<host ip='${escapeXml(h.ip)}'><hostname>${escapeXml(h.hostname)}</hostname></host>`);
  for (const h of remove) await virsh(uri, `net-update ${q(name)} delete dns-host ${record(h)} --live --config`);
  for (const h of add) await virsh(uri, `net-update ${q(name)} add-last dns-host ${record(h)} --live --config`);
}

/** Stops and undefines; false when there was nothing to remove. */
export async function removeNetwork(uri: string, name: string): Promise<boolean> {
  await virsh(uri, `net-destroy ${q(name)}`).catch(() => {});
  try {
    await virsh(uri, `net-undefine ${q(name)}`);
    return true;
  } catch (err) {
    if (err instanceof LibvirtError && NO_NETWORK.test(err.message)) return false;
    throw err;
  }
}
