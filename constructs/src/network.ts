// A NAT network with DHCP and DNS, the same on each of its servers (one storm_network per
// server: a libvirt network lives on one host). Instances and scaling groups name it; the host
// records given here are served on every server.
import { Construct } from 'constructs';
import { nameValidator } from '../../provider/src/schema/validators.ts';
import { Network as NetworkResource } from './generated/network/index.ts';
import { perServerId, type ApplianceServer } from './appliance-server.ts';
import { describe, nameProp, providerRule, validateProps } from './validation.ts';

/** A DNS host record; several with one hostname give round-robin DNS. */
export interface DnsHost {
  readonly hostname: string;
  readonly ip: string;
}

export interface NetworkProps {
  /** The servers to create it on: those whose instances attach to it. */
  readonly servers: readonly ApplianceServer[];
  /**
   * The /24 it uses on every server, e.g. `192.168.150.0/24` (the host is .1, DHCP hands out
   * .100–.254). Give this or `cidrs`.
   */
  readonly cidr?: string;
  /**
   * One /24 per server, in the order of `servers`, when the servers share a network segment
   * (lab blades on one machine: a subnet can be bridged on one of them only). Give this or `cidr`.
   * @default - `cidr` on every server
   */
  readonly cidrs?: readonly string[];
  /**
   * Network name; instances name it.
   * @default - the construct's id
   */
  readonly name?: string;
  /**
   * DNS domain of the network.
   * @default 'storm.internal'
   */
  readonly domain?: string;
  /**
   * DNS host records served to the guests.
   * @default - none
   */
  readonly hosts?: readonly DnsHost[];
  /**
   * Whether the network runs (and starts with the host's libvirtd).
   * @default true
   */
  readonly active?: boolean;
}

export class Network extends Construct {
  readonly name: string;
  readonly domain: string;
  readonly servers: readonly ApplianceServer[];
  /** Its storm_network on each server, in the order of `servers`. */
  readonly resources: NetworkResource[];
  private readonly hosts: DnsHost[];

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);
    this.name = props.name ?? id;
    this.domain = props.domain ?? 'storm.internal';
    this.servers = [...props.servers];
    this.hosts = [...(props.hosts ?? [])];
    this.resources = this.servers.map(
      (server, i) =>
        new NetworkResource(this, perServerId(server), {
          server: server.serverId,
          name: this.name,
          cidr: props.cidrs?.[i] ?? props.cidr ?? '',
          domain: props.domain,
          active: props.active,
          host: this.hosts.length ? this.hosts.map((h) => ({ ...h })) : undefined,
        }),
    );
    validateProps(this, describe('Network', this.name), () => [
      providerRule(nameProp(props.name), this.name, nameValidator),
      { failed: this.servers.length === 0, message: 'servers is empty: a network is made on servers; name those whose instances attach to it.' },
      {
        failed: (props.cidr === undefined) === (props.cidrs === undefined),
        message: props.cidr === undefined ? 'neither cidr nor cidrs is set: give cidr (one /24 on every server) or cidrs (one per server).' : 'both cidr and cidrs are set: give cidr (one /24 on every server) or cidrs (one per server), not both.',
      },
      {
        failed: props.cidrs !== undefined && props.cidrs.length !== this.servers.length,
        message: `cidrs has ${props.cidrs?.length} entries for ${this.servers.length} servers: give one /24 per server, in the order of servers.`,
      },
    ]);
  }

  /** Adds a DNS host record on every server of the network. */
  addHost(hostname: string, ip: string): this {
    this.hosts.push({ hostname, ip });
    for (const r of this.resources) r.putHost(this.hosts.map((h) => ({ ...h })));
    return this;
  }

  /** Whether the network is on `server`. */
  isOn(server: ApplianceServer): boolean {
    return this.servers.includes(server);
  }
}
