// A scaling group's DNS records on one storm network: round-robin A records for its running
// members, MX and SRV, kept in step as members come and go without restarting the network (the
// paper's mail cluster, whose MX and A records followed its instances). What libvirt 9.0 and
// dnsmasq allow decides how each kind of record is made:
//
// - A: one dns-host record per member address, `<host ip='A'><hostname>NAME</hostname>
//   <hostname>NAME.storm-group.invalid</hostname></host>`. NAME is the bare group name: libvirt
//   gives dnsmasq `expand-hosts`, so it answers NAME and NAME.DOMAIN (the network's domain) alike,
//   and reverse lookups give NAME.DOMAIN. The second hostname is the controller's mark
//   (networks.ts groupOfRecord), how storm_network tells these records from its own. net-update
//   rewrites dnsmasq's hosts file and sends it SIGHUP: dnsmasq keeps running, same pid.
//   libvirt keeps one record per address, and its delete matches by address or by any hostname
//   in common, so records are deleted by address alone (the group's records share NAME).
// - MX: libvirt has no MX section and dnsmasq reads MX only when it starts, so MX comes from the
//   network's `selfmx` (networks.ts MX_OPTION): every name it serves from host records or leases
//   answers MX with itself, preference 1. NAME's MX is NAME, and NAME's A records spread the
//   mail. It cannot be withheld from one name: `mx: false` only means "not required".
// - SRV: net-update dns-srv puts `srv-host` in dnsmasq's configuration file, which dnsmasq reads
//   only when it starts, so libvirt restarts dnsmasq for every SRV change (not the network: the
//   bridge and the guests' links stay). Hence one SRV per service, `_SERVICE._PROTO.NAME.DOMAIN`
//   with target NAME.DOMAIN, whose A records do the round-robin: members coming and going never
//   touch the SRV records; only a change of the group's services restarts dnsmasq. libvirt also
//   matches SRV records without their port, so a group offers one port per service and protocol.
//
// Each change goes to the running network and to its stored definition (--live --config), or to
// the definition alone while the network is stopped; the two are compared with what is wanted
// separately, so a change made to only one of them by hand is mended in that one.
//
// Failures are GroupDnsError, whose message names the group, the network and the server and says
// the fix: the controller logs them as they are, with no diagnostics layer in between.
import { NAME_PATTERN } from '../rules.ts';
import { LibvirtError, LibvirtUnreachableError } from './errors.ts';
import {
  answersMx,
  dnsHostDeleteXml,
  dnsHostElementXml,
  dnsSection,
  groupMark,
  groupOfRecord,
  parseDnsHostElements,
  xmlAttribute,
  type DnsHostElement,
} from './networks.ts';
import { virsh, virshQuote as q } from './virsh.ts';
import { escapeXml } from './xml.ts';

export interface GroupService {
  /** The service's name as SRV owner names carry it (RFC 6335: 1–15 letters, digits, "-"), e.g. "smtp". */
  service: string;
  protocol: 'tcp' | 'udp';
  port: number;
}

export interface GroupDns {
  /** The group's DNS name, one label ("mail"): served bare and qualified with the network's domain. */
  name: string;
  /** Every running member's IPv4 address: an A record each. None: no A record. */
  addresses: readonly string[];
  /** The name must answer MX (the network's selfmx; see the file's comment). */
  mx: boolean;
  srv: readonly GroupService[];
}

export interface GroupDnsChange {
  /** Records written, e.g. "A mail 192.168.251.10", "SRV _smtp._tcp.mail.storm.internal mail.storm.internal:25". */
  added: string[];
  /** Records deleted, in the same form. */
  removed: string[];
}

/** What kept the records from being what was asked for, so a caller can tell waiting from fixing. */
export type GroupDnsProblem = 'invalid' | 'no-network' | 'unreachable' | 'refused' | 'conflict' | 'no-mx';

export class GroupDnsError extends Error {
  constructor(readonly problem: GroupDnsProblem, message: string) {
    super(message);
    this.name = 'GroupDnsError';
  }
}

/** An SRV record as libvirt keeps it; priority and weight are 0 when absent. */
export interface SrvRecord {
  service: string;
  protocol: string;
  domain: string | null;
  target: string | null;
  port: number | null;
  priority: number;
  weight: number;
}

/** What a network's definition (live or stored) says about DNS. */
export interface DnsView {
  domain: string | null;
  hosts: DnsHostElement[];
  srv: SrvRecord[];
  mx: boolean;
}

/** One net-update: `record` is how added/removed name it. */
export interface DnsOp {
  command: 'delete' | 'add-last';
  section: 'dns-host' | 'dns-srv';
  xml: string;
  record: string;
}

export interface DnsConflict {
  ip: string;
  /** Whose record it is, said for people. */
  holder: string;
}

export interface DnsPlan {
  /** Deletes first, so an address or service is free before it is written again. */
  ops: DnsOp[];
  /** Addresses the group wants that another record holds. */
  conflicts: DnsConflict[];
  /** The group wants MX and the network does not answer MX. */
  mxMissing: boolean;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const isIpv4 = (s: string): boolean => IPV4.test(s) && s.split('.').every((o) => Number(o) <= 255 && String(Number(o)) === o);

// " 2026-11-30 14:59:47   52:54:00:aa:bb:01   ipv4   192.168.251.101/24   mail-0   01:52:…": the
// MAC followed by the protocol is what marks a lease line (the client id may look like a MAC too).
const LEASE = /(?:^|\s)((?:[0-9a-f]{2}:){5}[0-9a-f]{2})\s+ipv4\s+(\S+?)(?:\/\d{1,2})?(?=\s|$)/i;
const EXPIRY = /^\s*(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)/;

/**
 * MAC (lowercase) → IPv4 address from `virsh net-dhcp-leases` output, header or not. A MAC with
 * several leases (a renewal's old one not yet expired) keeps the one that expires last; IPv6
 * leases and lines that are no lease are skipped.
 */
export function parseLeases(output: string): Map<string, string> {
  const best = new Map<string, { ip: string; expiry: string }>();
  for (const line of output.split('\n')) {
    const m = LEASE.exec(line);
    if (!m || !isIpv4(m[2]!)) continue;
    const mac = m[1]!.toLowerCase();
    const expiry = EXPIRY.exec(line)?.[1] ?? '';
    const seen = best.get(mac);
    if (!seen || expiry >= seen.expiry) best.set(mac, { ip: m[2]!, expiry });
  }
  return new Map([...best].map(([mac, l]) => [mac, l.ip]));
}

const numberOr = (s: string | null, fallback: number): number => (s !== null && /^\d+$/.test(s) ? Number(s) : fallback);

export function parseSrvRecords(xml: string): SrvRecord[] {
  return [...dnsSection(xml).matchAll(/<srv(\s[^>]*?)\/?>/g)].map((m) => {
    const tag = m[1]!;
    const port = xmlAttribute(tag, 'port');
    return {
      service: xmlAttribute(tag, 'service') ?? '',
      protocol: xmlAttribute(tag, 'protocol') ?? '',
      domain: xmlAttribute(tag, 'domain'),
      target: xmlAttribute(tag, 'target'),
      port: port === null ? null : numberOr(port, -1),
      priority: numberOr(xmlAttribute(tag, 'priority'), 0),
      weight: numberOr(xmlAttribute(tag, 'weight'), 0),
    };
  });
}

export function dnsView(xml: string): DnsView {
  const domain = /<domain(\s[^>]*?)\/?>/.exec(xml);
  return { domain: domain ? xmlAttribute(domain[1]!, 'name') : null, hosts: parseDnsHostElements(xml), srv: parseSrvRecords(xml), mx: answersMx(xml) };
}

/** NAME.DOMAIN, or NAME on a network without a domain: the owner of the group's SRV records and their target. */
export const qualifiedName = (name: string, domain: string | null): string => (domain ? `${name}.${domain}` : name);

const sameNames = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((n) => b.includes(n));

function holderOf(e: DnsHostElement): string {
  const group = groupOfRecord(e);
  if (group !== null) return `scaling group "${group}"'s record, released when that group's records are next written`;
  return `the record for ${e.hostnames.map((n) => `"${n}"`).join(', ') || 'no name'}, a storm_network host block or one made by hand`;
}

function planHosts(view: DnsView, want: GroupDns): { ops: DnsOp[]; conflicts: DnsConflict[] } {
  const names = [want.name, groupMark(want.name)];
  const wanted = new Set(want.addresses);
  const byIp = new Map(view.hosts.map((e) => [e.ip, e]));
  const record = (ip: string) => `A ${want.name} ${ip}`;
  const deletes: DnsOp[] = [];
  const adds: DnsOp[] = [];
  const conflicts: DnsConflict[] = [];
  for (const e of view.hosts) {
    if (groupOfRecord(e) !== want.name) continue;
    // A record of the group's with other hostnames (edited by hand) is written again, whole.
    if (!wanted.has(e.ip) || !sameNames(e.hostnames, names)) deletes.push({ command: 'delete', section: 'dns-host', xml: dnsHostDeleteXml(e.ip), record: record(e.ip) });
  }
  for (const ip of wanted) {
    const e = byIp.get(ip);
    if (e && groupOfRecord(e) !== want.name) conflicts.push({ ip, holder: holderOf(e) });
    else if (!e || !sameNames(e.hostnames, names)) adds.push({ command: 'add-last', section: 'dns-host', xml: dnsHostElementXml({ ip, hostnames: names }), record: record(ip) });
  }
  return { ops: [...deletes, ...adds], conflicts };
}

function srvXml(s: Pick<SrvRecord, 'service' | 'protocol' | 'domain' | 'target' | 'port'>): string {
  const attrs: [string, string | number | null][] = [['service', s.service], ['protocol', s.protocol], ['domain', s.domain], ['target', s.target], ['port', s.port]];
  return `<srv${attrs.filter(([, v]) => v !== null).map(([k, v]) => ` ${k}='${escapeXml(String(v))}'`).join('')}/>`;
}

const srvRecordName = (s: SrvRecord): string => `SRV _${s.service}._${s.protocol}.${s.domain ?? ''} ${s.target ?? '.'}:${s.port ?? '?'}`;

function planSrv(view: DnsView, want: GroupDns): DnsOp[] {
  const owner = qualifiedName(want.name, view.domain).toLowerCase();
  const wanted: SrvRecord[] = want.srv.map((s) => ({ service: s.service, protocol: s.protocol, domain: owner, target: owner, port: s.port, priority: 0, weight: 0 }));
  const key = (s: SrvRecord) => [s.service, s.protocol, s.domain?.toLowerCase(), s.target?.toLowerCase(), s.port, s.priority, s.weight].join(' ');
  const present = view.srv.filter((s) => s.domain?.toLowerCase() === owner);
  const presentKeys = new Set(present.map(key));
  const wantedKeys = new Set(wanted.map(key));
  // Deleted by service, protocol, domain and target exactly as found: libvirt matches SRV records
  // on those four only (not the port), so that picks the one record.
  const deletes = present.filter((s) => !wantedKeys.has(key(s))).map((s): DnsOp => ({ command: 'delete', section: 'dns-srv', xml: srvXml({ ...s, port: null }), record: srvRecordName(s) }));
  const adds = wanted.filter((s) => !presentKeys.has(key(s))).map((s): DnsOp => ({ command: 'add-last', section: 'dns-srv', xml: srvXml(s), record: srvRecordName(s) }));
  return [...deletes, ...adds];
}

/** The net-updates that make one definition (live or stored) hold exactly the group's records. */
export function planGroupDns(view: DnsView, want: GroupDns): DnsPlan {
  const hosts = planHosts(view, want);
  const srv = planSrv(view, want);
  const ops = [...hosts.ops, ...srv].sort((a, b) => Number(a.command === 'add-last') - Number(b.command === 'add-last'));
  return { ops, conflicts: hosts.conflicts, mxMissing: want.mx && !view.mx };
}

/** One virsh net-update with the definitions it applies to. */
export interface DnsStep extends DnsOp {
  flags: '--live --config' | '--live' | '--config';
}

/** The live and stored plans as one list of calls: a change both need is one call with both flags. */
export function mergeScopes(live: readonly DnsOp[] | null, config: readonly DnsOp[]): DnsStep[] {
  const key = (op: DnsOp) => `${op.command} ${op.section} ${op.xml}`;
  const inLive = new Set((live ?? []).map(key));
  const inConfig = new Set(config.map(key));
  const steps = new Map<string, DnsStep>();
  for (const op of [...(live ?? []), ...config]) {
    const k = key(op);
    if (steps.has(k)) continue;
    const flags = inLive.has(k) && inConfig.has(k) ? '--live --config' : inLive.has(k) ? '--live' : '--config';
    steps.set(k, { ...op, flags });
  }
  return [...steps.values()].sort((a, b) => Number(a.command === 'add-last') - Number(b.command === 'add-last'));
}

const SERVICE = /^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/;

function invalid(want: GroupDns): string | null {
  if (!NAME_PATTERN.test(want.name)) return `"${want.name}" is not a DNS name storm can give a group: use one label of 1–63 lowercase letters, digits and "-", starting and ending with a letter or digit (the network's domain is added to it)`;
  const bad = want.addresses.find((a) => !isIpv4(a));
  if (bad !== undefined) return `"${bad}" is not an IPv4 address`;
  const seen = new Set<string>();
  for (const s of want.srv) {
    if (!SERVICE.test(s.service)) return `SRV service "${s.service}" is not a service name: use 1–15 lowercase letters, digits and "-" (e.g. "smtp")`;
    if (s.protocol !== 'tcp' && s.protocol !== 'udp') return `SRV protocol "${String(s.protocol)}" of service "${s.service}" is neither "tcp" nor "udp"`;
    if (!Number.isInteger(s.port) || s.port < 1 || s.port > 65535) return `SRV port ${s.port} of service "${s.service}" is not a port (1–65535)`;
    if (seen.has(`${s.service}/${s.protocol}`)) return `SRV service "${s.service}" over ${s.protocol} is given twice: libvirt keeps one port per service and protocol for a name`;
    seen.add(`${s.service}/${s.protocol}`);
  }
  return null;
}

const NO_NETWORK = /Network not found|no network with matching name/i;

/** libvirt's failures as GroupDnsError, naming the network and the server and what to do. */
async function explained<T>(uri: string, network: string, doing: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof GroupDnsError) throw err;
    if (err instanceof LibvirtUnreachableError) {
      throw new GroupDnsError('unreachable', `The server at ${uri} did not answer while ${doing} on network "${network}" (${err.reason}): power it on or start its libvirtd; the next pass writes what is missing.`);
    }
    if (err instanceof LibvirtError && NO_NETWORK.test(err.message)) {
      throw new GroupDnsError('no-network', `Network "${network}" does not exist on the server at ${uri}, so ${doing} is not possible there: create it (a storm_network) or move the group to a network that exists.`);
    }
    if (err instanceof LibvirtError) {
      throw new GroupDnsError('refused', `libvirt at ${uri} refused ${doing} on network "${network}": ${err.message}. Look at the network's records with \`virsh -c '${uri}' net-dumpxml ${network}\`.`);
    }
    throw err;
  }
}

/** MAC (lowercase) → IPv4 address of every current DHCP lease on the network. */
export async function leasedAddresses(uri: string, network: string): Promise<Map<string, string>> {
  return explained(uri, network, 'reading the DHCP leases', async () => parseLeases(await virsh(uri, `net-dhcp-leases ${q(network)}`)));
}

interface Definitions {
  /** null while the network is stopped: it has no running dnsmasq to change. */
  live: string | null;
  config: string;
}

async function definitions(uri: string, network: string): Promise<Definitions> {
  const active = /^Active:\s+yes/m.test(await virsh(uri, `net-info ${q(network)}`));
  const config = await virsh(uri, `net-dumpxml --inactive ${q(network)}`);
  return { live: active ? await virsh(uri, `net-dumpxml ${q(network)}`) : null, config };
}

function problems(uri: string, network: string, want: GroupDns, conflicts: readonly DnsConflict[], mxMissing: boolean): GroupDnsError | null {
  const where = `Network "${network}" on the server at ${uri}`;
  const said: string[] = [];
  if (conflicts.length) {
    const listed = conflicts.map((c) => `${c.ip} (${c.holder})`).join('; ');
    said.push(
      `${where} already has DNS records, not group "${want.name}"'s, for addresses of its members: ${listed}. libvirt keeps one record per address, so these members are missing from "${want.name}"'s answers. ` +
        `Remove or change the storm_network host block with that address (a record made by hand: \`virsh -c '${uri}' net-update ${network} delete dns-host "<host ip='${conflicts[0]!.ip}'/>" --live --config\`).`,
    );
  }
  if (mxMissing) {
    said.push(
      `${where} does not answer MX queries: it was made by an earlier storm, without dnsmasq's selfmx, and dnsmasq takes that option only when it starts. ` +
        `For "${want.name}"'s MX, replace the network (\`terraform apply -replace=\` with its storm_network) or add <dnsmasq:option value='selfmx'/> to its <dnsmasq:options> with \`virsh -c '${uri}' net-edit ${network}\` and restart it (net-destroy, then net-start); either cuts its guests off briefly.`,
    );
  }
  if (!said.length) return null;
  const rest = 'The group\'s other records are in place.';
  return new GroupDnsError(conflicts.length ? 'conflict' : 'no-mx', `${said.join(' ')} ${rest}`);
}

/**
 * Makes the network's running dnsmasq and its stored definition hold exactly `want`'s records
 * for group `want.name` (see the file's comment for what each is), leaving every other record
 * alone; idempotent, so a pass may call it every round. Returns what it changed. Records it
 * cannot make (an address another record holds, MX on a network without selfmx) fail it with a
 * GroupDnsError after everything else is in place.
 */
export async function syncGroupDns(uri: string, network: string, want: GroupDns): Promise<GroupDnsChange> {
  const bad = invalid(want);
  if (bad !== null) throw new GroupDnsError('invalid', `The DNS records of group "${want.name}" on network "${network}" (server ${uri}): ${bad}.`);
  const wanted: GroupDns = { ...want, addresses: [...new Set(want.addresses)] };
  const doing = `writing the DNS records of group "${want.name}"`;
  const plans = await explained(uri, network, doing, async () => {
    const defs = await definitions(uri, network);
    return { live: defs.live === null ? null : planGroupDns(dnsView(defs.live), wanted), config: planGroupDns(dnsView(defs.config), wanted) };
  });
  const steps = mergeScopes(plans.live?.ops ?? null, plans.config.ops);
  for (const s of steps) {
    await explained(uri, network, doing, () => virsh(uri, `net-update ${q(network)} ${s.command} ${s.section} ${q(s.xml)} ${s.flags}`));
  }
  // What guests are served decides, while it runs; the stored definition otherwise.
  const served = plans.live ?? plans.config;
  const conflicts = [...new Map([...served.conflicts, ...plans.config.conflicts].map((c) => [c.ip, c])).values()];
  const problem = problems(uri, network, wanted, conflicts, served.mxMissing);
  if (problem) throw problem;
  const named = (command: DnsOp['command']) => [...new Set(steps.filter((s) => s.command === command).map((s) => s.record))].sort();
  return { added: named('add-last'), removed: named('delete') };
}
