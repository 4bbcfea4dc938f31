// Instances of a deployment that the storm controller adds and removes by load (the paper's
// 90 % rule), with the servers it may power on and off for them. Terraform owns the policy
// and the members' shape; the controller owns how many there are.
import { Construct } from 'constructs';
import { DEFAULT_SCALING } from '../../provider/src/policy/scaling.ts';
import { ScalingGroup as ScalingGroupResource } from './generated/scaling-group/index.ts';
import { networkRules } from './appliance-instance.ts';
import { fileRules, type Deployment } from './deployment.ts';
import { fileBlocks, literalVariables, type InstanceFile } from './files.ts';
import type { Network } from './network.ts';
import { Storm } from './storm.ts';
import { describe, known, nameProp, validateProps } from './validation.ts';

/** Scale on a load the members report themselves instead of their CPU. */
export interface ReportedLoad {
  /** The metric members report (`POST /v1/members/NAME/load`), e.g. `queue`. */
  readonly metric: string;
  /** Scale out when the members' mean holds at or above this. */
  readonly high: number;
  /** Scale in when it holds below this. */
  readonly low: number;
}

/** How the controller powers the deployment's servers (those with `power: 'controller'`). */
export interface HostPowerPolicy {
  /**
   * Power on another server when every powered one is at least this busy (a share of its CPUs).
   * @default 0.9 (the paper's 90 %)
   */
  readonly hostCpuHigh?: number;
  /**
   * Servers kept on whatever the load. The group's last powered server is never switched off
   * (its next member needs somewhere to start), so 0 behaves as 1.
   * @default 1
   */
  readonly minServersOn?: number;
  /**
   * How long a server must have run no domain before it is powered off, in seconds.
   * @default 600
   */
  readonly emptyHoldSeconds?: number;
  /**
   * Power changes in flight at once.
   * @default 1
   */
  readonly maxConcurrentChanges?: number;
  /**
   * Boot time assumed for a server the controller never powered on, in seconds.
   * @default 120
   */
  readonly defaultBootSeconds?: number;
}

export type Placement = 'spread' | 'consolidate';

export interface ScalingGroupProps {
  /** The deployment its members are instances of; they may run on any of its servers. */
  readonly deployment: Deployment;
  /** Members kept whatever the load. */
  readonly min: number;
  /** Members never exceeded. */
  readonly max: number;
  /**
   * Group name; members are `NAME-0`, `NAME-1`, ...
   * @default - the construct's id
   */
  readonly name?: string;
  /**
   * The network members are attached to.
   * @default - libvirt's `default` network
   */
  readonly network?: Network;
  /**
   * A name on the network's DNS that resolves round-robin to every running member (MX too for a mail appliance).
   * @default - none: members are not published in DNS
   */
  readonly dnsName?: string;
  /**
   * What the members provide (SRV records per known service; `smtp` makes the DNS name an MX).
   * @default - the appliance's `provides`, when it comes from a channel
   */
  readonly services?: readonly string[];
  /**
   * Each member's memory (MiB).
   * @default - the appliance's
   */
  readonly memoryMib?: number;
  /**
   * Each member's vCPUs.
   * @default - the appliance's
   */
  readonly vcpus?: number;
  /**
   * Values for the templates' variables; `${member}` and `${index}` are added per member.
   * @default - none
   */
  readonly variables?: Readonly<Record<string, string>>;
  /**
   * Files written into every member.
   * @default - none
   */
  readonly files?: readonly InstanceFile[];
  /**
   * Scale out when the members' mean CPU holds at or above this for `windowSeconds`.
   * @default 0.9 (the paper's 90 %)
   */
  readonly guestCpuHigh?: number;
  /**
   * Scale in when it holds below this.
   * @default 0.3
   */
  readonly guestCpuLow?: number;
  /**
   * How long the load must hold past a threshold before anything is done, in seconds.
   * @default 30
   */
  readonly windowSeconds?: number;
  /**
   * Members added or removed per decision.
   * @default 1
   */
  readonly step?: number;
  /**
   * After a scale-out, no other for this long (seconds).
   * @default 60
   */
  readonly cooldownOutSeconds?: number;
  /**
   * After any change, no scale-in for this long (seconds).
   * @default 300
   */
  readonly cooldownInSeconds?: number;
  /**
   * Proportional scale-out: enough members that their mean would fall to this share of the high
   * mark, at least `step`; 0 adds `step` at a time (the paper's one at a time).
   * @default 0.8
   */
  readonly scaleOutTarget?: number;
  /**
   * Proportional scale-in: when fewer members would carry the window's highest load at no more
   * than this share of the high mark, the surplus goes at once, from the least-used servers
   * first; 0 scales in below the low mark only, `step` at a time.
   * @default 0.7
   */
  readonly scaleInTarget?: number;
  /**
   * When the members' CPU held at 100 %, a scale-out adds at least this share of the group (1 doubles it); 0 is off.
   * @default 1
   */
  readonly saturatedGrowth?: number;
  /**
   * A server at least this busy is saturated: its members count at the high mark, and it takes no new member; 1 is off.
   * @default 0.9
   */
  readonly saturatedServerCpu?: number;
  /**
   * `spread` (least-loaded server that fits) or `consolidate` (fullest that fits, so more servers can be off).
   * @default 'spread'
   */
  readonly placement?: Placement;
  /**
   * Scale on a load the members report instead of their CPU.
   * @default - their CPU
   */
  readonly scaleOn?: ReportedLoad;
  /**
   * Let the controller power the deployment's servers on and off for this group.
   * @default - servers are not switched for the group
   */
  readonly hostPower?: HostPowerPolicy;
  /**
   * How long destroy waits for the controller to remove every member, in seconds.
   * @default 600
   */
  readonly drainTimeoutSeconds?: number;
}

export class ScalingGroup extends Construct {
  readonly name: string;
  readonly deployment: Deployment;
  readonly network: Network | undefined;
  /** The name the group answers to on its network's DNS, when it has one (`NAME`; `fqdn` adds the domain). */
  readonly dnsName: string | undefined;
  readonly resource: ScalingGroupResource;

  constructor(scope: Construct, id: string, props: ScalingGroupProps) {
    super(scope, id);
    this.name = props.name ?? id;
    this.deployment = props.deployment;
    this.network = props.network;
    this.dnsName = props.dnsName;
    const storm = Storm.of(this);
    this.resource = new ScalingGroupResource(this, 'group', {
      name: this.name,
      deployments: props.deployment.deploymentIds,
      network: props.network?.name,
      dnsName: props.dnsName,
      services: props.services ? [...props.services] : props.deployment.appliance.provides,
      memoryMib: props.memoryMib,
      vcpus: props.vcpus,
      variables: literalVariables(props.variables),
      file: fileBlocks(props.files ?? []),
      min: props.min,
      max: props.max,
      guestCpuHigh: props.guestCpuHigh,
      guestCpuLow: props.guestCpuLow,
      windowSeconds: props.windowSeconds,
      step: props.step,
      cooldownOutSeconds: props.cooldownOutSeconds,
      cooldownInSeconds: props.cooldownInSeconds,
      scaleOutTarget: props.scaleOutTarget,
      scaleInTarget: props.scaleInTarget,
      saturatedGrowth: props.saturatedGrowth,
      saturatedServerCpu: props.saturatedServerCpu,
      placement: props.placement,
      scaleOn: props.scaleOn,
      hostPower: props.hostPower,
      drainTimeoutSeconds: props.drainTimeoutSeconds,
      dependsOn: props.network?.resources,
    });

    const high = props.guestCpuHigh ?? DEFAULT_SCALING.guestCpuHigh;
    const low = props.guestCpuLow ?? DEFAULT_SCALING.guestCpuLow;
    const scaleOut = props.scaleOutTarget ?? DEFAULT_SCALING.scaleOutTarget!;
    const scaleIn = props.scaleInTarget ?? DEFAULT_SCALING.scaleInTarget!;
    validateProps(this, describe('ScalingGroup', this.name), () => [
      {
        // The provider's group-name rule (resources/scaling-group.ts); that module loads the
        // controller client and the host model, so the pattern is repeated here rather than imported.
        failed: !/^[a-z][a-z0-9-]{0,40}$/.test(this.name),
        message: `${nameProp(props.name)}: "${this.name}" is not a group name: use lower case letters, digits and dashes, starting with a letter, at most 41 characters.`,
      },
      {
        failed: known(props.min) && known(props.max) && props.min > props.max,
        message: `min = ${props.min} is above max = ${props.max}: the group could never hold both. Lower min or raise max.`,
      },
      {
        failed: known(low) && known(high) && low >= high,
        message: `guestCpuLow = ${low} is not below guestCpuHigh = ${high}: the group would scale in and out on the same load. Keep guestCpuLow well below guestCpuHigh (the defaults are ${DEFAULT_SCALING.guestCpuLow} and ${DEFAULT_SCALING.guestCpuHigh}).`,
      },
      {
        failed: known(scaleIn) && known(scaleOut) && scaleOut > 0 && scaleIn >= scaleOut,
        message: `scaleInTarget = ${scaleIn} is not below scaleOutTarget = ${scaleOut}: a scale-in would leave the members as busy as a scale-out does, and the group would shrink and grow on the same load. Keep it well below (the defaults are ${DEFAULT_SCALING.scaleInTarget} and ${DEFAULT_SCALING.scaleOutTarget}), or 0 for the low mark alone.`,
      },
      {
        failed: props.scaleOn !== undefined && known(props.scaleOn.low) && known(props.scaleOn.high) && props.scaleOn.low >= props.scaleOn.high,
        message: `scaleOn.low = ${props.scaleOn?.low} is not below scaleOn.high = ${props.scaleOn?.high}: the group would scale in and out on the same load. Keep low below high.`,
      },
      {
        failed: !storm.controller,
        message: "the storm controller runs scaling groups, and the stack's Storm has no controller: pass controller to new Storm(stack, 'storm', { controller: { url, token, caPem } }) before the group.",
      },
      {
        failed: props.hostPower !== undefined && !props.deployment.servers.some((s) => s.power === 'controller'),
        message: `hostPower has no server to switch: none of deployment "${props.deployment.name}"'s servers (${props.deployment.servers.map((s) => s.name).join(', ') || 'none'}) has power = 'controller'. Hand the servers the controller may switch to it (power: 'controller', with a bmc), or drop hostPower.`,
      },
      ...networkRules(props.network, props.deployment.servers, `group "${this.name}" may place members`),
      ...fileRules('files', props.files ?? []),
    ]);
  }

  /** The DNS name with the network's domain (`NAME.DOMAIN`), when the group has a DNS name and a storm Network. */
  get fqdn(): string | undefined {
    return this.dnsName && this.network ? `${this.dnsName}.${this.network.domain}` : undefined;
  }

  /** How many members the controller holds now. */
  get desired(): number {
    return this.resource.desired;
  }

  /** The members' names, by index. */
  get members(): string[] {
    return this.resource.members;
  }
}
