// storm_appliance_server: a physical host that runs appliances. storm reads its capacity
// through libvirt, keeps a memory reserve for the host itself (the paper's 128 MiB rule),
// owns one storage pool on it for appliance layers, and powers it through its BMC.
import { DiagnosticError, attr, type Diagnostic } from '../protocol/diagnostics.ts';
import { UNKNOWN } from '../protocol/cty/index.ts';
import type { ResourceContext } from '../contract.ts';
import type { ResourceSchema } from '../schema/model.ts';
import { decodeBlock, defineResource, type Model } from '../schema/typed.ts';
import { absolutePath, between, matches, nameValidator, oneOf } from '../schema/validators.ts';
import { HOST_RESERVE_MIB, LIBVIRT_URI_PATTERN } from '../rules.ts';
import { IpmiUnreachableError, LibvirtTlsError, LibvirtUnreachableError } from '../drivers/errors.ts';
import { controllerRequest } from '../drivers/controller-api.ts';
import { chassisPower, setChassisPower, type Bmc, type Power } from '../drivers/ipmi.ts';
import { waitUntilReachable, type HostObservation } from '../drivers/libvirt.ts';
import { POOL, SERVER_RECORD } from '../host/names.ts';
import { writeServerRecord } from '../host/records.ts';
import { serverId } from '../host/refs.ts';
import { diagnose, type Context } from './diagnose.ts';

const schema = {
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
        description:
          'How to reach the host\'s libvirt daemon: `qemu:///system`, `qemu+ssh://user@host/system`, `qemu+tls://host/system` or `qemu+tcp://host/system`. ' +
          'With TLS, `?pkipath=DIR` names the directory holding storm\'s client certificate (`storm tls client` makes one; default: libvirt\'s system PKI).',
      },
      reserved_memory_mib: {
        type: 'number',
        mode: 'optional',
        default: HOST_RESERVE_MIB,
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
        validators: [oneOf('on', 'off', 'controller')],
        description:
          'Desired chassis power, `on` or `off` (needs `ipmi`). storm reads the real power state on every refresh, so a host powered off out of band shows as a change in `terraform plan`. Powering off is refused while the host runs domains. ' +
          '`controller` leaves the power to the storm controller (needs `ipmi` and the provider\'s `controller` block): storm registers the BMC with it and never plans a power change. ' +
          'When the BMC does not answer, a refresh keeps the last known power (`on` if libvirt answers) with a warning, so the rest plans; an apply that changes power then fails.',
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
} as const satisfies ResourceSchema;

type Server = Model<typeof schema>;


const bmcOf = (s: Server): Bmc | null => (s.ipmi ? { address: s.ipmi.address, port: s.ipmi.port, username: s.ipmi.username, password: s.ipmi.password } : null);
/** The power Terraform wants; null when the controller decides it. */
const power = (s: Server): Power | null => (s.power === 'controller' ? null : s.power === 'off' ? 'off' : 'on');
const blame = (s: Server): Context => ({ server: s.name, libvirt: { path: attr('libvirt_uri'), via: 'uri', hasBmc: s.ipmi !== null } });

function withObservation(state: Server, host: HostObservation | null, power: Power): Server {
  // Under the controller the state says who decides, not what it decided: the power it chose
  // must not show as drift.
  const next: Server = { ...state, id: serverId(state.name, state.libvirt_uri), power: state.power === 'controller' ? 'controller' : power };
  if (host) Object.assign(next, { cpus: host.cpus, memory_mib: host.memoryMib, hypervisor: host.hypervisor, hostname: host.hostname });
  next.available_memory_mib = next.memory_mib === null ? null : Math.max(0, next.memory_mib - state.reserved_memory_mib);
  return next;
}

async function powerOn(ctx: ResourceContext, s: Server, bmc: Bmc): Promise<void> {
  ctx.log.info('powering on', { server: s.name, bmc: `${bmc.address}:${bmc.port}` });
  await setChassisPower(bmc, 'on');
  const started = Date.now();
  try {
    await waitUntilReachable(s.libvirt_uri, s.boot_timeout_seconds * 1000, ctx.signal);
    ctx.session.forget(s.libvirt_uri);
  } catch (err) {
    // A refused certificate means the host is up: the table (diagnose.ts) says which file to fix.
    if (err instanceof LibvirtUnreachableError && !(err instanceof LibvirtTlsError)) {
      throw new DiagnosticError(
        'The server did not come up',
        `Server "${s.name}" was powered on through its BMC, but libvirt at ${s.libvirt_uri} did not answer within ${s.boot_timeout_seconds} s: ${err.reason}. ` +
          'Check that libvirtd starts at boot on the host, or raise boot_timeout_seconds.',
        attr('boot_timeout_seconds'),
      );
    }
    throw err;
  }
  ctx.log.info('server answers libvirt', { server: s.name, seconds: (Date.now() - started) / 1000 });
}

async function powerOff(ctx: ResourceContext, s: Server, bmc: Bmc): Promise<void> {
  const host = await ctx.session.observe(s.libvirt_uri).catch(() => null);
  if (host && host.runningDomains > 0) {
    throw new DiagnosticError(
      'The server still runs domains',
      `Server "${s.name}" runs ${host.runningDomains} domain(s); storm does not cut their power. Stop or move them first, then apply again.`,
      attr('power'),
    );
  }
  ctx.log.info('powering off', { server: s.name });
  await setChassisPower(bmc, 'off');
  ctx.session.forget(s.libvirt_uri);
}

/** The server as read when it is on and libvirt answered; null when storm's pool is gone (plan to create it). */
function withHost(ctx: ResourceContext, state: Server, host: HostObservation): Server | null {
  if (!host.pools.has(POOL)) {
    ctx.log.info('storm pool is gone from the server; planning to create it again', { server: state.name, pool: POOL });
    return null;
  }
  return withObservation(state, host, 'on');
}

/**
 * Reads a server whose BMC does not answer. Its power is unknown, so the last known one is
 * kept, unless libvirt answers: a host whose libvirt answers is on. The warning says that a
 * power change cannot be planned on this, since the real power may differ.
 */
async function readWithoutBmc(ctx: ResourceContext, state: Server, bmc: Bmc, err: IpmiUnreachableError): Promise<Server | null> {
  const host = await ctx.session.observe(state.libvirt_uri).catch((e: unknown) => {
    if (e instanceof LibvirtUnreachableError) return null;
    throw e;
  });
  const kept = host
    ? 'Libvirt on the host answers, so storm takes it as powered on and read its capacity'
    : `Libvirt at ${state.libvirt_uri} does not answer either, so storm kept the last known power ("${state.power}") and capacity`;
  ctx.warn(
    `Could not read the power of server "${state.name}": its BMC at ${bmc.address}:${bmc.port} does not answer`,
    `${err.message}. ${kept}. Resources that need only libvirt plan as usual, but a change of power cannot be planned reliably and an apply that changes power fails until the BMC answers. ` +
      'Check that the BMC is up and reachable from here (ipmi.address, ipmi.port, its LAN channel enabled).',
    attr('ipmi', 'address'),
  );
  return host ? withHost(ctx, state, host) : withObservation(state, null, power(state) ?? 'off');
}

/**
 * Brings the server to its desired power and, when on, makes sure storm's pool exists.
 * A create that powered a host on and then failed powers it off again: a failed apply
 * leaves the rack as it found it.
 */
async function converge(ctx: ResourceContext, planned: Server, observedPower: Power | null, creating: boolean): Promise<Server> {
  const bmc = bmcOf(planned);
  let poweredOn = false;
  try {
    const now = observedPower ?? (bmc ? await chassisPower(bmc) : 'on');
    if (bmc && power(planned) === 'on' && now === 'off') {
      poweredOn = true;
      await powerOn(ctx, planned, bmc);
    }
    if (bmc && power(planned) === 'off' && now === 'on') await powerOff(ctx, planned, bmc);
    if ((power(planned) ?? now) === 'off') return withObservation(planned, null, 'off');
    const host = await ctx.session.observe(planned.libvirt_uri);
    await ctx.session.ensurePool(planned.libvirt_uri, planned.pool_path);
    const accelerator = planned.accelerator === 'kvm' || planned.accelerator === 'tcg' ? planned.accelerator : 'auto';
    await writeServerRecord(ctx.session, planned.libvirt_uri, { reservedMemoryMib: planned.reserved_memory_mib, accelerator });
    return withObservation(planned, host, 'on');
  } catch (err) {
    if (creating && poweredOn && bmc) {
      await setChassisPower(bmc, 'off').then(
        () => ctx.warn(`Powered server "${planned.name}" off again`, 'storm had powered it on for this create, which failed.'),
        () => ctx.warn(`Server "${planned.name}" stays powered on`, 'storm powered it on for this create, which failed, and could not power it off again.'),
      );
    }
    diagnose(err, blame(planned));
  }
}

function needsController(ctx: ResourceContext, s: Server): void {
  if (s.power === 'controller' && !ctx.provider.controller) {
    throw new DiagnosticError('power = "controller" needs the provider\'s controller block', `Server "${s.name}" leaves its power to the storm controller, but the provider has no controller { url, token, ca_pem } block. Add it, or set power to "on" or "off".`, attr('power'));
  }
}

/**
 * Tells the controller this server's BMC: with power = "controller" it may switch it; otherwise
 * it only reads its Watts (the status page's timeline), so a server declared on is never
 * powered off behind Terraform's back.
 */
async function register(ctx: ResourceContext, s: Server, priorHadBmc: boolean): Promise<void> {
  const controller = ctx.provider.controller;
  const bmc = bmcOf(s);
  const id = serverId(s.name, s.libvirt_uri);
  try {
    if (controller && bmc) {
      await controllerRequest(controller, 'PUT', `v1/servers/${encodeURIComponent(id)}`, { name: s.name, uri: s.libvirt_uri, bmc, powerSensor: null, managed: s.power === 'controller' });
    } else if (controller && priorHadBmc) {
      await controllerRequest(controller, 'DELETE', `v1/servers/${encodeURIComponent(id)}`);
    }
  } catch (err) {
    throw new DiagnosticError(`Could not hand server "${s.name}" to the controller`, `${(err as Error).message}. The server itself is as planned; apply again once the controller answers.`, attr('power'));
  }
}

export const applianceServer = defineResource<typeof schema>({
  schema,

  validate(config) {
    const diags: Diagnostic[] = [];
    if ((config.power === 'off' || config.power === 'controller') && config.ipmi === null) {
      diags.push({
        severity: 'error',
        summary: `power = "${String(config.power)}" needs an ipmi block`,
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
      const reserved = planned.reserved_memory_mib;
      next.available_memory_mib = prior.memory_mib === null ? null : typeof reserved === 'number' ? Math.max(0, prior.memory_mib - reserved) : UNKNOWN;
    }
    if (prior === null) next.id = typeof planned.name === 'string' && typeof planned.libvirt_uri === 'string' ? serverId(planned.name, planned.libvirt_uri) : UNKNOWN;
    return { planned: next };
  },

  async create(ctx, planned) {
    needsController(ctx, planned);
    const made = await converge(ctx, planned, null, true);
    await register(ctx, made, false);
    return made;
  },

  async read(ctx, state) {
    const bmc = bmcOf(state);
    try {
      let now: Power;
      try {
        now = bmc ? await chassisPower(bmc) : 'on';
      } catch (err) {
        // A BMC that does not answer must not stop the plan of everything on this server:
        // most of it needs only libvirt. A refused password is no outage (IpmiAuthError stays
        // an error): it fails every plan until the user fixes it, so it must not be hidden.
        if (err instanceof IpmiUnreachableError && bmc) return await readWithoutBmc(ctx, state, bmc, err);
        throw err;
      }
      if (now === 'off') return withObservation(state, null, 'off');
      let host: HostObservation;
      try {
        host = await ctx.session.observe(state.libvirt_uri);
      } catch (err) {
        if (err instanceof LibvirtUnreachableError && !(err instanceof LibvirtTlsError) && bmc) {
          ctx.warn(`Server "${state.name}" is powered on but libvirt does not answer yet`, `${err.message}. storm keeps what it knew; it may still be booting.`, attr('libvirt_uri'));
          return withObservation(state, null, 'on');
        }
        throw err;
      }
      return withHost(ctx, state, host);
    } catch (err) {
      diagnose(err, { ...blame(state), bmcFromState: true });
    }
  },

  async update(ctx, prior, planned) {
    // Changed BMC credentials are tried before they are stored: converge asks the BMC for its
    // power with them, and a refusal fails the update, so the state keeps the working ones.
    const bmcChanged = JSON.stringify(prior.ipmi) !== JSON.stringify(planned.ipmi);
    const priorPower = prior.power === 'off' || prior.power === 'on' ? prior.power : null;
    needsController(ctx, planned);
    const next = await converge(ctx, planned, bmcChanged ? null : priorPower, false);
    await register(ctx, next, prior.ipmi !== null);
    return next;
  },

  async delete(ctx, prior) {
    const bmc = bmcOf(prior);
    const controller = ctx.provider.controller;
    if (controller && bmc) {
      await controllerRequest(controller, 'DELETE', `v1/servers/${encodeURIComponent(prior.id ?? serverId(prior.name, prior.libvirt_uri))}`).catch((err: unknown) =>
        ctx.warn(`The controller may still power server "${prior.name}"`, `storm could not take it off the controller's list: ${(err as Error).message}`));
    }
    try {
      if (bmc && (await chassisPower(bmc)) === 'off') {
        ctx.warn(`Server "${prior.name}" is powered off`, `storm forgot it; its pool "${POOL}" stays on the host's disk.`);
        return;
      }
      const result = await ctx.session.removePoolIfEmpty(prior.libvirt_uri, [SERVER_RECORD]);
      if (!result.removed) {
        ctx.warn(
          `Kept pool "${POOL}" on server "${prior.name}"`,
          `It still holds ${result.volumes} volume(s). storm removes its pool only when it is empty; delete the volumes with virsh if you no longer need them.`,
        );
      }
    } catch (err) {
      diagnose(err, blame(prior));
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
    // Everything else takes its schema default; read fills what the host reports.
    return decodeBlock(schema.block, { id: serverId(name, uri), name, libvirt_uri: uri });
  },
});
