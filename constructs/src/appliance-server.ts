// A physical host that runs appliances: its libvirt daemon, and its BMC when storm (or the
// storm controller) is to switch it on and off.
import { TerraformStack, Token } from 'cdktf';
import { Construct } from 'constructs';
import { LIBVIRT_URI_PATTERN } from '../../provider/src/rules.ts';
import { absolutePath, matches, nameValidator } from '../../provider/src/schema/validators.ts';
import { ApplianceServer as ApplianceServerResource } from './generated/appliance-server/index.ts';
import { Storm } from './storm.ts';
import { describe, nameProp, providerRule, validateProps } from './validation.ts';

/**
 * Who decides the server's power: `on` and `off` are kept by Terraform; `controller` hands the
 * server to the storm controller, which powers it for the scaling groups placed on it.
 */
export type ServerPower = 'on' | 'off' | 'controller';

/** How instances run: `kvm` (hardware virtualization), `tcg` (QEMU's emulator) or `auto`. */
export type Accelerator = 'auto' | 'kvm' | 'tcg';

/** The server's BMC, reached with IPMI v2.0 over LAN. */
export interface Bmc {
  /** Host name or IP address of the BMC. */
  readonly address: string;
  /**
   * UDP port of the BMC.
   * @default 623
   */
  readonly port?: number;
  /** A BMC user with operator or administrator privilege. */
  readonly username: string;
  /** That user's password. Pass it from a variable or a secret, not a literal. */
  readonly password: string;
}

export interface ApplianceServerProps {
  /** How to reach the host's libvirt daemon: `qemu:///system`, `qemu+ssh://user@host/system`, `qemu+tls://host/system`, ... */
  readonly libvirtUri: string;
  /**
   * The server's name in storm (part of every reference to it).
   * @default - the construct's id
   */
  readonly name?: string;
  /**
   * The server's BMC.
   * @default - none: storm cannot change the server's power
   */
  readonly bmc?: Bmc;
  /**
   * Desired power (`off` and `controller` need `bmc`).
   * @default 'on'
   */
  readonly power?: ServerPower;
  /**
   * Memory (MiB) kept for the host itself; placement never gives it to appliances.
   * @default 128
   */
  readonly reservedMemoryMib?: number;
  /**
   * Directory of the storage pool that holds the appliance layers on the host.
   * @default '/var/lib/libvirt/storm'
   */
  readonly poolPath?: string;
  /**
   * How instances on this server run. Use `tcg` where /dev/kvm exists but does not work (VMs without nested virtualization).
   * @default 'auto'
   */
  readonly accelerator?: Accelerator;
  /**
   * How long to wait after powering on for libvirt on the host to answer, in seconds.
   * @default 300
   */
  readonly bootTimeoutSeconds?: number;
}

const LIBVIRT_URI = matches(LIBVIRT_URI_PATTERN, 'a libvirt URI for a QEMU host: use `qemu:///system` for this machine, or `qemu+ssh://user@host/system`, `qemu+tls://host/system`, `qemu+tcp://host/system`');

export class ApplianceServer extends Construct {
  readonly name: string;
  readonly power: ServerPower;
  readonly bmc: Bmc | undefined;
  readonly resource: ApplianceServerResource;

  constructor(scope: Construct, id: string, props: ApplianceServerProps) {
    super(scope, id);
    this.name = props.name ?? id;
    this.power = props.power ?? 'on';
    this.bmc = props.bmc;
    // The stack's provider block (made with defaults here when the stack has no Storm yet):
    // every chain of storm constructs starts from a server.
    const storm = Storm.of(this);
    this.resource = new ApplianceServerResource(this, 'server', {
      name: this.name,
      libvirtUri: props.libvirtUri,
      ipmi: props.bmc,
      power: props.power,
      reservedMemoryMib: props.reservedMemoryMib,
      poolPath: props.poolPath,
      accelerator: props.accelerator,
      bootTimeoutSeconds: props.bootTimeoutSeconds,
    });
    const kind = describe('ApplianceServer', this.name);
    validateProps(this, kind, () => [
      providerRule(nameProp(props.name), this.name, nameValidator),
      providerRule('libvirtUri', props.libvirtUri, LIBVIRT_URI),
      providerRule('poolPath', props.poolPath, absolutePath()),
      {
        failed: this.power !== 'on' && !props.bmc,
        message: `power = '${this.power}' needs bmc: storm switches a server through its BMC. Add bmc: { address, username, password }, or leave power at 'on'.`,
      },
      {
        failed: this.power === 'controller' && !storm.controller,
        message: "power = 'controller' hands the server to the storm controller, but the stack's Storm has no controller: pass controller to new Storm(stack, 'storm', { controller }).",
      },
      {
        failed: serversNamed(this, this.name).length > 1,
        message: `name "${this.name}" is also the name of ${serversNamed(this, this.name).filter((s) => s !== this).map((s) => s.node.path).join(', ')}: give each server its own name.`,
      },
    ]);
  }

  /** The reference other storm resources take (`NAME@LIBVIRT_URI`). */
  get serverId(): string {
    return this.resource.id;
  }

  /** Logical CPUs of the host (known once it was seen powered on). */
  get cpus(): number {
    return this.resource.cpus;
  }

  /** Memory appliances may use: the host's memory less `reservedMemoryMib`. */
  get availableMemoryMib(): number {
    return this.resource.availableMemoryMib;
  }
}

const serversNamed = (scope: Construct, name: string) =>
  TerraformStack.of(scope).node.findAll().filter((c): c is ApplianceServer => c instanceof ApplianceServer && c.name === name);

/**
 * The id of what a construct makes for one server (an installation, a deployment layer, a
 * network): the server's name, which reads well in Terraform addresses, unless Terraform only
 * knows the name later.
 */
export const perServerId = (server: ApplianceServer): string => (Token.isUnresolved(server.name) ? server.node.addr : server.name);
