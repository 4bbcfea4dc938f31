// storm_appliance: an appliance installed on a server, as two layers in its storm pool: the
// base OS (shared by every appliance on that server naming the same base and checksum; never
// duplicated) and the appliance layer, a qcow2 overlay whose backing file is the base.
// Its hardware (memory_mib, vcpus) is what its instances get unless they say otherwise.
import { DiagnosticError, attr } from '../protocol/diagnostics.ts';
import type { ResourceContext } from '../contract.ts';
import type { ResourceSchema } from '../schema/model.ts';
import { defineResource, type Model } from '../schema/typed.ts';
import { between, imageUrlValidator, nameValidator, sha256Validator, versionValidator } from '../schema/validators.ts';
import { fetchLogged, installLayer } from '../drivers/layers.ts';
import { deleteVolume, dependentsOf, getVolume, listVolumes, type Volume } from '../drivers/volumes.ts';
import { installSharedLayer, removeSharedLayer, type SharedLayer } from '../host/layers.ts';
import { applianceVolumeName, baseVolumeName, bootVolumeName, isRecordName, layerRecordName } from '../host/names.ts';
import { readLayerRecord, readServerRecord, writeLayerRecord, type ApplianceRecord } from '../host/records.ts';
import { layerId, requireServerId, type ServerRef } from '../host/refs.ts';
import { DEFAULT_MEMORY_MIB, DEFAULT_VCPUS } from '../rules.ts';
import { diagnose, explained, readOrKeep, type Context } from './diagnose.ts';
import { imageSourceAttributes } from './image-source.ts';

const schema = {
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
      version: { type: 'string', mode: 'required', forceNew: true, validators: [versionValidator], description: 'Appliance version, e.g. `1.0`.' },
      memory_mib: {
        type: 'number',
        mode: 'optional',
        default: DEFAULT_MEMORY_MIB,
        validators: [between(16, 1048576)],
        description: 'Memory an instance of this appliance gets unless the instance sets its own `memory_mib` (from a channel: the definition\'s `<memory>`, as `data.storm_appliance.memory_mib`). Changing it affects instances created afterwards; running ones keep theirs.',
      },
      vcpus: {
        type: 'number',
        mode: 'optional',
        default: DEFAULT_VCPUS,
        validators: [between(1, 256)],
        description: 'vCPUs an instance of this appliance gets unless the instance sets its own `vcpus` (from a channel: the definition\'s `<cpus>`).',
      },
      volume: { type: 'string', mode: 'computed', description: 'Name of the appliance-layer volume in the server\'s `storm` pool.' },
      base_volume: { type: 'string', mode: 'computed', description: 'Name of the base-layer volume (shared).' },
      size_bytes: { type: 'number', mode: 'computed', description: 'Virtual disk size of the appliance.' },
    },
    blocks: {
      base: {
        nesting: 'single',
        minItems: 1,
        description: 'The base-OS layer (required): a raw or qcow2 image without a backing file.',
        block: { attributes: { name: { type: 'string', mode: 'required', forceNew: true, validators: [nameValidator], description: 'Base name, e.g. `debian-12`.' }, ...imageSourceAttributes('base') } },
      },
      image: {
        nesting: 'single',
        minItems: 1,
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
} as const satisfies ResourceSchema;

type Appliance = Model<typeof schema>;


const blame = (a: Appliance, image?: Context['image']): Context => ({ server: serverOf(a).name, libvirt: { path: attr('server'), via: 'reference' }, image });
const serverOf = (a: Appliance): ServerRef => requireServerId(a.server, attr('server'));

async function ensurePoolReady(a: Appliance): Promise<void> {
  const server = serverOf(a);
  const record = await explained(blame(a), () => readServerRecord(server.uri));
  if (!record) {
    throw new DiagnosticError(
      'The server is not ready for appliances',
      `Server "${server.name}" (${server.uri}) has no storm pool yet. Create its storm_appliance_server first (reference its id, so Terraform orders them).`,
      attr('server'),
    );
  }
}

/** Installs a content-addressed layer (a base, a kernel) unless the server has it. */
function sharedLayer(ctx: ResourceContext, a: Appliance, volume: string, src: { url: string; sha256: string }, image: Context['image']): Promise<SharedLayer> {
  const uri = serverOf(a).uri;
  return explained(blame(a, image), () =>
    installSharedLayer(ctx.session, uri, volume, src.sha256, async () => (await fetchLogged(src, volume, ctx.log, ctx.signal, ctx.provider.cacheDir)).path, ctx.log),
  );
}

function stateOf(planned: Appliance, layer: Volume, base: string): Appliance {
  return { ...planned, id: layerId(layer.name, planned.server), volume: layer.name, base_volume: base, size_bytes: layer.capacity };
}

function recordOf(a: Appliance, layer: string, base: string, boot: ApplianceRecord['boot']): ApplianceRecord {
  return { volume: layer, base, memoryMib: a.memory_mib, vcpus: a.vcpus, boot };
}

export const appliance = defineResource<typeof schema>({
  schema,

  async create(ctx, planned) {
    const server = serverOf(planned);
    const uri = server.uri;
    // Both blocks are required by the schema (min 1): Terraform refuses a configuration without them.
    const base = planned.base!;
    const image = planned.image!;
    await ensurePoolReady(planned);
    const layerName = applianceVolumeName(planned.name, planned.version);
    if (await getVolume(uri, layerName)) {
      if (await readLayerRecord(uri, layerName)) {
        throw new DiagnosticError('The appliance is already installed', `Server "${server.name}" already has ${layerName}. Destroy it there first, or choose another version.`, attr('version'));
      }
      ctx.log.warn('replacing an incomplete appliance layer left by an interrupted install', { volume: layerName });
      await deleteVolume(uri, layerName);
    }
    const made: string[] = [];
    try {
      const baseLayer = await sharedLayer(ctx, planned, baseVolumeName(base.name, base.sha256), base, { what: 'base', path: attr('base', 'sha256') });
      if (baseLayer.created) made.push(baseLayer.vol.name);
      const layer = await explained(blame(planned, { what: 'appliance', path: attr('image', 'sha256') }), async () => {
        const local = await fetchLogged(image, layerName, ctx.log, ctx.signal, ctx.provider.cacheDir);
        return installLayer(uri, layerName, local.path, baseLayer.vol);
      });
      made.push(layer.name);
      let boot: ApplianceRecord['boot'] = null;
      if (planned.boot) {
        const b = planned.boot;
        const kernel = await sharedLayer(ctx, planned, bootVolumeName('kernel', b.kernel_sha256), { url: b.kernel_url, sha256: b.kernel_sha256 }, { what: 'kernel', path: attr('boot', 'kernel_sha256') });
        if (kernel.created) made.push(kernel.vol.name);
        const initrd = await sharedLayer(ctx, planned, bootVolumeName('initrd', b.initrd_sha256), { url: b.initrd_url, sha256: b.initrd_sha256 }, { what: 'initrd', path: attr('boot', 'initrd_sha256') });
        if (initrd.created) made.push(initrd.vol.name);
        boot = { kernel: kernel.vol.name, initrd: initrd.vol.name, cmdline: b.cmdline };
      }
      await writeLayerRecord(ctx.session, uri, layer.name, recordOf(planned, layer.name, baseLayer.vol.name, boot));
      ctx.log.info('appliance installed', { server: server.name, layer: layer.name, base: baseLayer.vol.name, base_shared: !baseLayer.created });
      return stateOf(planned, layer, baseLayer.vol.name);
    } catch (err) {
      // Leave nothing half-installed: remove what this create made, newest first, except a
      // shared layer another appliance already stands on.
      for (const v of made.reverse()) {
        const vol = await getVolume(uri, v).catch(() => null);
        if (vol && (await dependentsOf(uri, vol.path).catch(() => ['?'])).length) continue;
        await deleteVolume(uri, v).catch(() => {});
      }
      diagnose(err, blame(planned));
    }
  },

  async read(ctx, state) {
    const uri = serverOf(state).uri;
    return readOrKeep(ctx.warn, blame(state), `appliance "${state.name}"`, state, async () => {
      const [layer, base] = await Promise.all([
        getVolume(uri, state.volume ?? applianceVolumeName(state.name, state.version)),
        getVolume(uri, state.base_volume ?? (state.base ? baseVolumeName(state.base.name, state.base.sha256) : '')),
      ]);
      if (!layer || !base) return null;
      return stateOf(state, layer, base.name);
    });
  },

  async update(ctx, _prior, planned) {
    const uri = serverOf(planned).uri;
    const volume = planned.volume ?? applianceVolumeName(planned.name, planned.version);
    await explained(blame(planned), async () => {
      const record = await readLayerRecord<ApplianceRecord>(uri, volume);
      if (record) await writeLayerRecord(ctx.session, uri, volume, { ...record, memoryMib: planned.memory_mib, vcpus: planned.vcpus });
    });
    return planned;
  },

  async delete(ctx, prior) {
    const uri = serverOf(prior).uri;
    await explained(blame(prior), async () => {
      const layer = prior.volume ? await getVolume(uri, prior.volume) : null;
      if (layer) {
        const above = await dependentsOf(uri, layer.path);
        if (above.length) throw new DiagnosticError('The appliance is still in use', `${above.join(', ')} stand on ${layer.name}. Destroy those deployments first.`);
        await deleteVolume(uri, layer.name);
      }
      if (prior.volume) await ctx.session.deleteRecord(uri, layerRecordName(prior.volume));
      const base = prior.base_volume ? await getVolume(uri, prior.base_volume) : null;
      if (base) {
        const others = await dependentsOf(uri, base.path);
        if (others.length) ctx.log.info('base layer kept: other appliances stand on it', { base: base.name, appliances: others.join(',') });
        else await removeSharedLayer(ctx.session, uri, base.name);
      }
      if (prior.boot) {
        // Kernels are shared by content; keep them while another appliance record names them.
        for (const v of [bootVolumeName('kernel', prior.boot.kernel_sha256), bootVolumeName('initrd', prior.boot.initrd_sha256)]) {
          if (!(await inUseByOtherRecords(uri, v))) await removeSharedLayer(ctx.session, uri, v);
        }
      }
    });
  },
});

async function inUseByOtherRecords(uri: string, volume: string): Promise<boolean> {
  for (const v of await listVolumes(uri)) {
    if (!v.name.startsWith('app-') || !isRecordName(v.name)) continue;
    const r = await readLayerRecord<ApplianceRecord>(uri, v.name.replace(/\.json$/, ''));
    if (r?.boot && (r.boot.kernel === volume || r.boot.initrd === volume)) return true;
  }
  return false;
}
