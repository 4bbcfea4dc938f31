// storm_network: a libvirt NAT network with DHCP and DNS host records on a server, for the
// instances placed there. Scaling groups' records (the paper's round-robin A, MX and SRV for a
// scaled mail cluster) live on the same network but belong to the controller
// (drivers/group-dns.ts): this resource neither shows nor changes them.
import { DiagnosticError, attr, type Diagnostic } from '../protocol/diagnostics.ts';
import type { ResourceSchema, Validator } from '../schema/model.ts';
import { defineResource, type Model } from '../schema/typed.ts';
import { matches, nameValidator } from '../schema/validators.ts';
import {
  GROUP_MARK_SUFFIX,
  adoptNetwork,
  DnsAddressTakenError,
  bridgeName,
  createNetwork,
  dnsHostKey,
  getNetwork,
  removeNetwork,
  setNetworkAutostart,
  startNetwork,
  stopNetwork,
  updateDnsHosts,
  type DnsHost,
  type NetworkSpec,
} from '../drivers/networks.ts';
import { requireServerId, type ServerRef } from '../host/refs.ts';
import { explained, readOrKeep, type Context } from './diagnose.ts';

const CIDR24 = matches(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.0\/24$/, 'a /24 IPv4 network like "192.168.150.0/24" (storm gives .1 to the host and .100–.254 to DHCP)');
// A host block named like a scaling group's mark would be read back as the controller's record
// and vanish from the state: a diff at every plan.
const NOT_A_GROUP_MARK: Validator = (v) =>
  String(v).toLowerCase().endsWith(GROUP_MARK_SUFFIX) ? `"${v}" ends in "${GROUP_MARK_SUFFIX}", which marks the records storm's controller keeps for scaling groups; choose another hostname.` : undefined;
const IPV4 = matches(/^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/, 'an IPv4 address');

const schema = {
  typeName: 'storm_network',
  version: 0,
  description: 'A NAT network with DHCP and DNS on a server. The host gets `.1` of the /24, DHCP hands out `.100`–`.254`, and `host` blocks become DNS records served to the guests. ' +
    'Every name it serves answers MX with itself (dnsmasq\'s `selfmx`), which is how a scaling group\'s name answers MX; networks made by an earlier storm do not until they are replaced. ' +
    'A create that finds a network of this name with storm\'s bridge for it (`bridge`: the leftover of a create that was cut off) takes it over; one with another bridge is somebody else\'s and the create is refused.',
  block: {
    attributes: {
      id: { type: 'string', mode: 'computed', description: '`NAME@SERVER_ID`.' },
      server: { type: 'string', mode: 'required', forceNew: true, description: 'The `storm_appliance_server` id to create it on.' },
      name: { type: 'string', mode: 'required', forceNew: true, validators: [nameValidator], description: 'Network name; instances name it in `network`.' },
      cidr: { type: 'string', mode: 'required', forceNew: true, validators: [CIDR24], description: 'The /24 the network uses, e.g. `192.168.150.0/24`.' },
      domain: { type: 'string', mode: 'optional', default: 'storm.internal', forceNew: true, description: 'DNS domain of the network.' },
      active: {
        type: 'bool',
        mode: 'optional',
        default: true,
        description:
          'Whether the network runs (and starts when the host\'s libvirtd starts: autostart follows it). storm reads it on every refresh, so a network that is defined but stopped ' +
          '(its start failed at a host boot, `virsh net-destroy`) shows as `active = false -> true` in `terraform plan`, and apply starts it; a start that fails because another network ' +
          'on the host holds the addresses or the bridge says so. `false` stops it and turns autostart off; instances attached to it lose their network until it runs again.',
      },
      bridge: { type: 'string', mode: 'computed', description: 'The Linux bridge it uses: `sbXXXX-NAME` (at most 15 characters), XXXX from the server and the name, so servers that share a kernel (several libvirtds on one machine) never collide.' },
    },
    blocks: {
      host: {
        nesting: 'list',
        description:
          'A DNS host record; several records with one hostname give round-robin DNS. Changed in place, without restarting the network. libvirt keeps one record per address: two blocks with one `ip` become one record with both names. ' +
          `The records storm's controller keeps for scaling groups (marked with a second hostname \`GROUP${GROUP_MARK_SUFFIX}\`) are not shown here and never changed by this resource.`,
        block: {
          attributes: {
            hostname: { type: 'string', mode: 'required', validators: [NOT_A_GROUP_MARK], description: 'Host name.' },
            ip: { type: 'string', mode: 'required', validators: [IPV4], description: 'Its address.' },
          },
        },
      },
    },
  },
} as const satisfies ResourceSchema;

type Network = Model<typeof schema>;

const serverOf = (n: Network): ServerRef => requireServerId(n.server, attr('server'));
const blame = (n: Network): Context => ({ server: serverOf(n).name, libvirt: { path: attr('server'), via: 'reference' } });
/**
 * The records in the order the state lists them, unknown ones last: libvirt keeps records per
 * address and appends new ones, so its order is not the configuration's, and a list that only
 * changed order would plan a change at every run.
 */
function inStateOrder(seen: readonly DnsHost[], state: readonly DnsHost[]): DnsHost[] {
  const rank = new Map(state.map((h, i) => [dnsHostKey(h), i]));
  const of = (h: DnsHost) => rank.get(dnsHostKey(h)) ?? state.length;
  return [...seen].sort((a, b) => of(a) - of(b));
}
function addressTaken(err: DnsAddressTakenError, n: Network): DiagnosticError {
  const fix = err.group
    ? `A member of scaling group "${err.group}" has that address (DHCP gave it out, or the group's records say so). Give this host block an address outside DHCP's .100–.254, or drop it.`
    : 'Put both hostnames in host blocks with that one address, or give this host block another address.';
  const index = n.host.findIndex((h) => h.ip === err.ip);
  return new DiagnosticError('The address already has a DNS record', `${err.message.replace(/^network/, 'Network')}. ${fix}`, index < 0 ? attr('host') : [{ attribute: 'host' }, { index }, { attribute: 'ip' }]);
}

const specOf = (n: Network): NetworkSpec => ({ name: n.name, bridge: bridgeName(n.server, n.name), prefix: n.cidr.replace(/\.0\/24$/, ''), domain: n.domain, hosts: n.host });

export const network = defineResource<typeof schema>({
  schema,

  validate(config) {
    const diags: Diagnostic[] = [];
    const cidr = typeof config.cidr === 'string' ? config.cidr : null;
    if (cidr && cidr.split(/[./]/).slice(0, 3).some((o) => Number(o) > 255)) {
      diags.push({ severity: 'error', summary: 'Invalid cidr', detail: `cidr "${cidr}" has an octet above 255.`, path: attr('cidr') });
    }
    return diags;
  },

  async create(ctx, planned) {
    const server = serverOf(planned);
    const spec = specOf(planned);
    await explained(blame(planned), async () => {
      const seen = await getNetwork(server.uri, planned.name);
      if (!seen) return createNetwork(server.uri, spec, planned.active);
      // Only storm names a bridge this way for this server and name: the network is the
      // leftover of a create cut off before its state was written. Anything else with the name
      // is somebody else's and is never touched.
      if (seen.bridge !== spec.bridge) {
        throw new DiagnosticError(
          'The network already exists',
          `Server "${server.name}" already has a network named "${planned.name}" (bridge ${seen.bridge ?? 'none'}) that storm did not make; storm leaves it alone. Choose another name.`,
          attr('name'),
        );
      }
      ctx.log.info('adopting the network a previous create left behind', { server: server.name, network: planned.name, bridge: spec.bridge, active: seen.active });
      return adoptNetwork(server.uri, spec, seen, planned.active);
    });
    return { ...planned, id: `${planned.name}@${planned.server}`, bridge: spec.bridge };
  },

  async read(ctx, state) {
    return readOrKeep(ctx.warn, blame(state), `network "${state.name}"`, state, async () => {
      const seen = await getNetwork(serverOf(state).uri, state.name);
      if (!seen) return null;
      return { ...state, host: inStateOrder(seen.hosts, state.host), bridge: seen.bridge, active: seen.active };
    });
  },

  async update(_ctx, prior, planned) {
    const uri = serverOf(planned).uri;
    await explained(blame(planned), async () => {
      // Started first, so the host records below reach its running dnsmasq; a stopped one
      // takes them in its definition only (libvirt refuses a live change there).
      if (planned.active && !prior.active) await startNetwork(uri, planned.name);
      if (!planned.active && prior.active) await stopNetwork(uri, planned.name);
      if (planned.active !== prior.active) await setNetworkAutostart(uri, planned.name, planned.active);
      await updateDnsHosts(uri, planned.name, prior.host, planned.host, planned.active).catch((err: unknown) => {
        throw err instanceof DnsAddressTakenError ? addressTaken(err, planned) : err;
      });
    });
    return planned;
  },

  async delete(_ctx, prior) {
    await explained(blame(prior), () => removeNetwork(serverOf(prior).uri, prior.name));
  },
});
