// Making an instance on the hosts: the work behind storm_instance's create and the controller's
// scale-outs, so both make one the same way. It is placed and reserved on a host first (its
// domain, defined at once, holds the place: host/placement.ts), then gets its disk (a qcow2
// overlay on the deployment layer), the empty swap and user disks its appliance asks for, and
// its NoCloud seed, then its complete definition, then the state asked for. What an
// interrupted make left (storm's domain, its disks) is adopted; so is a user disk a destroyed
// predecessor of the same name kept on that server.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { DiagnosticError, attr } from '../protocol/diagnostics.ts';
import type { Logger } from '../contract.ts';
import type { AttributePath } from '../protocol/diagnostics.ts';
import { DEFAULT_MEMORY_MIB, DEFAULT_VCPUS, MIB } from '../rules.ts';
import { domainXml, type DataDiskAttachment, type DomainSpec } from '../drivers/domain-xml.ts';
import { defineDomain, getDomain, removeDomain, setDomainState, type DomainObservation, type DomainState } from '../drivers/domains.ts';
import { offersKvm } from '../drivers/libvirt.ts';
import { createEmptyVolume, createOverlay, deleteVolume, getVolume, listVolumeNames, resizeVolume, uploadVolume, type Volume } from '../drivers/volumes.ts';
import { withTempDir } from '../drivers/tempdir.ts';
import { expandTemplate } from '../drivers/seed/template.ts';
import { nocloudSeed } from '../drivers/seed/nocloud.ts';
import { dataDiskPrefix, dataDiskVolumeName, instanceVolumeName, seedVolumeName } from './names.ts';
import { outwaitReservation, overCommitment, placeAndReserve, releasePlacement, reservationMetadata, RESERVATION_LEASE_MS, type Reservation, type ServerBusy } from './placement.ts';
import { readLayerRecord, readServerRecord, type ApplianceRecord, type DataDiskSpec, type DeploymentFile, type DeploymentRecord } from './records.ts';
import { layerId, type LayerRef } from './refs.ts';
import type { HostSession } from './session.ts';
import type { PlacementMode } from '../policy/placement.ts';

export interface Hardware {
  memoryMib: number;
  vcpus: number;
}

/** What an instance is made of. */
export interface InstanceSpec {
  name: string;
  /** The deployments it may stand on (one, when it is pinned to a server). */
  deployments: readonly LayerRef[];
  hardware: Hardware;
  network: string;
  /** Values for the templates' `${name}` (over the deployment's own). */
  variables: Record<string, string>;
  /** The instance's own files; they win over the deployment's with the same path. */
  files: readonly DeploymentFile[];
  diskSizeMib: number | null;
  state: DomainState;
  /** More of storm's metadata on the domain, e.g. the scaling group it belongs to. */
  labels?: Readonly<Record<string, string>>;
  /** Among the candidates: the least-loaded (the paper's, default) or the fullest that fits (fewest servers on). */
  placement?: PlacementMode;
  /**
   * Each candidate server's CPU as the controller last measured it (0..1, by server id), and the
   * bar from which a server is saturated and takes no new member (policy/placement.ts). Unset
   * for Terraform's instances.
   */
  busy?: ServerBusy;
  /**
   * Its user disks outlive it (storm_instance's keep_user_disks): it goes back to the server
   * that holds the ones a predecessor of its name kept, to re-attach them.
   */
  keepUserDisks?: boolean;
}

/** Who asks, and how they hear of it: a provider resource or a controller pass. */
export interface Maker {
  readonly session: HostSession;
  readonly log: Logger;
  readonly signal: AbortSignal;
  warn(summary: string, detail?: string, path?: AttributePath): void;
}

/** Domain metadata keys storm reads back beside the instance's own. */
export const INSTANCE_LABELS = {
  /** The appliance's web panel path when the instance was made: its webpanel_url. */
  webpanel: 'webpanel',
} as const;

/** The instance's deployments as the domain records them (what import reads back). */
function domainMetadata(spec: InstanceSpec, dep: LayerRef, app: ApplianceRecord | null): Record<string, string> {
  return {
    deployment: layerId(dep.volume, dep.serverId),
    variables: JSON.stringify(spec.variables),
    files: JSON.stringify(spec.files),
    ...(app?.webpanel ? { [INSTANCE_LABELS.webpanel]: app.webpanel } : {}),
    ...spec.labels,
  };
}

function renderFiles(i: InstanceSpec, record: DeploymentRecord): DeploymentFile[] {
  const variables = { ...record.variables, ...i.variables };
  const byPath = new Map<string, DeploymentFile>();
  for (const f of [...record.files, ...i.files]) byPath.set(f.path, f);
  const problems: string[] = [];
  const out: DeploymentFile[] = [];
  for (const f of byPath.values()) {
    const r = expandTemplate(f.content, variables);
    if ('missing' in r) problems.push(`${f.path} uses ${r.missing.map((m) => '${' + m + '}').join(', ')}`);
    else out.push({ ...f, content: r.text });
  }
  if (problems.length) {
    throw new DiagnosticError(
      'Undefined template variable',
      `${problems.join('; ')}, which neither this instance's variables nor deployment ${record.volume}'s define. Add them to variables (known: ${Object.keys(variables).join(', ') || 'none'}).`,
      attr('variables'),
    );
  }
  return out;
}

async function domainType(uri: string): Promise<'kvm' | 'qemu'> {
  const accelerator = (await readServerRecord(uri))?.accelerator ?? 'auto';
  if (accelerator !== 'auto') return accelerator === 'kvm' ? 'kvm' : 'qemu';
  return (await offersKvm(uri).catch(() => false)) ? 'kvm' : 'qemu';
}

/** The appliance under a deployment; null when its records are not there (yet). */
export async function applianceUnder(dep: LayerRef, depRecord?: DeploymentRecord | null): Promise<ApplianceRecord | null> {
  const record = depRecord === undefined ? await readLayerRecord<DeploymentRecord>(dep.server.uri, dep.volume) : depRecord;
  return record ? readLayerRecord<ApplianceRecord>(dep.server.uri, record.appliance) : null;
}

/** What the appliance under a deployment asks for; null when its records are not there (yet). */
async function applianceHardware(dep: LayerRef): Promise<Hardware | null> {
  const app = await applianceUnder(dep);
  return app ? { memoryMib: app.memoryMib, vcpus: app.vcpus } : null;
}

/** The hardware asked for, else the appliance's (from the first deployment that answers), else storm's default. */
export async function resolveHardware(deployments: readonly LayerRef[], asked: { memoryMib: number | null; vcpus: number | null }): Promise<Hardware> {
  let fromAppliance: Hardware | null = null;
  if (asked.memoryMib === null || asked.vcpus === null) {
    for (const dep of deployments) {
      fromAppliance = await applianceHardware(dep).catch(() => null);
      if (fromAppliance) break;
    }
  }
  return { memoryMib: asked.memoryMib ?? fromAppliance?.memoryMib ?? DEFAULT_MEMORY_MIB, vcpus: asked.vcpus ?? fromAppliance?.vcpus ?? DEFAULT_VCPUS };
}

/** One log per incarnation: a re-created instance must not show its predecessor's boots. */
export function newConsoleLogPath(name: string): string {
  return `/var/log/libvirt/qemu/${name}-${randomBytes(4).toString('hex')}-console.log`;
}

export interface InstanceDisks {
  diskPath: string;
  seedPath: string;
  dataDisks: readonly DataDiskAttachment[];
}

/** The swap and user disks an instance of `app` gets, in the order they are attached. */
export const dataDisksOf = (app: ApplianceRecord | null): readonly DataDiskSpec[] => app?.disks ?? [];

/** The complete domain of an instance standing on `dep`, whose appliance is `app`. */
export async function instanceDomainSpec(i: InstanceSpec, dep: LayerRef, app: ApplianceRecord | null, disks: InstanceDisks, mac: string | undefined, consoleLog: string): Promise<DomainSpec> {
  const uri = dep.server.uri;
  let kernel: DomainSpec['kernel'];
  if (app?.boot) {
    const [k, r] = await Promise.all([getVolume(uri, app.boot.kernel), getVolume(uri, app.boot.initrd)]);
    if (k && r) kernel = { kernelPath: k.path, initrdPath: r.path, cmdline: app.boot.cmdline };
  }
  return {
    name: i.name,
    type: await domainType(uri),
    memoryMib: i.hardware.memoryMib,
    vcpus: i.hardware.vcpus,
    ...disks,
    network: i.network,
    mac,
    consoleLog,
    kernel,
    metadata: domainMetadata(i, dep, app),
  };
}

async function uploadSeed(uri: string, volume: string, iso: Uint8Array): Promise<string> {
  return withTempDir(async (dir) => {
    await writeFile(join(dir, 'seed.iso'), iso);
    return (await uploadVolume(uri, volume, join(dir, 'seed.iso'))).path;
  });
}

/** Where the reservation stands: what making goes on from once placement has been decided. */
interface Reserved {
  dep: LayerRef;
  record: DeploymentRecord;
  app: ApplianceRecord | null;
  below: Volume;
  seed: Uint8Array;
  /** Adopted: an interrupted create's domain, kept with its identity. */
  existing: DomainObservation | null;
  /** This create defined the domain (so a failure undefines it). */
  defined: boolean;
  /** When others stop counting the reservation (epoch ms); null when adopting. */
  leaseEnd: number | null;
}

/**
 * Places the instance and reserves the place on the host: its domain is defined at once (the
 * disks come after), marked with a lease, so concurrent applies and the controller count it.
 */
async function placeAndDefine(ctx: Maker, i: InstanceSpec, progress: { on?: LayerRef }): Promise<Reserved> {
  const hw = i.hardware;
  const keptOn = i.keepUserDisks ? await serversKeepingUserDisks(i) : [];
  const deployments = keptOn.length ? i.deployments.filter((d) => keptOn.includes(d.serverId)) : i.deployments;
  if (keptOn.length) ctx.log.info('placing the instance where its kept user disks are', { instance: i.name, servers: keptOn.join(',') });
  let reserved: Reserved | undefined;
  const reserve = async (dep: LayerRef): Promise<Reservation> => {
    progress.on = dep;
    const uri = dep.server.uri;
    // A domain storm defined for this instance on this deployment is what an interrupted
    // create (or a lost state) left: it is adopted, keeping its identity; if another run's
    // reservation (a run killed a moment ago, or making it right now) it is waited out first.
    // Anything else with the name is somebody else's, and is never touched.
    const existing = await outwaitReservation(ctx.session, uri, i.name, ctx.signal);
    const deploymentId = layerId(dep.volume, dep.serverId);
    if (existing && !(existing.storm && existing.metadata.deployment === deploymentId)) {
      const whose = existing.storm ? `storm made it for ${existing.metadata.deployment ?? 'another deployment'}` : 'storm did not make it';
      throw new DiagnosticError('The instance already exists', `Server "${dep.server.name}" already has a domain named "${i.name}" (${whose}). Import it (terraform import) or choose another name.`, attr('name'));
    }
    const [record, below] = await Promise.all([readLayerRecord<DeploymentRecord>(uri, dep.volume), getVolume(uri, dep.volume)]);
    if (!record || !below) throw new DiagnosticError('The deployment is not there', `Server "${dep.server.name}" has no ${dep.volume}.`, attr('deployments'));
    const app = await applianceUnder(dep, record);
    // Rendered before anything is defined: a template error must leave nothing behind.
    const seed = nocloudSeed({ instanceId: i.name, hostname: i.name, files: renderFiles(i, record) }).iso;
    reserved = { dep, record, app, below, seed, existing, defined: false, leaseEnd: null };
    if (existing) {
      ctx.log.warn('adopting the domain an interrupted create left', { instance: i.name, server: dep.server.name, state: existing.state });
      return { undo: async () => {} };
    }
    // Volumes of a dir pool are files named after them next to each other: the disks' paths are known before they exist.
    const dir = dirname(below.path);
    const dataDisks = dataDisksOf(app).map((d) => ({ path: join(dir, dataDiskVolumeName(i.name, d.type, d.name)), serial: d.name }));
    const spec = await instanceDomainSpec(i, dep, app, { diskPath: join(dir, instanceVolumeName(i.name)), seedPath: join(dir, seedVolumeName(i.name)), dataDisks }, undefined, newConsoleLogPath(i.name));
    const now = Date.now();
    await defineDomain(uri, domainXml({ ...spec, metadata: { ...spec.metadata, ...reservationMetadata(ctx.session, now) } }));
    reserved.defined = true;
    reserved.leaseEnd = now + RESERVATION_LEASE_MS;
    return {
      undo: async () => {
        await removeDomain(uri, i.name);
        reserved = undefined;
      },
    };
  };
  const decision = await placeAndReserve(ctx.session, i.name, hw, deployments, reserve, i.placement ?? 'spread', i.busy);
  if ('error' in decision.placement || !decision.chosen || !reserved) {
    const why = 'error' in decision.placement ? decision.placement.error : 'no candidate answered.';
    const unanswered = decision.unreachable.length ? ` (${decision.unreachable.join(', ')} did not answer and were left out)` : '';
    const kept = keptOn.length
      ? ` Its kept user disks are on ${deployments.map((d) => d.server.name).join(', ')}, so placement looked nowhere else; make room there, or remove those disks (virsh vol-delete --pool storm ${dataDiskPrefix(i.name, 'user')}…) to place it anew.`
      : '';
    throw new DiagnosticError('No server fits this instance', `${why}${unanswered} Lower memory_mib or vcpus, raise a server's capacity, or add a deployment on another server.${kept}`, attr('memory_mib'));
  }
  if (decision.unreachable.length) ctx.warn(`Placed instance "${i.name}" without ${decision.unreachable.join(', ')}`, 'Those servers did not answer, so placement left them out.', attr('deployments'));
  ctx.log.info('placed instance', { instance: i.name, server: decision.chosen.serverId, rounds: decision.rounds, loads: JSON.stringify(decision.loads) });
  return reserved;
}

/**
 * The candidate servers holding user disks a destroyed instance of this name kept; empty when
 * none (or only one candidate: nothing to choose). A server that does not answer holds none
 * as far as placement can tell.
 */
async function serversKeepingUserDisks(i: InstanceSpec): Promise<string[]> {
  const servers = new Map(i.deployments.map((d) => [d.serverId, d.server.uri]));
  if (servers.size < 2) return [];
  const prefix = dataDiskPrefix(i.name, 'user');
  const holding = await Promise.all(
    [...servers].map(async ([id, uri]) => ((await listVolumeNames(uri).catch(() => [])).some((v) => v.startsWith(prefix)) ? id : null)),
  );
  return holding.filter((id): id is string => id !== null);
}

/**
 * The swap and user disks `app` asks for, made empty or adopted: left by an interrupted make,
 * or (user disks) kept by a destroyed instance of the same name. An adopted disk smaller than
 * asked is grown; a larger one is kept as it is (never shrunk: it may hold the user's data).
 * Names of the disks this call made go into `made`, so a failure removes them again.
 */
async function dataDisks(ctx: Maker, spec: InstanceSpec, dep: LayerRef, app: ApplianceRecord | null, made: string[]): Promise<DataDiskAttachment[]> {
  const uri = dep.server.uri;
  const out: DataDiskAttachment[] = [];
  for (const d of dataDisksOf(app)) {
    const name = dataDiskVolumeName(spec.name, d.type, d.name);
    const bytes = d.sizeMib * MIB;
    let vol = await getVolume(uri, name);
    if (vol && (vol.backingPath !== null || vol.format !== 'raw')) {
      throw new DiagnosticError('A different disk has this name', `${name} exists on server "${dep.server.name}" but is not one of storm's empty ${d.type} disks (format ${vol.format ?? 'unknown'}${vol.backingPath ? `, over ${vol.backingPath}` : ''}). Remove it or choose another name.`, attr('name'));
    }
    if (vol) {
      ctx.log.info(d.type === 'user' ? 're-attaching the user disk kept on the server' : 'adopting the swap disk an interrupted create left', { instance: spec.name, volume: name, size_mib: Math.round(vol.capacity / MIB) });
      if (vol.capacity < bytes) await resizeVolume(uri, name, bytes);
    } else {
      vol = await createEmptyVolume(uri, name, bytes);
      made.push(name);
    }
    out.push({ path: vol.path, serial: d.name });
  }
  return out;
}

/** Where an instance stands once made. */
export interface MadeInstance {
  dep: LayerRef;
  disk: Volume;
}

/**
 * Makes instance `spec` on one of its deployments' servers: placed and reserved, disks, seed,
 * complete domain, state. A failure undoes what this call made (not what it adopted) and is
 * thrown as it came; `progress.on` says which server it had reached, for the message.
 */
export async function makeInstance(ctx: Maker, spec: InstanceSpec, progress: { on?: LayerRef } = {}): Promise<MadeInstance> {
  const hw = spec.hardware;
  let reserved: Reserved | undefined;
  const made: string[] = [];
  try {
    reserved = await placeAndDefine(ctx, spec, progress);
    const { dep, below, existing } = reserved;
    const uri = dep.server.uri;
    const names = { disk: instanceVolumeName(spec.name), seed: seedVolumeName(spec.name) };
    // A disk whose domain was removed out of band is adopted, not lost: the instance converges.
    const leftover = await getVolume(uri, names.disk);
    if (leftover && leftover.backingPath !== below.path) {
      throw new DiagnosticError('A different disk has this name', `${names.disk} exists on server "${dep.server.name}" but stands on ${leftover.backingPath ?? 'nothing'}, not ${below.path}. Remove it or choose another name.`, attr('name'));
    }
    if (leftover) ctx.log.info('adopting the existing instance layer', { instance: spec.name, volume: names.disk });
    const wantBytes = spec.diskSizeMib ? spec.diskSizeMib * MIB : undefined;
    const disk = leftover ?? (await createOverlay(uri, names.disk, below, wantBytes));
    if (!leftover) made.push(names.disk);
    else if (wantBytes && leftover.capacity < wantBytes) await resizeVolume(uri, names.disk, wantBytes);
    const data = await dataDisks(ctx, spec, dep, reserved.app, made);
    // An adopted guest that runs keeps its seed (it may be reading it); otherwise it is written afresh.
    const keptSeed = existing && existing.state !== 'shutoff' ? await getVolume(uri, names.seed) : null;
    let seedPath = keptSeed?.path;
    if (!seedPath) {
      await deleteVolume(uri, names.seed);
      seedPath = await uploadSeed(uri, names.seed, reserved.seed);
      made.push(names.seed);
    }
    // New hardware takes effect only on a fresh start.
    if (existing && existing.state !== 'shutoff' && (existing.memoryMib !== hw.memoryMib || existing.vcpus !== hw.vcpus)) await setDomainState(uri, spec.name, 'shutoff');
    // The complete definition replaces the reservation (same UUID, MAC and console log): the lease ends here.
    const current = await getDomain(uri, spec.name);
    if (!current) throw new DiagnosticError('The instance\'s domain vanished', `Domain "${spec.name}" was removed from server "${dep.server.name}" while storm was making it. Run terraform apply again.`);
    const domain = await instanceDomainSpec(spec, dep, reserved.app, { diskPath: disk.path, seedPath, dataDisks: data }, current.mac ?? undefined, current.consoleLog ?? newConsoleLogPath(spec.name));
    await defineDomain(uri, domainXml({ ...domain, uuid: current.uuid ?? undefined }));
    // Past its lease, others stopped counting the reservation and may have filled the server.
    if (reserved.leaseEnd !== null && Date.now() >= reserved.leaseEnd) {
      const { overMib, load } = await overCommitment(ctx.session, dep);
      if (overMib > 0) {
        throw new DiagnosticError('The server filled up while this instance was being made', `Making instance "${spec.name}" took longer than its ${RESERVATION_LEASE_MS / 1000} s reservation, and server "${dep.server.name}" is now ${overMib} MiB over (${load.committedMemoryMib} MiB committed). Nothing was kept; run terraform apply again to place it anew.`, attr('memory_mib'));
      }
    }
    await setDomainState(uri, spec.name, spec.state);
    ctx.log.info('instance created', { instance: spec.name, server: dep.server.name, state: spec.state, memory_mib: hw.memoryMib, vcpus: hw.vcpus });
    return { dep, disk };
  } catch (err) {
    const uri = reserved?.dep.server.uri;
    if (uri && reserved?.defined) await removeDomain(uri, spec.name).catch(() => {});
    if (uri) for (const v of made.reverse()) await deleteVolume(uri, v).catch(() => {});
    throw err;
  } finally {
    releasePlacement(ctx.session, spec.name);
  }
}

/**
 * Removes an instance: its domain (stopped hard), its disk, its seed and its swap and user
 * disks, found by name (so those of a create cut off before its domain named them go too).
 * With `keepUserDisks`, user disks stay for the next instance of this name on this server;
 * their names are returned.
 */
export async function removeInstance(uri: string, name: string, options: { keepUserDisks?: boolean } = {}): Promise<string[]> {
  await removeDomain(uri, name);
  await deleteVolume(uri, instanceVolumeName(name));
  await deleteVolume(uri, seedVolumeName(name));
  const kept: string[] = [];
  for (const v of await listVolumeNames(uri)) {
    if (v.startsWith(dataDiskPrefix(name, 'swap'))) await deleteVolume(uri, v);
    else if (v.startsWith(dataDiskPrefix(name, 'user'))) {
      if (options.keepUserDisks) kept.push(v);
      else await deleteVolume(uri, v);
    }
  }
  return kept;
}
