// storm_instance: a running copy of a deployment. Its disk is the writable instance layer (a
// qcow2 overlay on the deployment layer: creating one costs nothing in storage), its
// configuration a NoCloud seed with the deployment's and the instance's files, templates
// expanded with the instance's variables, and it runs as a libvirt domain on a network.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DiagnosticError, attr, type Diagnostic } from '../protocol/diagnostics.ts';
import { UNKNOWN, type CtyValue } from '../protocol/cty/index.ts';
import type { ResourceSchema } from '../schema/model.ts';
import { between, nameValidator, oneOf } from '../schema/validators.ts';
import { fileBlock } from './file-block.ts';
import { domainXml, type DomainSpec } from '../drivers/domain-xml.ts';
import { defineDomain, getDomain, growRunningDisk, leaseIp, listDomains, removeDomain, setDomainState, waitForLease, type DomainState } from '../drivers/domains.ts';
import { observeHost } from '../drivers/libvirt.ts';
import { createOverlay, deleteVolume, getVolume, readRecord, resizeVolume, uploadVolume } from '../drivers/volumes.ts';
import { virsh } from '../drivers/virsh.ts';
import { withTempDir } from '../drivers/tempdir.ts';
import { expandTemplate } from '../drivers/seed/template.ts';
import { nocloudSeed, SeedFileError } from '../drivers/seed/nocloud.ts';
import { place, type ServerLoad } from '../policy/placement.ts';
import { num, str, type ObjectValue, type ResourceContext, type ResourceDefinition } from './resource.ts';
import { applianceRecordName, type ApplianceRecord } from './appliance.ts';
import { deploymentRecordName, filesOf, stringMap, type DeploymentFile, type DeploymentRecord } from './deployment.ts';
import { layerId, parseLayerId, readServerRecord, type LayerRef } from './server-ref.ts';

const MIB = 1024 * 1024;

const schema: ResourceSchema = {
  typeName: 'storm_instance',
  version: 0,
  description:
    'An instance of a deployment: a writable qcow2 layer over the deployment layer, a NoCloud seed with the deployment\'s and the instance\'s files (templates expanded with `variables` at creation), and a libvirt domain on a network with DHCP. ' +
    'Without `server`, placement picks the least-loaded server among the deployments\' servers that fits `memory_mib` (keeping each server\'s reserve) and `vcpus`.',
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
      memory_mib: { type: 'number', mode: 'optional', default: 256, validators: [between(16, 1048576)], description: 'Guest memory. Changing it restarts a running instance (said in the plan).' },
      vcpus: { type: 'number', mode: 'optional', default: 1, validators: [between(1, 256)], description: 'Guest vCPUs. Changing it restarts a running instance.' },
      disk_size_mib: { type: 'number', mode: 'optional', observed: true, validators: [between(1, 67108864)], description: 'Size of the instance\'s disk; defaults to the appliance\'s. Growing is in place; shrinking replaces the instance.' },
      state: { type: 'string', mode: 'optional', default: 'running', validators: [oneOf('running', 'paused', 'shutoff')], description: '`running`, `paused` or `shutoff`; changed in place.' },
      network: { type: 'string', mode: 'optional', default: 'default', forceNew: true, description: 'The libvirt network (e.g. a `storm_network` name) the instance is attached to.' },
      variables: { type: { map: 'string' }, mode: 'optional', forceNew: true, description: 'Values for the templates\' `${name}`; expanded once, when the instance is created.' },
      ip_wait_seconds: { type: 'number', mode: 'optional', default: 120, validators: [between(0, 3600)], description: 'How long to wait for the instance\'s DHCP lease after it starts (0: do not wait).' },
      mac: { type: 'string', mode: 'computed', description: 'MAC address of the instance\'s NIC.' },
      ip: { type: 'string', mode: 'computed', description: 'IPv4 address from the network\'s DHCP lease (null when not running or not leased yet).' },
      volume: { type: 'string', mode: 'computed', description: 'Name of the instance-layer volume.' },
      console_log: { type: 'string', mode: 'computed', description: 'Path on the server of the file the guest\'s serial console writes to.' },
    },
    blocks: {
      file: fileBlock('A file for this instance only (wins over a deployment file with the same path); a template like the deployment\'s.', true),
    },
  },
};

/** Instances this process is placing right now: not yet visible as domains to the next placement. */
const placing = new Map<string, { server: string; memoryMib: number; vcpus: number }>();

/**
 * Terraform creates instances in parallel; each decision must see the ones made before it,
 * so decisions (observe, decide, record in `placing`) run one at a time.
 */
let placementTurn: Promise<unknown> = Promise.resolve();
function oneAtATime<T>(decide: () => Promise<T>): Promise<T> {
  const result = placementTurn.then(decide);
  placementTurn = result.catch(() => {});
  return result;
}

interface Spec {
  name: string;
  deployments: LayerRef[];
  server: string | null;
  memoryMib: number;
  vcpus: number;
  diskMib: number | null;
  state: DomainState;
  network: string;
  variables: Record<string, string>;
  files: DeploymentFile[];
  ipWaitSeconds: number;
}

function specOf(v: ObjectValue): Spec {
  const deployments = (Array.isArray(v.deployments) ? v.deployments : []).map((d, index) =>
    parseLayerId(String(d), 'dep-', 'a deployment', [{ attribute: 'deployments' }, { index }]),
  );
  const state = str(v.state);
  return {
    name: str(v.name) ?? '',
    deployments,
    server: str(v.server),
    memoryMib: num(v.memory_mib) ?? 256,
    vcpus: num(v.vcpus) ?? 1,
    diskMib: num(v.disk_size_mib),
    state: state === 'paused' || state === 'shutoff' ? state : 'running',
    network: str(v.network) ?? 'default',
    variables: stringMap(v.variables),
    files: filesOf(v.file),
    ipWaitSeconds: num(v.ip_wait_seconds) ?? 120,
  };
}

async function serverLoad(ref: LayerRef): Promise<ServerLoad> {
  const [host, record, domains] = await Promise.all([observeHost(ref.server.uri), readServerRecord(ref.server.uri), listDomains(ref.server.uri)]);
  let committedMemoryMib = 0;
  let committedVcpus = 0;
  for (const d of domains) {
    if (placing.has(d.name) || (d.state === 'shutoff' && !d.storm)) continue;
    committedMemoryMib += d.memoryMib;
    committedVcpus += d.vcpus;
  }
  for (const p of placing.values()) {
    if (p.server !== ref.serverId) continue;
    committedMemoryMib += p.memoryMib;
    committedVcpus += p.vcpus;
  }
  return { server: ref.serverId, cpus: host.cpus, memoryMib: host.memoryMib, reservedMemoryMib: record?.reservedMemoryMib ?? 128, committedMemoryMib, committedVcpus };
}

async function choose(ctx: ResourceContext, s: Spec): Promise<LayerRef> {
  if (s.server) {
    const pinned = s.deployments.find((d) => d.serverId === s.server);
    if (!pinned) {
      throw new DiagnosticError('The server has none of these deployments', `server = "${s.server}" is not among the servers of deployments (${s.deployments.map((d) => d.serverId).join(', ')}). Pin one of those, or leave server unset.`, attr('server'));
    }
    return pinned;
  }
  const loads = await Promise.all(s.deployments.map(serverLoad));
  const decision = place({ memoryMib: s.memoryMib, vcpus: s.vcpus }, loads);
  if ('error' in decision) {
    throw new DiagnosticError('No server fits this instance', `${decision.error} Lower memory_mib or vcpus, raise a server's capacity, or add a deployment on another server.`, attr('memory_mib'));
  }
  ctx.log.info('placed instance', { instance: s.name, server: decision.server, loads: JSON.stringify(loads) });
  return s.deployments.find((d) => d.serverId === decision.server)!;
}

function renderFiles(s: Spec, record: DeploymentRecord): DeploymentFile[] {
  const variables = { ...record.variables, ...s.variables };
  const byPath = new Map<string, DeploymentFile>();
  for (const f of [...record.files, ...s.files]) byPath.set(f.path, f);
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
  const caps = await virsh(uri, 'capabilities').catch(() => '');
  return /<domain type='kvm'/.test(caps) ? 'kvm' : 'qemu';
}

/** One log per incarnation: a re-created instance must not show its predecessor's boots. */
function newConsoleLogPath(name: string): string {
  return `/var/log/libvirt/qemu/${name}-${randomBytes(4).toString('hex')}-console.log`;
}

async function domainSpec(uri: string, s: Spec, dep: LayerRef, diskPath: string, seedPath: string, mac: string | undefined, consoleLog: string): Promise<DomainSpec> {
  const depRecord = await readRecord<DeploymentRecord>(uri, deploymentRecordName(dep.volume));
  const app = depRecord ? await readRecord<ApplianceRecord>(uri, applianceRecordName(depRecord.appliance)) : null;
  let kernel: DomainSpec['kernel'];
  if (app?.boot) {
    const [k, i] = await Promise.all([getVolume(uri, app.boot.kernel), getVolume(uri, app.boot.initrd)]);
    if (k && i) kernel = { kernelPath: k.path, initrdPath: i.path, cmdline: app.boot.cmdline };
  }
  return {
    name: s.name,
    type: await domainType(uri),
    memoryMib: s.memoryMib,
    vcpus: s.vcpus,
    diskPath,
    seedPath,
    network: s.network,
    mac,
    consoleLog,
    kernel,
    metadata: { deployment: layerId(dep.volume, dep.serverId), variables: JSON.stringify(s.variables), files: JSON.stringify(s.files) },
  };
}

async function uploadSeed(uri: string, volume: string, iso: Uint8Array): Promise<string> {
  return withTempDir(async (dir) => {
    await writeFile(join(dir, 'seed.iso'), iso);
    return (await uploadVolume(uri, volume, join(dir, 'seed.iso'))).path;
  });
}

const volumeNames = (name: string) => ({ disk: `inst-${name}`, seed: `seed-${name}.iso` });

async function observed(ctx: ResourceContext, base: ObjectValue, uri: string, s: Spec, waitForIp: boolean): Promise<ObjectValue | null> {
  const d = await getDomain(uri, s.name);
  const disk = await getVolume(uri, volumeNames(s.name).disk);
  if (!d || !disk) return null;
  let ip: string | null = null;
  if (d.state === 'running' && d.mac) {
    ip = waitForIp && s.ipWaitSeconds > 0 ? await waitForLease(uri, s.network, d.mac, s.ipWaitSeconds * 1000, ctx.signal) : await leaseIp(uri, s.network, d.mac);
    if (!ip && waitForIp && s.ipWaitSeconds > 0) ctx.warn(`Instance "${s.name}" has no IP address yet`, `No DHCP lease on network "${s.network}" within ${s.ipWaitSeconds} s; the next refresh will show it.`, attr('ip'));
  }
  return {
    ...base,
    state: d.state,
    memory_mib: d.memoryMib,
    vcpus: d.vcpus,
    disk_size_mib: Math.round(disk.capacity / MIB),
    mac: d.mac,
    ip,
    volume: disk.name,
    console_log: d.consoleLog,
  };
}

function refOf(state: ObjectValue): { uri: string; serverId: string } {
  const dep = specOf(state).deployments.find((d) => d.serverId === str(state.server));
  if (!dep) throw new DiagnosticError('Instance state names no server', 'The stored state has no server among its deployments; remove it from state and import it again.');
  return { uri: dep.server.uri, serverId: dep.serverId };
}

export const instance: ResourceDefinition = {
  schema,

  validate(config) {
    const diags: Diagnostic[] = [];
    if (Array.isArray(config.deployments) && config.deployments.length === 0) {
      diags.push({ severity: 'error', summary: 'No deployments', detail: 'deployments needs at least one storm_deployment id.', path: attr('deployments') });
    }
    return diags;
  },

  refinePlan(prior, planned, config) {
    const next = { ...planned };
    const warnings: Diagnostic[] = [];
    const requiresReplace = [];
    if (!prior) {
      for (const k of ['id', 'mac', 'ip', 'volume', 'console_log']) next[k] = UNKNOWN;
      if (config.server === null) next.server = UNKNOWN;
      return { planned: next };
    }
    const restart = (prior.memory_mib !== planned.memory_mib || prior.vcpus !== planned.vcpus) && prior.state === 'running' && planned.state !== 'shutoff';
    if (restart) {
      warnings.push({ severity: 'warning', summary: `storm will restart instance "${str(planned.name)}"`, detail: 'Changing memory_mib or vcpus stops the guest, redefines it and starts it again.' });
    }
    const priorDisk = num(prior.disk_size_mib);
    const plannedDisk = num(planned.disk_size_mib);
    if (priorDisk !== null && plannedDisk !== null && plannedDisk < priorDisk) requiresReplace.push(attr('disk_size_mib'));
    if (planned.state !== prior.state || restart) next.ip = planned.state === 'running' ? UNKNOWN : null;
    const current = prior.server;
    const stillThere = Array.isArray(planned.deployments) && planned.deployments.some((d: CtyValue) => typeof d === 'string' && d.endsWith(`@${String(current)}`));
    if (!stillThere) requiresReplace.push(attr('deployments'));
    return { planned: next, requiresReplace, warnings };
  },

  async create(ctx, planned) {
    const s = specOf(planned);
    const dep = await oneAtATime(async () => {
      const chosen = await choose(ctx, s);
      placing.set(s.name, { server: chosen.serverId, memoryMib: s.memoryMib, vcpus: s.vcpus });
      return chosen;
    });
    const uri = dep.server.uri;
    const names = volumeNames(s.name);
    const made: string[] = [];
    let defined = false;
    try {
      if (await getDomain(uri, s.name)) {
        throw new DiagnosticError('The instance already exists', `Server "${dep.server.name}" already has a domain named "${s.name}". Import it (terraform import) or choose another name.`, attr('name'));
      }
      const [record, below] = await Promise.all([readRecord<DeploymentRecord>(uri, deploymentRecordName(dep.volume)), getVolume(uri, dep.volume)]);
      if (!record || !below) throw new DiagnosticError('The deployment is not there', `Server "${dep.server.name}" has no ${dep.volume}.`, attr('deployments'));
      const files = renderFiles(s, record);
      let seed;
      try {
        seed = nocloudSeed({ instanceId: s.name, hostname: s.name, files });
      } catch (err) {
        if (err instanceof SeedFileError) throw new DiagnosticError('Invalid file', err.message, attr('file'));
        throw err;
      }
      // A disk whose domain was removed out of band is adopted, not lost: the instance converges.
      const leftover = await getVolume(uri, names.disk);
      if (leftover && leftover.backingPath !== below.path) {
        throw new DiagnosticError('A different disk has this name', `${names.disk} exists on server "${dep.server.name}" but stands on ${leftover.backingPath ?? 'nothing'}, not ${below.path}. Remove it or choose another name.`, attr('name'));
      }
      if (leftover) ctx.log.info('adopting the existing instance layer', { instance: s.name, volume: names.disk });
      const disk = leftover ?? (await createOverlay(uri, names.disk, below, s.diskMib ? s.diskMib * MIB : undefined));
      if (!leftover) made.push(names.disk);
      else if (s.diskMib && leftover.capacity < s.diskMib * MIB) await resizeVolume(uri, names.disk, s.diskMib * MIB);
      await deleteVolume(uri, names.seed);
      const seedPath = await uploadSeed(uri, names.seed, seed.iso);
      made.push(names.seed);
      await defineDomain(uri, domainXml(await domainSpec(uri, s, dep, disk.path, seedPath, undefined, newConsoleLogPath(s.name))));
      defined = true;
      await setDomainState(uri, s.name, s.state);
      ctx.log.info('instance created', { instance: s.name, server: dep.server.name, state: s.state });
      const state = await observed(ctx, { ...planned, server: dep.serverId, id: layerId(names.disk, dep.serverId) }, uri, s, true);
      if (!state) throw new Error(`instance ${s.name} vanished right after it was created`);
      return state;
    } catch (err) {
      if (defined) await removeDomain(uri, s.name).catch(() => {});
      for (const v of made.reverse()) await deleteVolume(uri, v).catch(() => {});
      throw err;
    } finally {
      placing.delete(s.name);
    }
  },

  async read(ctx, state) {
    const { uri } = refOf(state);
    return observed(ctx, state, uri, specOf(state), false);
  },

  async update(ctx, prior, planned) {
    const { uri, serverId } = refOf(prior);
    const s = specOf(planned);
    const dep = s.deployments.find((d) => d.serverId === serverId)!;
    const d = await getDomain(uri, s.name);
    if (!d) throw new DiagnosticError('The instance is gone', `Domain "${s.name}" no longer exists on its server; refresh and apply again to recreate it.`);
    if (d.memoryMib !== s.memoryMib || d.vcpus !== s.vcpus) {
      const names = volumeNames(s.name);
      const [disk, seed] = await Promise.all([getVolume(uri, names.disk), getVolume(uri, names.seed)]);
      if (!disk || !seed) throw new DiagnosticError('The instance\'s volumes are gone', `${names.disk} or ${names.seed} no longer exists.`);
      if (d.state !== 'shutoff') await setDomainState(uri, s.name, 'shutoff');
      const spec = await domainSpec(uri, s, dep, disk.path, seed.path, d.mac ?? undefined, d.consoleLog ?? newConsoleLogPath(s.name));
      await defineDomain(uri, domainXml({ ...spec, uuid: d.uuid ?? undefined }));
    }
    const wantBytes = s.diskMib ? s.diskMib * MIB : null;
    if (wantBytes && wantBytes !== num(prior.disk_size_mib)! * MIB) {
      const current = await getDomain(uri, s.name);
      if (current?.state === 'shutoff') await resizeVolume(uri, volumeNames(s.name).disk, wantBytes);
      else await growRunningDisk(uri, s.name, wantBytes);
    }
    await setDomainState(uri, s.name, s.state);
    const state = await observed(ctx, planned, uri, s, s.state === 'running' && prior.state !== 'running');
    if (!state) throw new Error(`instance ${s.name} vanished during the update`);
    return state;
  },

  async delete(_ctx, prior) {
    const { uri } = refOf(prior);
    const name = str(prior.name) ?? '';
    await removeDomain(uri, name);
    const names = volumeNames(name);
    await deleteVolume(uri, names.disk);
    await deleteVolume(uri, names.seed);
  },

  async importState(ctx, id) {
    const at = id.indexOf('@');
    const name = at > 0 ? id.slice(0, at) : '';
    const serverIdText = id.slice(at + 1);
    const ref = at > 0 ? parseLayerId(`inst-${name}@${serverIdText}`, 'inst-', 'an instance', []) : null;
    if (!ref) throw new DiagnosticError('Invalid import id', `"${id}" is not NAME@SERVER_ID, e.g. mx1@blade1@qemu+tcp://10.0.0.11/system.`);
    const d = await getDomain(ref.server.uri, name);
    if (!d || !d.storm) throw new DiagnosticError('No such instance', `Server "${ref.server.name}" has no storm instance named "${name}".`);
    const parse = <T>(text: string | undefined, fallback: T): T => {
      try {
        return text ? (JSON.parse(text) as T) : fallback;
      } catch {
        return fallback;
      }
    };
    const variables = parse<Record<string, string>>(d.metadata.variables, {});
    const files = parse<DeploymentFile[]>(d.metadata.files, []);
    const base: ObjectValue = {
      id: layerId(volumeNames(name).disk, serverIdText),
      name,
      deployments: [d.metadata.deployment ?? ''],
      server: serverIdText,
      network: null,
      variables: Object.keys(variables).length ? variables : null,
      file: files.map((f) => ({ path: f.path, content: f.content, permissions: f.permissions })),
      ip_wait_seconds: 120,
    };
    const net = /<source network='([^']+)'/.exec((await virsh(ref.server.uri, `dumpxml ${name}`)).toString())?.[1] ?? 'default';
    const state = await observed(ctx, { ...base, network: net }, ref.server.uri, { ...specOf({ ...base, network: net, state: 'running' }) }, false);
    if (!state) throw new DiagnosticError('No such instance', `Instance "${name}" has no disk ${volumeNames(name).disk}.`);
    return state;
  },
};
