// One instance of a deployment: a writable layer over the deployment's, a NoCloud seed with
// the deployment's and its own files (variables expanded once, at creation), and a domain.
// Unpinned, it is placed by storm on the least-loaded of the deployment's servers that fits.
import { Construct } from 'constructs';
import { nameValidator } from '../../provider/src/schema/validators.ts';
import { Instance } from './generated/instance/index.ts';
import type { ApplianceServer } from './appliance-server.ts';
import { fileRules, type Deployment } from './deployment.ts';
import { fileBlocks, literalVariables, type InstanceFile } from './files.ts';
import type { Network } from './network.ts';
import { describe, nameProp, providerRule, validateProps, type PropRule } from './validation.ts';

export type InstanceState = 'running' | 'paused' | 'shutoff';

export interface ApplianceInstanceProps {
  /** The deployment it is an instance of. */
  readonly deployment: Deployment;
  /**
   * Instance name: the domain's name and the guest's host name.
   * @default - the construct's id
   */
  readonly name?: string;
  /**
   * Pin it to this server (one the deployment is on).
   * @default - placement: the least-loaded of the deployment's servers that fits
   */
  readonly server?: ApplianceServer;
  /**
   * The network it is attached to.
   * @default - libvirt's `default` network
   */
  readonly network?: Network;
  /**
   * Guest memory (MiB).
   * @default - the appliance's
   */
  readonly memoryMib?: number;
  /**
   * Guest vCPUs.
   * @default - the appliance's
   */
  readonly vcpus?: number;
  /**
   * Size of its disk (MiB); growing is in place, shrinking replaces the instance.
   * @default - the appliance's
   */
  readonly diskSizeMib?: number;
  /**
   * `running`, `paused` or `shutoff`.
   * @default 'running'
   */
  readonly state?: InstanceState;
  /**
   * Values for the templates' `${name}`; they win over the deployment's.
   * @default - none
   */
  readonly variables?: Readonly<Record<string, string>>;
  /**
   * Files for this instance only (they win over a deployment file with the same path).
   * @default - none
   */
  readonly files?: readonly InstanceFile[];
  /**
   * How long to wait for its DHCP lease after it starts, in seconds (0: do not wait).
   * @default 120
   */
  readonly ipWaitSeconds?: number;
  /**
   * Keep its user disks when the instance is replaced (e.g. by a new appliance version) and re-attach them.
   * @default false
   */
  readonly keepUserDisks?: boolean;
}

/** Rules shared with ScalingGroup: members must be able to reach their network wherever they go. */
export function networkRules(network: Network | undefined, servers: readonly ApplianceServer[], what: string): PropRule[] {
  if (!network) return [];
  return servers
    .filter((s) => !network.isOn(s))
    .map((s) => ({
      failed: true,
      message: `network "${network.name}" is not on server "${s.name}", where ${what}: add that server to the network's servers.`,
    }));
}

export class ApplianceInstance extends Construct {
  readonly name: string;
  readonly resource: Instance;

  constructor(scope: Construct, id: string, props: ApplianceInstanceProps) {
    super(scope, id);
    this.name = props.name ?? id;
    const deployment = props.deployment;
    this.resource = new Instance(this, 'instance', {
      name: this.name,
      deployments: deployment.deploymentIds,
      server: props.server?.serverId,
      network: props.network?.name,
      memoryMib: props.memoryMib,
      vcpus: props.vcpus,
      diskSizeMib: props.diskSizeMib,
      state: props.state,
      variables: literalVariables(props.variables),
      file: fileBlocks(props.files ?? []),
      ipWaitSeconds: props.ipWaitSeconds,
      keepUserDisks: props.keepUserDisks,
      // The network is named, not referenced: order its creation first.
      dependsOn: props.network?.resources,
    });
    validateProps(this, describe('ApplianceInstance', this.name), () => [
      providerRule(nameProp(props.name), this.name, nameValidator),
      {
        failed: props.server !== undefined && !deployment.servers.includes(props.server),
        message: `server "${props.server?.name}" is not one that deployment "${deployment.name}" is on (${deployment.servers.map((s) => s.name).join(', ') || 'none'}): pin one of those, or install appliance "${deployment.appliance.node.id}" there with onServers([...]).`,
      },
      ...networkRules(props.network, props.server ? [props.server] : deployment.servers, props.server ? 'the instance is pinned' : 'placement may put the instance'),
      ...fileRules('files', props.files ?? []),
    ]);
  }

  /** Its IPv4 address from the network's DHCP lease. */
  get ip(): string {
    return this.resource.ip;
  }

  /** Its appliance's web panel at its address (null until it has one, or when the appliance has no panel). */
  get webpanelUrl(): string {
    return this.resource.webpanelUrl;
  }

  get mac(): string {
    return this.resource.mac;
  }

  /** The server it runs on (chosen by placement when not pinned). */
  get placedOn(): string {
    return this.resource.server;
  }
}
