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
  uuid: string | null;
  bridge: string | null;
  /** The first three octets of the host's address, as in NetworkSpec; null if it has none. */
  prefix: string | null;
  domain: string | null;
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
  return {
    uuid: /<uuid>([^<]+)<\/uuid>/.exec(xml)?.[1] ?? null,
    bridge: /<bridge name='([^']+)'/.exec(xml)?.[1] ?? null,
    prefix: /<ip address='(\d+\.\d+\.\d+)\.\d+'/.exec(xml)?.[1] ?? null,
    domain: /<domain name='([^']+)'/.exec(xml)?.[1] ?? null,
    hosts: parseDnsHosts(xml),
    active: /^Active:\s+yes/m.test(info),
  };
}

/** A network that cannot be defined or started because its addresses or bridge are taken. */
export class NetworkConflictError extends LibvirtError {}

// "Network is already in use by interface X" (the addresses), "bridge name 'X' already in use".
const CONFLICT = /already in use|overlap/i;

async function conflictsNamed<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof LibvirtError && !(err instanceof NetworkConflictError) && CONFLICT.test(err.message)) throw new NetworkConflictError(err.message);
    throw err;
  }
}

/** Starts a defined network (its dnsmasq and bridge); NetworkConflictError when its addresses or bridge are taken. */
export async function startNetwork(uri: string, name: string): Promise<void> {
  await conflictsNamed(() => virsh(uri, `net-start ${q(name)}`));
}

/** Stops a running network; its definition stays. */
export async function stopNetwork(uri: string, name: string): Promise<void> {
  await virsh(uri, `net-destroy ${q(name)}`);
}

/** Whether libvirtd starts the network when it starts (a host boot). */
export async function setNetworkAutostart(uri: string, name: string, on: boolean): Promise<void> {
  await virsh(uri, `net-autostart ${q(name)}${on ? '' : ' --disable'}`);
}

/**
 * Defines a network and, when `active`, starts and autostarts it; a failed step undefines it
 * again, so a create leaves nothing or a running network.
 */
export async function createNetwork(uri: string, spec: NetworkSpec, active = true): Promise<void> {
  await conflictsNamed(() => withXmlFile(networkXml(spec), (file) => virsh(uri, `net-define ${q(file)}`)));
  try {
    if (active) await startNetwork(uri, spec.name);
    await setNetworkAutostart(uri, spec.name, active);
  } catch (err) {
    await virsh(uri, `net-destroy ${q(spec.name)}`).catch(() => {});
    await virsh(uri, `net-undefine ${q(spec.name)}`).catch(() => {});
    throw err;
  }
}

/** One DNS record as a comparable string. */
export const dnsHostKey = (h: DnsHost) => `${h.ip} ${h.hostname}`;

const sameHosts = (a: readonly DnsHost[], b: readonly DnsHost[]): boolean => a.length === b.length && a.every((h) => b.some((o) => dnsHostKey(o) === dnsHostKey(h)));

/**
 * Takes over a network found with this spec's name and bridge (see bridgeName: the bridge is
 * what marks it as made for this server and name, e.g. by a create interrupted between define
 * and start): a definition that differs from the spec is replaced (stopping it if it runs, as
 * libvirt applies a new definition only at start), then it is started and autostarted like a
 * new one. A failed start leaves it defined: it was there before, and the next apply adopts
 * it again. The caller checks the mark; this trusts it.
 */
export async function adoptNetwork(uri: string, spec: NetworkSpec, seen: NetworkObservation, active = true): Promise<void> {
  const differs = seen.prefix !== spec.prefix || seen.domain !== spec.domain || !sameHosts(seen.hosts, spec.hosts);
  let running = seen.active;
  if (differs) {
    if (running) await stopNetwork(uri, spec.name);
    running = false;
    // The same UUID: libvirt refuses a second definition of a name under a new one.
    const xml = networkXml(spec).replace('</name>', seen.uuid ? `</name><uuid>${escapeXml(seen.uuid)}</uuid>` : '</name>');
    await conflictsNamed(() => withXmlFile(xml, (file) => virsh(uri, `net-define ${q(file)}`)));
  }
  if (active && !running) await startNetwork(uri, spec.name);
  if (!active && running) await stopNetwork(uri, spec.name);
  await setNetworkAutostart(uri, spec.name, active);
}

/**
 * Changes DNS host records in the stored definition and, when `live` (the network runs: libvirt
 * refuses --live otherwise), in the running dnsmasq, without a restart.
 */
export async function updateDnsHosts(uri: string, name: string, remove: readonly DnsHost[], add: readonly DnsHost[], live = true): Promise<void> {
  const record = (h: DnsHost) => q(`<host ip='${escapeXml(h.ip)}'><hostname>${escapeXml(h.hostname)}</hostname></host>`);
  const where = live ? '--live --config' : '--config';
  for (const h of remove) await virsh(uri, `net-update ${q(name)} delete dns-host ${record(h)} ${where}`);
  for (const h of add) await virsh(uri, `net-update ${q(name)} add-last dns-host ${record(h)} ${where}`);
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
