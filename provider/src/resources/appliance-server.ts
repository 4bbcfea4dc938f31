// storm_appliance_server: a physical host that runs appliances. storm reads its capacity
// through libvirt, keeps a memory reserve for the host itself (the paper's 128 MiB rule),
// owns one storage pool on it for appliance layers, and powers it through its BMC.
import { DiagnosticError, attr, type Diagnostic } from '../protocol/diagnostics.ts';
import { UNKNOWN } from '../protocol/cty/index.ts';
import type { ResourceSchema } from '../schema/model.ts';
import { absolutePath, between, matches, nameValidator, oneOf } from '../schema/validators.ts';
import { IpmiAuthError, IpmiUnreachableError, LibvirtUnreachableError } from '../drivers/errors.ts';
import { chassisPower, setChassisPower, type Bmc, type Power } from '../drivers/ipmi.ts';
import { ensurePool, forgetObservation, observeHost, removePoolIfEmpty, waitUntilReachable, type HostObservation } from '../drivers/libvirt.ts';
import { POOL } from '../drivers/volumes.ts';
import { num, str, type ObjectValue, type ResourceContext, type ResourceDefinition } from './resource.ts';
import { SERVER_RECORD, serverId, writeServerRecord, type Accelerator } from './server-ref.ts';

export const LIBVIRT_URI_PATTERN = /^qemu(\+(tcp|tls|ssh|libssh|libssh2|unix))?:\/\/[^\s/]*\/system(\?\S*)?$/;

const schema: ResourceSchema = {
  typeName: 'storm_appliance_server',
  version: 0,
  description:
    'A physical host that runs virtual appliances. storm connects to its libvirt daemon, reads its capacity, ' +
    'keeps a memory reserve for the host, creates the storage pool that holds appliance layers, and ' +
    '(with an `ipmi` block) powers the host on and off through its BMC.',
  block: {
    attributes: {
      id: { type: 'string', mode: 'computed', description: 'The server reference other storm resources take: `NAME@LIBVIRT_URI`.' },
      name: { type: 'string', mode: 'required', forceNew: true, validators: [nameValidator], description: 'Name of the server in storm, e.g. `blade-1`.' },
      libvirt_uri: {
        type: 'string',
        mode: 'required',
        forceNew: true,
        validators: [
          matches(
            LIBVIRT_URI_PATTERN,
            'a libvirt URI for a QEMU host: use `qemu:///system` for this machine, or `qemu+ssh://user@host/system`, `qemu+tls://host/system`, `qemu+tcp://host/system` for another one',
          ),
        ],
        description: 'How to reach the host\'s libvirt daemon: `qemu:///system`, `qemu+ssh://user@host/system`, `qemu+tls://host/system` or `qemu+tcp://host/system`.',
      },
      reserved_memory_mib: {
        type: 'number',
        mode: 'optional',
        default: 128,
        validators: [between(0, 1048576)],
        description: 'Memory (MiB) kept free for the host itself; placement never gives it to appliances.',
      },
      pool_path: {
        type: 'string',
        mode: 'optional',
        default: '/var/lib/libvirt/storm',
        forceNew: true,
        validators: [absolutePath()],
        description: 'Directory of the libvirt storage pool `storm` on the host, which holds the appliance layers.',
      },
      power: {
        type: 'string',
        mode: 'optional',
        default: 'on',
        validators: [oneOf('on', 'off')],
        description:
          'Desired chassis power, `on` or `off` (needs `ipmi`). storm reads the real power state on every refresh, so a host powered off out of band shows as a change in `terraform plan`. Powering off is refused while the host runs domains.',
      },
      accelerator: {
        type: 'string',
        mode: 'optional',
        default: 'auto',
        validators: [oneOf('auto', 'kvm', 'tcg')],
        description:
          'How instances on this server run: `kvm` (hardware virtualization), `tcg` (QEMU\'s emulator: slow, but works everywhere) or `auto` (kvm when libvirt offers it). Use `tcg` where /dev/kvm exists but does not work, e.g. inside VMs without nested virtualization.',
      },
      boot_timeout_seconds: {
        type: 'number',
        mode: 'optional',
        default: 300,
        validators: [between(1, 3600)],
        description: 'How long to wait after powering on for libvirt on the host to answer.',
      },
      cpus: { type: 'number', mode: 'computed', description: 'Logical CPUs of the host (null until it was first seen powered on).' },
      memory_mib: { type: 'number', mode: 'computed', description: 'Physical memory of the host in MiB.' },
      available_memory_mib: { type: 'number', mode: 'computed', description: '`memory_mib` minus `reserved_memory_mib`: what appliances may use.' },
      hypervisor: { type: 'string', mode: 'computed', description: 'The hypervisor libvirt drives, e.g. `QEMU 7.2.0`.' },
      hostname: { type: 'string', mode: 'computed', description: 'The host name libvirt reports.' },
    },
    blocks: {
      ipmi: {
        nesting: 'single',
        description: 'The host\'s BMC, reached with IPMI v2.0 over LAN (`ipmitool -I lanplus`). Without it storm cannot change the host\'s power.',
        block: {
          attributes: {
            address: { type: 'string', mode: 'required', description: 'Host name or IP address of the BMC.' },
            port: { type: 'number', mode: 'optional', default: 623, validators: [between(1, 65535)], description: 'UDP port of the BMC.' },
            username: { type: 'string', mode: 'required', description: 'BMC user with operator or administrator privilege.' },
            password: { type: 'string', mode: 'required', sensitive: true, description: 'Password of that user.' },
          },
        },
      },
    },
  },
};

interface ServerConfig {
  name: string;
  uri: string;
  reservedMib: number;
  poolPath: string;
  power: Power;
  bootTimeoutSeconds: number;
  accelerator: Accelerator;
  bmc: Bmc | null;
}

function configOf(v: ObjectValue): ServerConfig {
  const ipmi = v.ipmi as ObjectValue | null;
  return {
    name: str(v.name) ?? '',
    uri: str(v.libvirt_uri) ?? '',
    reservedMib: num(v.reserved_memory_mib) ?? 128,
    poolPath: str(v.pool_path) ?? '/var/lib/libvirt/storm',
    power: str(v.power) === 'off' ? 'off' : 'on',
    bootTimeoutSeconds: num(v.boot_timeout_seconds) ?? 300,
    accelerator: str(v.accelerator) === 'kvm' ? 'kvm' : str(v.accelerator) === 'tcg' ? 'tcg' : 'auto',
    bmc: ipmi
      ? { address: str(ipmi.address) ?? '', port: num(ipmi.port) ?? 623, username: str(ipmi.username) ?? '', password: str(ipmi.password) ?? '' }
      : null,
  };
}

function withObservation(state: ObjectValue, host: HostObservation | null, power: Power): ObjectValue {
  const reserved = num(state.reserved_memory_mib) ?? 128;
  const next: ObjectValue = { ...state, id: serverId(str(state.name) ?? '', str(state.libvirt_uri) ?? ''), power };
  if (host) {
    next.cpus = host.cpus;
    next.memory_mib = host.memoryMib;
    next.hypervisor = host.hypervisor;
    next.hostname = host.hostname;
  }
  for (const k of ['cpus', 'memory_mib', 'hypervisor', 'hostname'] as const) next[k] ??= null;
  const memory = num(next.memory_mib);
  next.available_memory_mib = memory === null ? null : Math.max(0, memory - reserved);
  return next;
}

/** Turns driver failures into diagnostics that blame the attribute the user can fix. */
function explain(err: unknown, c: ServerConfig): never {
  if (err instanceof IpmiAuthError) {
    throw new DiagnosticError('The BMC refused storm\'s credentials', `${err.message}. Check ipmi.username and ipmi.password for server "${c.name}".`, attr('ipmi', 'password'));
  }
  if (err instanceof IpmiUnreachableError) {
    throw new DiagnosticError('The BMC did not answer', `${err.message}. Check ipmi.address and ipmi.port for server "${c.name}", and that the BMC's LAN channel is enabled.`, attr('ipmi', 'address'));
  }
  if (err instanceof LibvirtUnreachableError) {
    throw new DiagnosticError(
      'Cannot reach libvirt on the server',
      `${err.message}. Check libvirt_uri for server "${c.name}": is libvirtd running on the host and reachable from here?` +
        (c.bmc ? '' : ' If the host is powered off, add an ipmi block so storm can power it on.'),
      attr('libvirt_uri'),
    );
  }
  throw err;
}

async function powerOn(ctx: ResourceContext, c: ServerConfig, bmc: Bmc): Promise<void> {
  ctx.log.info('powering on', { server: c.name, bmc: `${bmc.address}:${bmc.port}` });
  await setChassisPower(bmc, 'on');
  const started = Date.now();
  try {
    await waitUntilReachable(c.uri, c.bootTimeoutSeconds * 1000, ctx.signal);
  } catch (err) {
    if (err instanceof LibvirtUnreachableError) {
      throw new DiagnosticError(
        'The server did not come up',
        `Server "${c.name}" was powered on through its BMC, but libvirt at ${c.uri} did not answer within ${c.bootTimeoutSeconds} s: ${err.reason}. ` +
          'Check that libvirtd starts at boot on the host, or raise boot_timeout_seconds.',
        attr('boot_timeout_seconds'),
      );
    }
    throw err;
  }
  ctx.log.info('server answers libvirt', { server: c.name, seconds: (Date.now() - started) / 1000 });
}

async function powerOff(ctx: ResourceContext, c: ServerConfig, bmc: Bmc): Promise<void> {
  const host = await observeHost(c.uri).catch(() => null);
  if (host && host.runningDomains > 0) {
    throw new DiagnosticError(
      'The server still runs domains',
      `Server "${c.name}" runs ${host.runningDomains} domain(s); storm does not cut their power. Stop or move them first, then apply again.`,
      attr('power'),
    );
  }
  ctx.log.info('powering off', { server: c.name });
  await setChassisPower(bmc, 'off');
  forgetObservation(c.uri);
}

/**
 * Brings the server to its desired power and, when on, makes sure storm's pool exists.
 * A create that powered a host on and then failed powers it off again: a failed apply
 * leaves the rack as it found it.
 */
async function converge(ctx: ResourceContext, planned: ObjectValue, observedPower: Power | null, creating: boolean): Promise<ObjectValue> {
  const c = configOf(planned);
  let poweredOn = false;
  try {
    const power = observedPower ?? (c.bmc ? await chassisPower(c.bmc) : 'on');
    if (c.bmc && c.power === 'on' && power === 'off') {
      poweredOn = true;
      await powerOn(ctx, c, c.bmc);
    }
    if (c.bmc && c.power === 'off' && power === 'on') await powerOff(ctx, c, c.bmc);
    if (c.power === 'off') return withObservation(planned, null, 'off');
    const host = await observeHost(c.uri);
    await ensurePool(c.uri, POOL, c.poolPath);
    await writeServerRecord(c.uri, { reservedMemoryMib: c.reservedMib, accelerator: c.accelerator });
    return withObservation(planned, host, 'on');
  } catch (err) {
    if (creating && poweredOn && c.bmc) {
      await setChassisPower(c.bmc, 'off').then(
        () => ctx.warn(`Powered server "${c.name}" off again`, 'storm had powered it on for this create, which failed.'),
        () => ctx.warn(`Server "${c.name}" stays powered on`, 'storm powered it on for this create, which failed, and could not power it off again.'),
      );
    }
    explain(err, c);
  }
}

export const applianceServer: ResourceDefinition = {
  schema,

  validate(config) {
    const diags: Diagnostic[] = [];
    if (config.power === 'off' && config.ipmi === null) {
      diags.push({
        severity: 'error',
        summary: 'power = "off" needs an ipmi block',
        detail: 'storm switches a server\'s power through its BMC. Add ipmi { address, username, password } to this server, or remove power.',
        path: attr('power'),
      });
    }
    return diags;
  },

  refinePlan(prior, planned) {
    const next = { ...planned };
    const turningOn = planned.power === 'on' && (prior === null || prior.cpus === null || prior.power === 'off');
    if (turningOn && (prior === null || prior.cpus === null)) {
      for (const k of ['cpus', 'memory_mib', 'available_memory_mib', 'hypervisor', 'hostname']) next[k] = UNKNOWN;
    } else if (prior) {
      const memory = num(prior.memory_mib);
      const reserved = num(planned.reserved_memory_mib);
      next.available_memory_mib = memory === null ? null : reserved === null ? UNKNOWN : Math.max(0, memory - reserved);
    }
    if (prior === null) next.id = typeof planned.name === 'string' && typeof planned.libvirt_uri === 'string' ? serverId(planned.name, planned.libvirt_uri) : UNKNOWN;
    return { planned: next };
  },

  async create(ctx, planned) {
    return converge(ctx, planned, null, true);
  },

  async read(ctx, state) {
    const c = configOf(state);
    try {
      const power = c.bmc ? await chassisPower(c.bmc) : 'on';
      if (power === 'off') return withObservation(state, null, 'off');
      let host: HostObservation;
      try {
        host = await observeHost(c.uri);
      } catch (err) {
        if (err instanceof LibvirtUnreachableError && c.bmc) {
          ctx.warn(`Server "${c.name}" is powered on but libvirt does not answer yet`, `${err.message}. storm keeps what it knew; it may still be booting.`, attr('libvirt_uri'));
          return withObservation(state, null, 'on');
        }
        throw err;
      }
      if (!host.pools.has(POOL)) {
        ctx.log.info('storm pool is gone from the server; planning to create it again', { server: c.name, pool: POOL });
        return null;
      }
      return withObservation(state, host, 'on');
    } catch (err) {
      explain(err, c);
    }
  },

  async update(ctx, prior, planned) {
    const power = prior.power === 'off' || prior.power === 'on' ? (prior.power as Power) : null;
    return converge(ctx, planned, power, false);
  },

  async delete(ctx, prior) {
    const c = configOf(prior);
    try {
      if (c.bmc && (await chassisPower(c.bmc)) === 'off') {
        ctx.warn(`Server "${c.name}" is powered off`, `storm forgot it; its pool "${POOL}" stays on the host's disk.`);
        return;
      }
      const result = await removePoolIfEmpty(c.uri, POOL, [SERVER_RECORD]);
      if (!result.removed) {
        ctx.warn(
          `Kept pool "${POOL}" on server "${c.name}"`,
          `It still holds ${result.volumes} volume(s). storm removes its pool only when it is empty; delete the volumes with virsh if you no longer need them.`,
        );
      }
    } catch (err) {
      explain(err, c);
    }
  },

  async importState(_ctx, id) {
    const at = id.indexOf('@');
    const name = at < 0 ? id : id.slice(0, at);
    const uri = at < 0 ? 'qemu:///system' : id.slice(at + 1);
    if (nameValidator(name) !== undefined || !LIBVIRT_URI_PATTERN.test(uri)) {
      throw new DiagnosticError(
        'Invalid import id',
        `"${id}" is not NAME or NAME@LIBVIRT_URI. Example: terraform import storm_appliance_server.blade1 'blade1@qemu+tcp://10.0.0.11/system' (NAME alone means qemu:///system).`,
      );
    }
    const state: ObjectValue = {};
    for (const [k, spec] of Object.entries(schema.block.attributes)) state[k] = spec.default ?? null;
    return { ...state, id: serverId(name, uri), name, libvirt_uri: uri, ipmi: null };
  },
};
