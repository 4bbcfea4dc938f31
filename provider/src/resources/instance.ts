// storm_instance: a running copy of a deployment. Its disk is the writable instance layer (a
// qcow2 overlay on the deployment layer: creating one costs nothing in storage), beside it the
// empty swap and user disks its appliance asks for, its configuration a NoCloud seed with the
// deployment's and the instance's files, templates expanded with the instance's variables, and
// it runs as a libvirt domain on a network. Its hardware is its own, or else its appliance's.
// Making it (placement, reservation, disks, seed, domain) is host/instances.ts, shared with the controller.
import { DiagnosticError, attr, type AttributePath, type Diagnostic } from '../protocol/diagnostics.ts';
import { UNKNOWN } from '../protocol/cty/index.ts';
import type { ObjectValue, ResourceContext } from '../contract.ts';
import type { ResourceSchema } from '../schema/model.ts';
import { decodeBlock, defineResource, type Model } from '../schema/typed.ts';
import { between, nameValidator, oneOf } from '../schema/validators.ts';
import { basename } from 'node:path';
import { bytesToMib, MIB } from '../rules.ts';
import { domainXml } from '../drivers/domain-xml.ts';
import { defineDomain, getDomain, growRunningDisk, leaseIp, setDomainState, waitForLease, type DomainObservation, type DomainState } from '../drivers/domains.ts';
import { getVolume, resizeVolume } from '../drivers/volumes.ts';
import { instanceVolumeName, parseDataDiskVolumeName, seedVolumeName } from '../host/names.ts';
import { applianceUnder, instanceDomainSpec, INSTANCE_LABELS, makeInstance, newConsoleLogPath, removeInstance, resolveHardware, type Hardware, type InstanceSpec } from '../host/instances.ts';
import { overCommitment } from '../host/placement.ts';
import { layerId, parseImportId, parseLayerId, type LayerRef } from '../host/refs.ts';
import { diagnose, explained, readOrKeep, type Context } from './diagnose.ts';
import { fileBlock } from './file-block.ts';

const schema = {
  typeName: 'storm_instance',
  version: 0,
  description:
    'An instance of a deployment: a writable qcow2 layer over the deployment layer, a NoCloud seed with the deployment\'s and the instance\'s files (templates expanded with `variables` at creation), and a libvirt domain on a network with DHCP. ' +
    'Without `server`, placement picks the least-loaded server among the deployments\' servers that fits `memory_mib` (keeping each server\'s reserve) and `vcpus`. ' +
    'Beside its system disk (vda) and seed (vdb) it gets one new empty raw volume per swap or user disk of its appliance (`storm_appliance.disks`), attached in that order from vdc on, each with the disk\'s name as its serial (`/dev/disk/by-id/virtio-NAME` in the guest). ' +
    'They are blank: formatting them (mkswap, mkfs) and mounting them is the guest\'s business, e.g. from a deployment file. ' +
    'Destroying the instance removes them, except user disks when `keep_user_disks` is set.',
  block: {
    attributes: {
      id: { type: 'string', mode: 'computed', description: 'The instance reference: `VOLUME@SERVER_ID`. Import with `NAME@SERVER_ID`.' },
      name: { type: 'string', mode: 'required', forceNew: true, validators: [nameValidator], description: 'Instance name: the domain name and the guest\'s host name.' },
      deployments: {
        type: { list: 'string' },
        mode: 'required',
        description: 'The deployment on each server this instance may run on (`storm_deployment` ids); placement chooses among their servers.',
      },
      server: { type: 'string', mode: 'optional', observed: true, forceNew: true, description: 'Pin the instance to this server (a `storm_appliance_server` id); chosen by placement when unset.' },
      memory_mib: {
        type: 'number',
        mode: 'optional',
        observed: true,
        validators: [between(16, 1048576)],
        description: 'Guest memory (MiB). Unset: the appliance\'s `memory_mib` (from a channel, what its definition asks for), taken when the instance is created. Changing it restarts a running instance (said in the plan).',
      },
      vcpus: {
        type: 'number',
        mode: 'optional',
        observed: true,
        validators: [between(1, 256)],
        description: 'Guest vCPUs. Unset: the appliance\'s `vcpus`, taken when the instance is created. Changing it restarts a running instance.',
      },
      disk_size_mib: { type: 'number', mode: 'optional', observed: true, validators: [between(1, 67108864)], description: 'Size of the instance\'s disk; defaults to the appliance\'s. Growing is in place; shrinking replaces the instance.' },
      state: { type: 'string', mode: 'optional', default: 'running', validators: [oneOf('running', 'paused', 'shutoff')], description: '`running`, `paused` or `shutoff`; changed in place.' },
      network: { type: 'string', mode: 'optional', default: 'default', forceNew: true, description: 'The libvirt network (e.g. a `storm_network` name) the instance is attached to.' },
      variables: { type: { map: 'string' }, mode: 'optional', forceNew: true, description: 'Values for the templates\' `${name}`; expanded once, when the instance is created.' },
      keep_user_disks: {
        type: 'bool',
        mode: 'optional',
        default: false,
        description:
          'Keep the instance\'s user disks when it is destroyed or replaced: they stay in the server\'s pool (`user-NAME_DISK`), and the next instance of the same name re-attaches them, on that server (placement then looks nowhere else). ' +
          'Swap disks are never kept. To delete kept disks, set it to false and apply before destroying, or `virsh vol-delete --pool storm user-NAME_DISK`. ' +
          'Changing it changes nothing on the server; import sets it to false.',
      },
      ip_wait_seconds: { type: 'number', mode: 'optional', default: 120, validators: [between(0, 3600)], description: 'How long to wait for the instance\'s DHCP lease after it starts (0: do not wait).' },
      mac: { type: 'string', mode: 'computed', description: 'MAC address of the instance\'s NIC.' },
      ip: { type: 'string', mode: 'computed', description: 'IPv4 address from the network\'s DHCP lease (null when not running or not leased yet).' },
      volume: { type: 'string', mode: 'computed', description: 'Name of the instance-layer volume.' },
      console_log: { type: 'string', mode: 'computed', description: 'Path on the server of the file the guest\'s serial console writes to.' },
      disks: {
        type: { list: { object: { name: 'string', type: 'string', size_mib: 'number', volume: 'string', device: 'string' } } },
        mode: 'computed',
        description: 'The swap and user disks attached beside the system disk, in order: `name` (the appliance\'s, also the disk\'s serial), `type` (`swap` or `user`), `size_mib`, `volume` (in the server\'s `storm` pool) and `device` (`vdc`, `vdd`, …).',
      },
      webpanel_url: {
        type: 'string',
        mode: 'computed',
        description: 'The appliance\'s web control panel on this instance, `http://IP/PATH` (`PATH` from the appliance\'s `webpanel` when the instance was made); null while it has no IP or the appliance has no panel.',
      },
    },
    blocks: {
      file: fileBlock('A file for this instance only (wins over a deployment file with the same path); a template like the deployment\'s.', true),
    },
  },
} as const satisfies ResourceSchema;

type Instance = Model<typeof schema>;

const deploymentsOf = (i: Instance): LayerRef[] => i.deployments.map((d, index) => parseLayerId(d, 'dep', [{ attribute: 'deployments' }, { index }]));
const blame = (server: string | undefined, path: AttributePath = attr('deployments')): Context => ({ server, libvirt: { path, via: 'reference' }, files: attr('file') });

/** The deployment on the server the instance stands on (from state: `server`). */
function placedOn(i: Instance): LayerRef {
  const dep = deploymentsOf(i).find((d) => d.serverId === i.server);
  if (!dep) throw new DiagnosticError('Instance state names no server', 'The stored state has no server among its deployments; remove it from state and import it again.');
  return dep;
}

const hardwareOf = (i: Instance): Promise<Hardware> => resolveHardware(deploymentsOf(i), { memoryMib: i.memory_mib, vcpus: i.vcpus });

/** What the host model makes, from the resource's model. */
function specOf(i: Instance, deployments: readonly LayerRef[], hardware: Hardware): InstanceSpec {
  return { name: i.name, deployments, hardware, network: i.network, variables: i.variables ?? {}, files: i.file, diskSizeMib: i.disk_size_mib, state: i.state as DomainState, keepUserDisks: i.keep_user_disks };
}

type AttachedDisk = NonNullable<Instance['disks']>[number];

/** The swap and user disks the domain has; null when a volume it names is gone (the instance is then made whole again). */
async function attachedDisks(uri: string, d: DomainObservation): Promise<AttachedDisk[] | null> {
  const out: AttachedDisk[] = [];
  for (const x of d.dataDisks) {
    const volume = basename(x.path);
    const vol = await getVolume(uri, volume);
    if (!vol) return null;
    const parsed = parseDataDiskVolumeName(volume);
    out.push({ name: parsed?.disk ?? x.serial, type: parsed?.type ?? null, size_mib: bytesToMib(vol.capacity), volume, device: x.device });
  }
  return out;
}

/** The instance as the host shows it; null when its domain or one of its disks is gone. */
async function observed(ctx: ResourceContext, base: Instance, uri: string, waitForIp: boolean): Promise<Instance | null> {
  const [d, disk] = await Promise.all([getDomain(uri, base.name), getVolume(uri, instanceVolumeName(base.name))]);
  if (!d || !disk) return null;
  const disks = await attachedDisks(uri, d);
  if (!disks) return null;
  let ip: string | null = null;
  if (d.state === 'running' && d.mac) {
    const wait = waitForIp && base.ip_wait_seconds > 0;
    ip = wait ? await waitForLease(uri, base.network, d.mac, base.ip_wait_seconds * 1000, ctx.signal) : await leaseIp(uri, base.network, d.mac);
    if (!ip && wait) ctx.warn(`Instance "${base.name}" has no IP address yet`, `No DHCP lease on network "${base.network}" within ${base.ip_wait_seconds} s; the next refresh will show it.`, attr('ip'));
  }
  const panel = d.metadata[INSTANCE_LABELS.webpanel];
  const webpanel_url = ip && panel ? `http://${ip}${panel}` : null;
  return { ...base, state: d.state, memory_mib: d.memoryMib, vcpus: d.vcpus, disk_size_mib: bytesToMib(disk.capacity), mac: d.mac, ip, volume: disk.name, console_log: d.consoleLog, disks, webpanel_url };
}

export const instance = defineResource<typeof schema>({
  schema,

  validate(config) {
    const diags: Diagnostic[] = [];
    if (Array.isArray(config.deployments) && config.deployments.length === 0) {
      diags.push({ severity: 'error', summary: 'No deployments', detail: 'deployments needs at least one storm_deployment id.', path: attr('deployments') });
    }
    return diags;
  },

  refinePlan(prior, planned, config) {
    const next: ObjectValue = { ...planned };
    const warnings: Diagnostic[] = [];
    const requiresReplace = [];
    if (!prior) {
      for (const k of ['id', 'mac', 'ip', 'volume', 'console_log', 'disks', 'webpanel_url']) next[k] = UNKNOWN;
      if (config.server === null) next.server = UNKNOWN;
      // Left unset, the hardware is the appliance's, decided at create: the plan cannot show it
      // as known, because an appliance's memory_mib may change in place in this same apply, and
      // Terraform refuses a planned value that changes on the way (an "inconsistent final plan").
      if (config.memory_mib === null) next.memory_mib = UNKNOWN;
      if (config.vcpus === null) next.vcpus = UNKNOWN;
      return { planned: next };
    }
    const restart = (prior.memory_mib !== planned.memory_mib || prior.vcpus !== planned.vcpus) && prior.state === 'running' && planned.state !== 'shutoff';
    if (restart) {
      warnings.push({ severity: 'warning', summary: `storm will restart instance "${prior.name}"`, detail: 'Changing memory_mib or vcpus stops the guest, redefines it and starts it again.' });
    }
    const plannedDisk = planned.disk_size_mib;
    if (prior.disk_size_mib !== null && typeof plannedDisk === 'number' && plannedDisk < prior.disk_size_mib) requiresReplace.push(attr('disk_size_mib'));
    if (planned.state !== prior.state || restart) next.ip = next.webpanel_url = planned.state === 'running' ? UNKNOWN : null;
    const stillThere = Array.isArray(planned.deployments) && planned.deployments.some((d) => typeof d === 'string' && d.endsWith(`@${String(prior.server)}`));
    if (!stillThere) requiresReplace.push(attr('deployments'));
    return { planned: next, requiresReplace, warnings };
  },

  async create(ctx, planned) {
    const hw = await explained(blame(undefined), () => hardwareOf(planned));
    let deployments = deploymentsOf(planned);
    if (planned.server) {
      deployments = deployments.filter((d) => d.serverId === planned.server);
      if (!deployments.length) {
        throw new DiagnosticError('The server has none of these deployments', `server = "${planned.server}" is not among the servers of deployments (${deploymentsOf(planned).map((d) => d.serverId).join(', ')}). Pin one of those, or leave server unset.`, attr('server'));
      }
    }
    // Until placed, a failure to reach the only candidate is about that server: say its name.
    const progress: { on?: LayerRef } = { on: deployments.length === 1 ? deployments[0] : undefined };
    try {
      const { dep, disk } = await makeInstance(ctx, specOf(planned, deployments, hw), progress);
      const state = await observed(ctx, { ...planned, server: dep.serverId, id: layerId(disk.name, dep.serverId) }, dep.server.uri, true);
      if (!state) throw new Error(`instance ${planned.name} vanished right after it was created`);
      return state;
    } catch (err) {
      diagnose(err, blame(progress.on?.server.name));
    }
  },

  async read(ctx, state) {
    const dep = placedOn(state);
    return readOrKeep(ctx.warn, blame(dep.server.name), `instance "${state.name}"`, state, () => observed(ctx, state, dep.server.uri, false));
  },

  async update(ctx, prior, planned) {
    const dep = placedOn(prior);
    const uri = dep.server.uri;
    return explained(blame(dep.server.name), async () => {
      const d = await getDomain(uri, planned.name);
      if (!d) throw new DiagnosticError('The instance is gone', `Domain "${planned.name}" no longer exists on server "${dep.server.name}"; refresh and apply again to recreate it.`);
      const hw = await hardwareOf(planned);
      if (d.memoryMib !== hw.memoryMib || d.vcpus !== hw.vcpus) {
        const [disk, seed, app] = await Promise.all([getVolume(uri, instanceVolumeName(planned.name)), getVolume(uri, seedVolumeName(planned.name)), applianceUnder(dep)]);
        if (!disk || !seed) throw new DiagnosticError('The instance\'s volumes are gone', `${instanceVolumeName(planned.name)} or ${seedVolumeName(planned.name)} no longer exists on server "${dep.server.name}".`);
        if (d.state !== 'shutoff') await setDomainState(uri, planned.name, 'shutoff');
        // The instance keeps the disks it has, whatever its appliance asks of new instances now.
        const spec = await instanceDomainSpec(specOf(planned, [dep], hw), dep, app, { diskPath: disk.path, seedPath: seed.path, dataDisks: d.dataDisks }, d.mac ?? undefined, d.consoleLog ?? newConsoleLogPath(planned.name));
        await defineDomain(uri, domainXml({ ...spec, uuid: d.uuid ?? undefined }));
        // More memory is a placement like any other: recorded, then checked with every domain on
        // the server (other runs' included); too much, and the old size is put back.
        if (hw.memoryMib > d.memoryMib) {
          const { overMib, load } = await overCommitment(ctx.session, dep);
          if (overMib > 0) {
            await defineDomain(uri, domainXml({ ...spec, memoryMib: d.memoryMib, vcpus: d.vcpus, uuid: d.uuid ?? undefined }));
            await setDomainState(uri, planned.name, prior.state as DomainState);
            throw new DiagnosticError('The server has no room for this much memory', `Server "${dep.server.name}" would be ${overMib} MiB over what it may give (${load.committedMemoryMib} MiB committed of ${load.memoryMib - load.reservedMemoryMib} usable); instance "${planned.name}" keeps ${d.memoryMib} MiB. Lower memory_mib, or make room on the server.`, attr('memory_mib'));
          }
        }
      }
      const wantBytes = planned.disk_size_mib ? planned.disk_size_mib * MIB : null;
      if (wantBytes && prior.disk_size_mib !== null && wantBytes !== prior.disk_size_mib * MIB) {
        const current = await getDomain(uri, planned.name);
        if (current?.state === 'shutoff') await resizeVolume(uri, instanceVolumeName(planned.name), wantBytes);
        else await growRunningDisk(uri, planned.name, wantBytes);
      }
      await setDomainState(uri, planned.name, planned.state as DomainState);
      const state = await observed(ctx, planned, uri, planned.state === 'running' && prior.state !== 'running');
      if (!state) throw new Error(`instance ${planned.name} vanished during the update`);
      return state;
    });
  },

  async delete(ctx, prior) {
    const dep = placedOn(prior);
    const uri = dep.server.uri;
    const kept = await explained(blame(dep.server.name), () => removeInstance(uri, prior.name, { keepUserDisks: prior.keep_user_disks }));
    if (kept.length) {
      ctx.warn(
        `Kept the user disks of instance "${prior.name}" on server "${dep.server.name}"`,
        `keep_user_disks is set, so ${kept.join(', ')} stayed in the server's storm pool; the next instance named "${prior.name}" re-attaches them there. To delete them: virsh vol-delete --pool storm VOLUME (or set keep_user_disks = false and apply before destroying).`,
      );
    }
  },

  async importState(ctx, id) {
    const { name, ref } = parseImportId(id, 'inst', 'mx1@blade1@qemu+tcp://10.0.0.11/system');
    const d = await explained(blame(ref.server.name, []), () => getDomain(ref.server.uri, name));
    if (!d || !d.storm) throw new DiagnosticError('No such instance', `Server "${ref.server.name}" has no storm instance named "${name}".`);
    const parse = <T>(text: string | undefined, fallback: T): T => {
      try {
        return text ? (JSON.parse(text) as T) : fallback;
      } catch {
        return fallback;
      }
    };
    const variables = parse<Record<string, string>>(d.metadata.variables, {});
    // What the domain does not record takes its schema default; read fills what the host reports.
    const base = decodeBlock(schema.block, {
      id: layerId(instanceVolumeName(name), ref.serverId),
      name,
      deployments: [d.metadata.deployment ?? ''],
      server: ref.serverId,
      network: d.network,
      variables: Object.keys(variables).length ? variables : null,
      file: parse<unknown[]>(d.metadata.files, []),
    });
    const state = await explained(blame(ref.server.name, []), () => observed(ctx, base, ref.server.uri, false));
    if (!state) throw new DiagnosticError('No such instance', `Instance "${name}" has no disk ${instanceVolumeName(name)}.`);
    return state;
  },
});
