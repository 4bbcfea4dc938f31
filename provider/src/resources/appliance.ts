// storm_appliance: an appliance installed on a server, as two layers in its storm pool: the
// base OS (shared by every appliance on that server naming the same base and checksum; never
// duplicated) and the appliance layer, a qcow2 overlay whose backing file is the base.
import { DiagnosticError, attr, type AttributePath, type Diagnostic } from '../protocol/diagnostics.ts';
import type { ResourceSchema } from '../schema/model.ts';
import { between, imageUrlValidator, matches, nameValidator, sha256Validator } from '../schema/validators.ts';
import { ChecksumMismatchError, ImageSourceError } from '../drivers/images/fetch.ts';
import { fetchLogged, installLayer, LayerFormatError } from '../drivers/layers.ts';
import { LibvirtUnreachableError } from '../drivers/errors.ts';
import { deleteVolume, dependentsOf, getVolume, listVolumes, readRecord, writeRecord, type Volume } from '../drivers/volumes.ts';
import { Qcow2Error } from '../drivers/qcow2.ts';
import { num, str, type ObjectValue, type ResourceContext, type ResourceDefinition } from './resource.ts';
import { layerId, readServerRecord, requireServerId, type ServerRef } from './server-ref.ts';
import { baseVolumeName, completionRecord, installSharedLayer } from './shared-layer.ts';
import { imageSourceAttributes } from './image-source.ts';

const VERSION = matches(/^[0-9A-Za-z][0-9A-Za-z._-]{0,31}$/, 'a version: use letters, digits, ".", "_" and "-", e.g. "1.0.2"');


const schema: ResourceSchema = {
  typeName: 'storm_appliance',
  version: 0,
  description:
    'An appliance installed on a server: its base-OS layer (shared by every appliance on the server that names the same base) and its appliance layer, a qcow2 overlay on the base. ' +
    'Images are downloaded once into a local cache, verified against their SHA-256, and uploaded through libvirt, so remote servers work too. ' +
    'Changing the version installs a new layer and replaces what stands on the old one (layers are block-level: a deployment made over one version cannot be moved onto another).',
  block: {
    attributes: {
      id: { type: 'string', mode: 'computed', description: 'The appliance-layer reference deployments take: `VOLUME@SERVER_ID`.' },
      server: { type: 'string', mode: 'required', forceNew: true, description: 'The server to install on: a `storm_appliance_server` id.' },
      name: { type: 'string', mode: 'required', forceNew: true, validators: [nameValidator], description: 'Appliance name, e.g. `mail`.' },
      version: { type: 'string', mode: 'required', forceNew: true, validators: [VERSION], description: 'Appliance version, e.g. `1.0`.' },
      memory_mib: { type: 'number', mode: 'optional', default: 256, validators: [between(16, 1048576)], description: 'Memory an instance of this appliance gets unless it says otherwise.' },
      vcpus: { type: 'number', mode: 'optional', default: 1, validators: [between(1, 256)], description: 'vCPUs an instance gets unless it says otherwise.' },
      volume: { type: 'string', mode: 'computed', description: 'Name of the appliance-layer volume in the server\'s `storm` pool.' },
      base_volume: { type: 'string', mode: 'computed', description: 'Name of the base-layer volume (shared).' },
      size_bytes: { type: 'number', mode: 'computed', description: 'Virtual disk size of the appliance.' },
    },
    blocks: {
      base: {
        nesting: 'single',
        description: 'The base-OS layer (required): a raw or qcow2 image without a backing file.',
        block: { attributes: { name: { type: 'string', mode: 'required', forceNew: true, validators: [nameValidator], description: 'Base name, e.g. `debian-12`.' }, ...imageSourceAttributes('base') } },
      },
      image: {
        nesting: 'single',
        description: 'The appliance layer (required): a qcow2 overlay whose backing file is the base image.',
        block: { attributes: imageSourceAttributes('appliance') },
      },
      boot: {
        nesting: 'single',
        description: 'Direct kernel boot, for appliances whose disk has no boot loader. The kernel and initrd are installed in the pool like layers.',
        block: {
          attributes: {
            kernel_url: { type: 'string', mode: 'required', forceNew: true, validators: [imageUrlValidator], description: 'The kernel image.' },
            kernel_sha256: { type: 'string', mode: 'required', forceNew: true, validators: [sha256Validator], description: 'Its SHA-256.' },
            initrd_url: { type: 'string', mode: 'required', forceNew: true, validators: [imageUrlValidator], description: 'The initramfs.' },
            initrd_sha256: { type: 'string', mode: 'required', forceNew: true, validators: [sha256Validator], description: 'Its SHA-256.' },
            cmdline: { type: 'string', mode: 'optional', default: 'console=ttyS0', forceNew: true, description: 'Kernel command line.' },
          },
        },
      },
    },
  },
};

/** What instances need to know about an appliance, kept on the server next to its layer. */
export interface ApplianceRecord {
  volume: string;
  base: string;
  memoryMib: number;
  vcpus: number;
  boot: { kernel: string; initrd: string; cmdline: string } | null;
}

export const applianceRecordName = (volume: string) => `${volume}.json`;


interface Spec {
  server: ServerRef;
  serverId: string;
  name: string;
  version: string;
  memoryMib: number;
  vcpus: number;
  base: { name: string; url: string; sha256: string };
  image: { url: string; sha256: string };
  boot: { kernelUrl: string; kernelSha256: string; initrdUrl: string; initrdSha256: string; cmdline: string } | null;
}

function specOf(v: ObjectValue): Spec {
  const serverIdText = str(v.server) ?? '';
  const base = (v.base ?? {}) as ObjectValue;
  const image = (v.image ?? {}) as ObjectValue;
  const boot = v.boot as ObjectValue | null;
  return {
    server: requireServerId(serverIdText, attr('server')),
    serverId: serverIdText,
    name: str(v.name) ?? '',
    version: str(v.version) ?? '',
    memoryMib: num(v.memory_mib) ?? 256,
    vcpus: num(v.vcpus) ?? 1,
    base: { name: str(base.name) ?? '', url: str(base.url) ?? '', sha256: str(base.sha256) ?? '' },
    image: { url: str(image.url) ?? '', sha256: str(image.sha256) ?? '' },
    boot: boot
      ? { kernelUrl: str(boot.kernel_url) ?? '', kernelSha256: str(boot.kernel_sha256) ?? '', initrdUrl: str(boot.initrd_url) ?? '', initrdSha256: str(boot.initrd_sha256) ?? '', cmdline: str(boot.cmdline) ?? 'console=ttyS0' }
      : null,
  };
}

export const applianceVolumeName = (name: string, version: string) => `app-${name}-${version}`;
const blobVolumeName = (kind: 'kernel' | 'initrd', sha256: string) => `${kind}-${sha256.slice(0, 12)}`;

function sourceError(err: unknown, path: AttributePath, what: string): never {
  if (err instanceof ChecksumMismatchError) throw new DiagnosticError(`The ${what} image does not match its sha256`, `${err.message}. Nothing was installed. Check the URL and the checksum the publisher gave.`, path);
  if (err instanceof ImageSourceError) throw new DiagnosticError(`Could not fetch the ${what} image`, `${err.message}. Nothing was installed.`, path);
  if (err instanceof LayerFormatError || err instanceof Qcow2Error) throw new DiagnosticError(`The ${what} image cannot be a layer`, `${err.message}.`, path);
  throw err;
}

async function ensurePoolReady(s: Spec): Promise<void> {
  try {
    if (!(await readServerRecord(s.server.uri))) {
      throw new DiagnosticError(
        'The server is not ready for appliances',
        `Server "${s.server.name}" (${s.server.uri}) has no storm pool yet. Create its storm_appliance_server first (reference its id, so Terraform orders them).`,
        attr('server'),
      );
    }
  } catch (err) {
    if (err instanceof LibvirtUnreachableError) throw new DiagnosticError('Cannot reach the server', `${err.message}. Is server "${s.server.name}" powered on?`, attr('server'));
    throw err;
  }
}

/** Content-addressed volumes being installed by this process: appliances sharing a base wait for one upload. */
const installing = new Map<string, Promise<{ vol: Volume; created: boolean }>>();

/** Installs a content-addressed volume unless it is already there; returns it and whether this call made it. */
async function sharedVolume(ctx: ResourceContext, s: Spec, volume: string, src: { url: string; sha256: string }, path: AttributePath, what: string): Promise<{ vol: Volume; created: boolean }> {
  const key = `${s.server.uri}\u0000${volume}`;
  const pending = installing.get(key);
  if (pending) return { vol: (await pending).vol, created: false };
  // Registered before the first await: appliances sharing a base must wait for one install.
  const install = (async () => {
    try {
      return await installSharedLayer(s.server.uri, volume, src.sha256, async () => (await fetchLogged(src, volume, ctx.log, ctx.signal, ctx.provider.cacheDir)).path, ctx.log);
    } catch (err) {
      sourceError(err, path, what);
    }
  })();
  installing.set(key, install);
  try {
    return await install;
  } finally {
    installing.delete(key);
  }
}

function stateOf(planned: ObjectValue, s: Spec, layer: Volume, base: string): ObjectValue {
  return { ...planned, id: layerId(layer.name, s.serverId), volume: layer.name, base_volume: base, size_bytes: layer.capacity };
}

export const appliance: ResourceDefinition = {
  schema,

  validate(config) {
    const diags: Diagnostic[] = [];
    for (const block of ['base', 'image'] as const) {
      if (config[block] === null) {
        diags.push({ severity: 'error', summary: `Missing ${block} block`, detail: `storm_appliance needs a ${block} { url, sha256${block === 'base' ? ', name' : ''} } block.`, path: attr(block) });
      }
    }
    return diags;
  },

  async create(ctx, planned) {
    const s = specOf(planned);
    await ensurePoolReady(s);
    const layerName = applianceVolumeName(s.name, s.version);
    if (await getVolume(s.server.uri, layerName)) {
      if (await readRecord(s.server.uri, applianceRecordName(layerName))) {
        throw new DiagnosticError('The appliance is already installed', `Server "${s.server.name}" already has ${layerName}. Destroy it there first, or choose another version.`, attr('version'));
      }
      ctx.log.warn('replacing an incomplete appliance layer left by an interrupted install', { volume: layerName });
      await deleteVolume(s.server.uri, layerName);
    }
    const made: string[] = [];
    try {
      const base = await sharedVolume(ctx, s, baseVolumeName(s.base.name, s.base.sha256), s.base, attr('base', 'sha256'), 'base');
      if (base.created) made.push(base.vol.name);
      let layer: Volume;
      try {
        const local = await fetchLogged(s.image, layerName, ctx.log, ctx.signal, ctx.provider.cacheDir);
        layer = await installLayer(s.server.uri, layerName, local.path, base.vol);
      } catch (err) {
        sourceError(err, attr('image', 'sha256'), 'appliance');
      }
      made.push(layer.name);
      let boot: ApplianceRecord['boot'] = null;
      if (s.boot) {
        const kernel = await sharedVolume(ctx, s, blobVolumeName('kernel', s.boot.kernelSha256), { url: s.boot.kernelUrl, sha256: s.boot.kernelSha256 }, attr('boot', 'kernel_sha256'), 'kernel');
        if (kernel.created) made.push(kernel.vol.name);
        const initrd = await sharedVolume(ctx, s, blobVolumeName('initrd', s.boot.initrdSha256), { url: s.boot.initrdUrl, sha256: s.boot.initrdSha256 }, attr('boot', 'initrd_sha256'), 'initrd');
        if (initrd.created) made.push(initrd.vol.name);
        boot = { kernel: kernel.vol.name, initrd: initrd.vol.name, cmdline: s.boot.cmdline };
      }
      const record: ApplianceRecord = { volume: layer.name, base: base.vol.name, memoryMib: s.memoryMib, vcpus: s.vcpus, boot };
      await writeRecord(s.server.uri, applianceRecordName(layer.name), record);
      ctx.log.info('appliance installed', { server: s.server.name, layer: layer.name, base: base.vol.name, base_shared: !base.created });
      return stateOf(planned, s, layer, base.vol.name);
    } catch (err) {
      // Leave nothing half-installed: remove what this create made, newest first, except a
      // shared layer another appliance already stands on.
      for (const v of made.reverse()) {
        const vol = await getVolume(s.server.uri, v).catch(() => null);
        if (vol && (await dependentsOf(s.server.uri, vol.path).catch(() => ['?'])).length) continue;
        await deleteVolume(s.server.uri, v).catch(() => {});
      }
      throw err;
    }
  },

  async read(_ctx, state) {
    const s = specOf(state);
    const layer = await getVolume(s.server.uri, str(state.volume) ?? applianceVolumeName(s.name, s.version));
    const base = await getVolume(s.server.uri, str(state.base_volume) ?? baseVolumeName(s.base.name, s.base.sha256));
    if (!layer || !base) return null;
    return stateOf(state, s, layer, base.name);
  },

  async update(_ctx, _prior, planned) {
    const s = specOf(planned);
    const volume = str(planned.volume) ?? applianceVolumeName(s.name, s.version);
    const record = await readRecord<ApplianceRecord>(s.server.uri, applianceRecordName(volume));
    if (record) await writeRecord(s.server.uri, applianceRecordName(volume), { ...record, memoryMib: s.memoryMib, vcpus: s.vcpus });
    return planned;
  },

  async delete(ctx, prior) {
    const s = specOf(prior);
    const uri = s.server.uri;
    const layer = await getVolume(uri, str(prior.volume) ?? '');
    if (layer) {
      const above = await dependentsOf(uri, layer.path);
      if (above.length) {
        throw new DiagnosticError('The appliance is still in use', `${above.join(', ')} stand on ${layer.name}. Destroy those deployments first.`);
      }
      await deleteVolume(uri, layer.name);
    }
    await deleteVolume(uri, applianceRecordName(str(prior.volume) ?? ''));
    const base = await getVolume(uri, str(prior.base_volume) ?? '');
    if (base) {
      const others = await dependentsOf(uri, base.path);
      if (others.length) ctx.log.info('base layer kept: other appliances stand on it', { base: base.name, appliances: others.join(',') });
      else {
        await deleteVolume(uri, base.name);
        await deleteVolume(uri, completionRecord(base.name));
      }
    }
    if (s.boot) {
      // Kernels are shared by content; keep them while another appliance record names them.
      for (const v of [blobVolumeName('kernel', s.boot.kernelSha256), blobVolumeName('initrd', s.boot.initrdSha256)]) {
        if (!(await inUseByOtherRecords(uri, v))) {
          await deleteVolume(uri, v);
          await deleteVolume(uri, completionRecord(v));
        }
      }
    }
  },
};

async function inUseByOtherRecords(uri: string, volume: string): Promise<boolean> {
  for (const v of await listVolumes(uri)) {
    if (!/^app-.*\.json$/.test(v.name)) continue;
    const r = await readRecord<ApplianceRecord>(uri, v.name);
    if (r?.boot && (r.boot.kernel === volume || r.boot.initrd === volume)) return true;
  }
  return false;
}

