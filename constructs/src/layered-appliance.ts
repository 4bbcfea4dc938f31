// An appliance installed on a set of servers: on each, its base-OS layer (shared with every
// appliance there that names the same base) and its appliance layer over it — one
// storm_appliance per server. Deployments made over it follow it onto servers added later.
import { Construct } from 'constructs';
import type { Appliance } from './generated/appliance/index.ts';
import type { ApplianceSource, BoundAppliance } from './appliance-source.ts';
import { perServerId, type ApplianceServer } from './appliance-server.ts';
import { describe, validateProps } from './validation.ts';

export interface LayeredApplianceProps {
  /** The appliance: `channel.appliance('mail')`, or `ApplianceSource.fromImages({...})`. */
  readonly source: ApplianceSource;
  /**
   * The servers to install it on.
   * @default - none yet: add them with onServers()
   */
  readonly servers?: readonly ApplianceServer[];
  /**
   * Memory its instances get unless they say otherwise (MiB).
   * @default - the source's (from a channel: what the appliance's definition asks for)
   */
  readonly memoryMib?: number;
  /**
   * vCPUs its instances get unless they say otherwise.
   * @default - the source's (from a channel: what the appliance's definition asks for)
   */
  readonly vcpus?: number;
}

type Install = (server: ApplianceServer, appliance: Appliance) => void;

export class LayeredAppliance extends Construct {
  readonly name: string;
  /** The version installed (from a channel: the one the constraint chose, known at plan time). */
  readonly version: string;
  /** Services the appliance provides, when its source says (a channel's appliances do). */
  readonly provides: string[] | undefined;
  private readonly bound: BoundAppliance;
  private readonly installs = new Map<ApplianceServer, Appliance>();
  private readonly followers: Install[] = [];

  constructor(scope: Construct, id: string, private readonly props: LayeredApplianceProps) {
    super(scope, id);
    this.bound = props.source.bind(this);
    this.name = this.bound.name;
    this.version = this.bound.version;
    this.provides = this.bound.provides;
    validateProps(this, describe('LayeredAppliance', id), () => [
      ...this.bound.rules,
      {
        failed: this.installs.size === 0,
        message: `it is on no server: pass servers, or call ${id}.onServers([...]) with the servers it should be installed on.`,
      },
      ...this.servers
        .filter((s) => s.power === 'off')
        .map((s) => ({
          failed: true,
          message: `server "${s.name}" has power = 'off', so nothing can be installed on it: set its power to 'on' (or 'controller'), or leave it out of servers.`,
        })),
    ]);
    this.onServers(props.servers ?? []);
  }

  /** Installs the appliance on more servers (each once); deployments over it follow. */
  onServers(servers: readonly ApplianceServer[]): this {
    for (const server of servers) {
      if (this.installs.has(server)) continue;
      if (this.node.tryFindChild(perServerId(server))) {
        throw new Error(`LayeredAppliance "${this.node.id}": two servers are named "${server.name}"; give each ApplianceServer its own name.`);
      }
      const appliance = this.bound.install(this, perServerId(server), server.serverId, this.props);
      this.installs.set(server, appliance);
      for (const follow of this.followers) follow(server, appliance);
    }
    return this;
  }

  /** The servers it is installed on, in the order they were added. */
  get servers(): ApplianceServer[] {
    return [...this.installs.keys()];
  }

  /** Its storm_appliance on `server`, if it is installed there. */
  installationOn(server: ApplianceServer): Appliance | undefined {
    return this.installs.get(server);
  }

  /** Calls `install` for every server the appliance is on, now and when onServers adds one. */
  forEachServer(install: Install): void {
    this.followers.push(install);
    for (const [server, appliance] of this.installs) install(server, appliance);
  }
}
