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

/** One `<host>` element of a network's `<dns>`: libvirt keeps at most one per address (net-update refuses a second). */
export interface DnsHostElement {
  ip: string;
  hostnames: string[];
}

/**
 * The mark of a DNS host record storm's controller keeps for a scaling group: a second hostname
 * `GROUP.storm-group.invalid` next to the group's name. libvirt 9.0 has no metadata on networks
 * or records, and a hostname is the only thing a record carries besides its address. `.invalid`
 * (RFC 6761) never resolves anywhere else, so the mark cannot collide with a real name.
 */
export const GROUP_MARK_SUFFIX = '.storm-group.invalid';
export const groupMark = (group: string): string => `${group}${GROUP_MARK_SUFFIX}`;

/** The scaling group whose record this is, or null for any other record (a storm_network host block's, one made by hand). */
export function groupOfRecord(e: DnsHostElement): string | null {
  const mark = e.hostnames.find((n) => n.toLowerCase().endsWith(GROUP_MARK_SUFFIX));
  return mark === undefined ? null : mark.slice(0, -GROUP_MARK_SUFFIX.length).toLowerCase();
}

/**
 * The dnsmasq option that makes every name the network serves from its host records (and DHCP
 * leases) answer MX with itself, preference 1: how a scaling group's name answers MX. libvirt's
 * net-update has no MX section and dnsmasq re-reads MX only at a restart, while host records
 * change live; `selfmx` turns the live A records into MX answers. For names with no MX, SMTP
 * senders use the A records anyway (RFC 5321 §5.1's implicit MX), so this changes no delivery.
 */
export const MX_OPTION = 'selfmx';

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
  /** The records storm_network owns: scaling groups' records (groupOfRecord) are left out. */
  hosts: DnsHost[];
  /** Whether names answer MX (MX_OPTION): networks made before storm set it do not. */
  mx: boolean;
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

/** The hostnames per address, in first-seen order. */
function namesByIp(hosts: readonly DnsHost[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const h of hosts) {
    const names = out.get(h.ip) ?? [];
    if (!names.includes(h.hostname)) names.push(h.hostname);
    out.set(h.ip, names);
  }
  return out;
}

const sameNames = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((n) => b.includes(n));

/** `<host ip='IP'/>`: libvirt's delete matches a record by its address or by any hostname in common, so only the address picks exactly one. */
export const dnsHostDeleteXml = (ip: string): string => `<host ip='${escapeXml(ip)}'/>`;

export const dnsHostElementXml = (e: DnsHostElement): string =>
  `<host ip='${escapeXml(e.ip)}'>${e.hostnames.map((n) => `<hostname>${escapeXml(n)}</hostname>`).join('')}</host>`;

function dnsHostsXml(hosts: readonly DnsHost[]): string {
  return [...namesByIp(hosts)].map(([ip, hostnames]) => dnsHostElementXml({ ip, hostnames })).join('');
}

export function networkXml(s: NetworkSpec): string {
  return (
    // no-ping: dnsmasq otherwise pings each address before offering it, 3 s per lease.
    `<network xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'><name>${escapeXml(s.name)}</name><forward mode='nat'/><bridge name='${escapeXml(s.bridge)}' stp='off'/>` +
    `<domain name='${escapeXml(s.domain)}' localOnly='yes'/><dns>${dnsHostsXml(s.hosts)}</dns>` +
    `<ip address='${s.prefix}.1' netmask='255.255.255.0'><dhcp><range start='${s.prefix}.100' end='${s.prefix}.254'/></dhcp></ip>` +
    `<dnsmasq:options><dnsmasq:option value='no-ping'/><dnsmasq:option value='${MX_OPTION}'/></dnsmasq:options></network>`
  );
}

/** Undoes libvirt's escaping of text and attribute values. */
export function unescapeXml(s: string): string {
  const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', apos: "'", quot: '"' };
  return s.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|apos|quot);/gi, (all, e: string) => {
    if (e[0] !== '#') return named[e.toLowerCase()] ?? all;
    return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : Number(e.slice(1)));
  });
}

/** An attribute of an element's start tag, either quote style, unescaped; null when absent. */
export function xmlAttribute(tag: string, name: string): string | null {
  const m = new RegExp(`\\s${name}\\s*=\\s*(?:'([^']*)'|"([^"]*)")`).exec(tag);
  return m ? unescapeXml(m[1] ?? m[2]!) : null;
}

/** The inside of the network's `<dns>` element: DHCP's `<host>` elements (under `<ip>`) are no DNS records. */
export function dnsSection(xml: string): string {
  return /<dns(?:\s[^>]*)?>([\s\S]*?)<\/dns>/.exec(xml)?.[1] ?? '';
}

/** Every `<host>` element of the network's `<dns>`, in order. */
export function parseDnsHostElements(xml: string): DnsHostElement[] {
  const out: DnsHostElement[] = [];
  for (const m of dnsSection(xml).matchAll(/<host(\s[^>]*?)(?:\/>|>([\s\S]*?)<\/host>)/g)) {
    const ip = xmlAttribute(m[1]!, 'ip');
    if (ip === null) continue;
    const hostnames = [...(m[2] ?? '').matchAll(/<hostname>([^<]*)<\/hostname>/g)].map((n) => unescapeXml(n[1]!).trim()).filter(Boolean);
    out.push({ ip, hostnames });
  }
  return out;
}

/** The records storm_network owns, one per hostname: records scaling groups own are not among them. */
export function parseDnsHosts(xml: string): DnsHost[] {
  return parseDnsHostElements(xml)
    .filter((e) => groupOfRecord(e) === null)
    .flatMap((e) => e.hostnames.map((hostname) => ({ hostname, ip: e.ip })));
}

/** Whether the network's dnsmasq answers MX for the names it serves (MX_OPTION). */
export function answersMx(xml: string): boolean {
  return [...xml.matchAll(/<dnsmasq:option(\s[^>]*?)\/?>/g)].some((m) => xmlAttribute(m[1]!, 'value') === MX_OPTION);
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
    mx: answersMx(xml),
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
 * it again. The caller checks the mark; this trusts it. One left by an older storm, without
 * MX_OPTION, differs: it is a create, so it ends as a new network would. Scaling groups'
 * records are no part of the comparison; a replaced definition drops them, and the
 * controller's next pass writes them again.
 */
export async function adoptNetwork(uri: string, spec: NetworkSpec, seen: NetworkObservation, active = true): Promise<void> {
  const differs = seen.prefix !== spec.prefix || seen.domain !== spec.domain || !seen.mx || !sameHosts(seen.hosts, spec.hosts);
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

/** An address that already has a DNS record on the network: libvirt keeps one record per address. */
export class DnsAddressTakenError extends LibvirtError {
  constructor(readonly network: string, readonly ip: string, readonly group: string | null, readonly hostnames: readonly string[]) {
    const whose = group ? `scaling group "${group}"'s record (one of its members has that address)` : `a record for ${hostnames.join(', ') || 'another name'}`;
    super(`network "${network}" already has a DNS record for ${ip}: ${whose}; libvirt keeps one record per address`);
  }
}

const ADDRESS_TAKEN = /already at least one DNS HOST record with a matching field/i;

async function explainTakenAddress(uri: string, name: string, ip: string, err: unknown): Promise<never> {
  if (!(err instanceof LibvirtError) || !ADDRESS_TAKEN.test(err.message)) throw err;
  const xml = await virsh(uri, `net-dumpxml ${q(name)}`).catch(() => '');
  const holder = parseDnsHostElements(xml).find((e) => e.ip === ip);
  throw new DnsAddressTakenError(name, ip, holder ? groupOfRecord(holder) : null, holder?.hostnames ?? []);
}

/**
 * Makes the network's host records go from `before` to `after` (a storm_network's `host`
 * blocks), in the stored definition and, when `live` (the network runs: libvirt refuses --live
 * otherwise), in the running dnsmasq, without a restart. Records are changed per address, as
 * libvirt keeps them: an address whose hostnames change is deleted and written again with the
 * hostnames it keeps. Records at other addresses, and a scaling group's record at any address
 * (`before` may be stale: apply -refresh=false), stay.
 */
export async function updateDnsHosts(uri: string, name: string, before: readonly DnsHost[], after: readonly DnsHost[], live = true): Promise<void> {
  const where = live ? '--live --config' : '--config';
  const was = namesByIp(before);
  const will = namesByIp(after);
  const changed = [...new Set([...was.keys(), ...will.keys()])].filter((ip) => !sameNames(was.get(ip) ?? [], will.get(ip) ?? []));
  if (changed.length === 0) return;
  const present = new Map(parseDnsHostElements(await virsh(uri, `net-dumpxml ${q(name)}`)).map((e) => [e.ip, e]));
  const ours = (ip: string) => present.has(ip) && groupOfRecord(present.get(ip)!) === null;
  for (const ip of changed.filter((ip) => was.has(ip) && ours(ip))) await virsh(uri, `net-update ${q(name)} delete dns-host ${q(dnsHostDeleteXml(ip))} ${where}`);
  for (const ip of changed.filter((ip) => will.has(ip))) {
    const xml = dnsHostElementXml({ ip, hostnames: will.get(ip)! });
    await virsh(uri, `net-update ${q(name)} add-last dns-host ${q(xml)} ${where}`).catch((err: unknown) => explainTakenAddress(uri, name, ip, err));
  }
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
