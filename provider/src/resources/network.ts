// storm_network: a libvirt NAT network with DHCP and DNS host records on a server, for the
// instances placed there (the paper's round-robin DNS records for scaled groups later).
import { DiagnosticError, attr, type Diagnostic } from '../protocol/diagnostics.ts';
import type { CtyValue } from '../protocol/cty/index.ts';
import type { ResourceSchema } from '../schema/model.ts';
import { matches, nameValidator } from '../schema/validators.ts';
import { LibvirtError } from '../drivers/errors.ts';
import { escapeXml } from '../drivers/xml.ts';
import { withXmlFile } from '../drivers/volumes.ts';
import { virsh, virshQuote as q } from '../drivers/virsh.ts';
import { str, type ObjectValue, type ResourceDefinition } from './resource.ts';
import { requireServerId } from './server-ref.ts';

const CIDR24 = matches(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.0\/24$/, 'a /24 IPv4 network like "192.168.150.0/24" (storm gives .1 to the host and .100–.254 to DHCP)');
const IPV4 = matches(/^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/, 'an IPv4 address');

const schema: ResourceSchema = {
  typeName: 'storm_network',
  version: 0,
  description: 'A NAT network with DHCP and DNS on a server. The host gets `.1` of the /24, DHCP hands out `.100`–`.254`, and `host` blocks become DNS records served to the guests.',
  block: {
    attributes: {
      id: { type: 'string', mode: 'computed', description: '`NAME@SERVER_ID`.' },
      server: { type: 'string', mode: 'required', forceNew: true, description: 'The `storm_appliance_server` id to create it on.' },
      name: { type: 'string', mode: 'required', forceNew: true, validators: [nameValidator], description: 'Network name; instances name it in `network`.' },
      cidr: { type: 'string', mode: 'required', forceNew: true, validators: [CIDR24], description: 'The /24 the network uses, e.g. `192.168.150.0/24`.' },
      domain: { type: 'string', mode: 'optional', default: 'storm.internal', forceNew: true, description: 'DNS domain of the network.' },
      bridge: { type: 'string', mode: 'computed', description: 'The Linux bridge libvirt made for it.' },
    },
    blocks: {
      host: {
        nesting: 'list',
        description: 'A DNS host record; several records with one hostname give round-robin DNS. Changed in place.',
        block: {
          attributes: {
            hostname: { type: 'string', mode: 'required', description: 'Host name.' },
            ip: { type: 'string', mode: 'required', validators: [IPV4], description: 'Its address.' },
          },
        },
      },
    },
  },
};

interface Spec {
  uri: string;
  serverId: string;
  name: string;
  prefix: string;
  domain: string;
  hosts: { hostname: string; ip: string }[];
}

function hostsOf(v: CtyValue | undefined): { hostname: string; ip: string }[] {
  return (Array.isArray(v) ? v : []).map((h) => ({ hostname: str((h as ObjectValue).hostname) ?? '', ip: str((h as ObjectValue).ip) ?? '' }));
}

function specOf(v: ObjectValue): Spec {
  const ref = requireServerId(str(v.server) ?? '', attr('server'));
  return {
    uri: ref.uri,
    serverId: str(v.server) ?? '',
    name: str(v.name) ?? '',
    prefix: (str(v.cidr) ?? '').replace(/\.0\/24$/, ''),
    domain: str(v.domain) ?? 'storm.internal',
    hosts: hostsOf(v.host),
  };
}

/** Bridge names are at most 15 characters. */
const bridgeName = (name: string) => `sb-${name}`.slice(0, 15);

function dnsHosts(hosts: Spec['hosts']): string {
  const byIp = new Map<string, string[]>();
  for (const h of hosts) byIp.set(h.ip, [...(byIp.get(h.ip) ?? []), h.hostname]);
  return [...byIp].map(([ip, names]) => `<host ip='${escapeXml(ip)}'>${names.map((n) => `<hostname>${escapeXml(n)}</hostname>`).join('')}</host>`).join('');
}

function networkXml(s: Spec): string {
  return (
    // no-ping: dnsmasq otherwise pings each address before offering it, 3 s per lease.
    `<network xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'><name>${escapeXml(s.name)}</name><forward mode='nat'/><bridge name='${bridgeName(s.name)}' stp='off'/>` +
    `<domain name='${escapeXml(s.domain)}' localOnly='yes'/><dns>${dnsHosts(s.hosts)}</dns>` +
    `<ip address='${s.prefix}.1' netmask='255.255.255.0'><dhcp><range start='${s.prefix}.100' end='${s.prefix}.254'/></dhcp></ip>` +
    `<dnsmasq:options><dnsmasq:option value='no-ping'/></dnsmasq:options></network>`
  );
}

function parseHosts(xml: string): Spec['hosts'] {
  const out: Spec['hosts'] = [];
  for (const m of xml.matchAll(/<host ip='([^']+)'>([\s\S]*?)<\/host>/g)) {
    for (const n of m[2]!.matchAll(/<hostname>([^<]+)<\/hostname>/g)) out.push({ hostname: n[1]!, ip: m[1]! });
  }
  return out;
}

async function dumpXml(uri: string, name: string): Promise<string | null> {
  try {
    return await virsh(uri, `net-dumpxml ${q(name)}`);
  } catch (err) {
    if (err instanceof LibvirtError && /Network not found|no network with matching name/i.test(err.message)) return null;
    throw err;
  }
}

export const network: ResourceDefinition = {
  schema,

  validate(config) {
    const diags: Diagnostic[] = [];
    const cidr = str(config.cidr);
    if (cidr && cidr.split(/[./]/).slice(0, 3).some((o) => Number(o) > 255)) {
      diags.push({ severity: 'error', summary: 'Invalid cidr', detail: `cidr "${cidr}" has an octet above 255.`, path: attr('cidr') });
    }
    return diags;
  },

  async create(_ctx, planned) {
    const s = specOf(planned);
    if (await dumpXml(s.uri, s.name)) throw new DiagnosticError('The network already exists', `The server already has a network named "${s.name}"; choose another name.`, attr('name'));
    await withXmlFile(networkXml(s), (file) => virsh(s.uri, `net-define ${q(file)}`));
    try {
      await virsh(s.uri, `net-start ${q(s.name)}; net-autostart ${q(s.name)}`);
    } catch (err) {
      await virsh(s.uri, `net-undefine ${q(s.name)}`).catch(() => {});
      if (err instanceof LibvirtError && /address already in use|already in use|overlap/i.test(err.message)) {
        throw new DiagnosticError('The network collides with another one', `${err.message}. Choose another cidr or name.`, attr('cidr'));
      }
      throw err;
    }
    return { ...planned, id: `${s.name}@${s.serverId}`, bridge: bridgeName(s.name) };
  },

  async read(_ctx, state) {
    const s = specOf(state);
    const xml = await dumpXml(s.uri, s.name);
    if (!xml) return null;
    const hosts = parseHosts(xml);
    return { ...state, host: hosts.length || state.host !== null ? hosts : null, bridge: /<bridge name='([^']+)'/.exec(xml)?.[1] ?? null };
  },

  async update(_ctx, prior, planned) {
    const s = specOf(planned);
    const before = new Set(hostsOf(prior.host).map((h) => `${h.ip} ${h.hostname}`));
    const after = new Set(s.hosts.map((h) => `${h.ip} ${h.hostname}`));
    // net-update changes the running dnsmasq and the stored definition without a restart.
    for (const h of before) {
      if (after.has(h)) continue;
      const [ip, hostname] = h.split(' ');
      await virsh(s.uri, `net-update ${q(s.name)} delete dns-host ${q(`<host ip='${ip}'><hostname>${hostname}</hostname></host>`)} --live --config`);
    }
    for (const h of after) {
      if (before.has(h)) continue;
      const [ip, hostname] = h.split(' ');
      await virsh(s.uri, `net-update ${q(s.name)} add-last dns-host ${q(`<host ip='${ip}'><hostname>${hostname}</hostname></host>`)} --live --config`);
    }
    return planned;
  },

  async delete(_ctx, prior) {
    const s = specOf(prior);
    await virsh(s.uri, `net-destroy ${q(s.name)}`).catch(() => {});
    await virsh(s.uri, `net-undefine ${q(s.name)}`).catch((err: unknown) => {
      if (!(err instanceof LibvirtError && /not found/i.test(err.message))) throw err;
    });
  },
};
