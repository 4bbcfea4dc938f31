// A group's name on its network's DNS, kept in step with its running members each round (the
// paper's round-robin A and MX records, and SRV for what the appliance provides): every member's
// address from its DHCP lease, written onto the group's network on every server of the group, so
// any guest there resolves the whole group. Records change live; guests' networks never restart.
import type { Logger } from '../contract.ts';
import { listDomains } from '../drivers/domains.ts';
import { GroupDnsError, leasedAddresses, syncGroupDns, type GroupService } from '../drivers/group-dns.ts';
import { deploymentsOf, MEMBER_LABELS } from './group-pass.ts';
import type { GroupRecord } from './store.ts';

/** Well-known services of appliances (the definition's `provides`) and where they listen. */
const KNOWN: Record<string, GroupService> = {
  smtp: { service: 'smtp', protocol: 'tcp', port: 25 },
  mail: { service: 'smtp', protocol: 'tcp', port: 25 },
  submission: { service: 'submission', protocol: 'tcp', port: 587 },
  imap: { service: 'imap', protocol: 'tcp', port: 143 },
  imaps: { service: 'imaps', protocol: 'tcp', port: 993 },
  pop3: { service: 'pop3', protocol: 'tcp', port: 110 },
  http: { service: 'http', protocol: 'tcp', port: 80 },
  www: { service: 'http', protocol: 'tcp', port: 80 },
  webserv: { service: 'http', protocol: 'tcp', port: 80 },
  https: { service: 'https', protocol: 'tcp', port: 443 },
  dns: { service: 'domain', protocol: 'udp', port: 53 },
  ldap: { service: 'ldap', protocol: 'tcp', port: 389 },
};

export function servicesOf(provides: readonly string[]): { srv: GroupService[]; mx: boolean } {
  const srv = new Map<string, GroupService>();
  for (const p of provides) {
    const known = KNOWN[p];
    if (known) srv.set(`${known.service}/${known.protocol}`, known);
  }
  return { srv: [...srv.values()], mx: provides.some((p) => p === 'smtp' || p === 'mail') };
}

/** Syncs the group's records; returns what changed, for the log. Servers that do not answer are skipped. */
export async function runDnsPass(group: GroupRecord, log: Logger): Promise<string[]> {
  if (!group.dnsName || group.deleting) return [];
  const network = group.shape.network;
  const servers = [...new Map(deploymentsOf(group).map((d) => [d.server.uri, d.server])).values()];
  const addresses: string[] = [];
  const answering: typeof servers = [];
  for (const s of servers) {
    const domains = await listDomains(s.uri).catch(() => null);
    if (!domains) continue;
    answering.push(s);
    const running = domains.filter((d) => d.storm && d.metadata[MEMBER_LABELS.group] === group.name && d.state === 'running' && d.mac);
    if (!running.length) continue;
    const leases = await leasedAddresses(s.uri, network).catch(() => new Map<string, string>());
    for (const d of running) {
      const ip = leases.get(d.mac!.toLowerCase());
      if (ip) addresses.push(ip);
    }
  }
  const { srv, mx } = servicesOf(group.shape.services ?? []);
  const said: string[] = [];
  for (const s of answering) {
    try {
      const change = await syncGroupDns(s.uri, network, { name: group.dnsName, addresses: addresses.sort(), mx, srv });
      if (change.added.length || change.removed.length) {
        said.push(`${s.name}: ${[...change.added.map((a) => `+${a}`), ...change.removed.map((r) => `-${r}`)].join(', ')}`);
      }
    } catch (err) {
      if (err instanceof GroupDnsError && err.problem === 'unreachable') continue;
      log.warn(`dns for group ${group.name} on ${s.name}: ${(err as Error).message}`, { group: group.name });
    }
  }
  if (said.length) log.info(`dns ${group.dnsName} (${group.name}) → ${addresses.join(', ') || 'no member'}: ${said.join('; ')}`, { group: group.name });
  return said;
}
