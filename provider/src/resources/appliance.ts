// storm_appliance: an appliance installed on a server, as layers in its storm pool: the base
// OS (shared by every appliance on that server naming the same base and checksum; never
// duplicated) and the appliance layer, a qcow2 overlay whose backing file is the base; or,
// for a single-layer appliance (the paper's Figure 2: no base), the appliance layer alone, a
// whole image. The image may be a gzip'd tar holding the system disk's file (webserv.tgz).
// Its hardware (memory_mib, vcpus), swap and user disks and web panel are what its instances
// get: recorded with the layer, read by whoever makes an instance (host/instances.ts).
import { DiagnosticError, attr, type Diagnostic } from '../protocol/diagnostics.ts';
import type { ObjectValue, ResourceContext } from '../contract.ts';
import type { ResourceSchema } from '../schema/model.ts';
import { defineResource, type Model } from '../schema/typed.ts';
import { between, imageUrlValidator, nameValidator, sha256Validator, versionValidator } from '../schema/validators.ts';
import { DISK_FILE, DISK_NAME, WEBPANEL } from '../channel/definition/elements.ts';
import { fetchLogged, installLayer, layerFile } from '../drivers/layers.ts';
import { deleteVolume, dependentsOf, getVolume, listVolumes, poolAvailableBytes, type Volume } from '../drivers/volumes.ts';
import { installSharedLayer, removeSharedLayer, type SharedLayer } from '../host/layers.ts';
import { applianceVolumeName, baseVolumeName, bootVolumeName, isRecordName, layerRecordName } from '../host/names.ts';
import { readLayerRecord, readServerRecord, writeLayerRecord, type ApplianceRecord, type DataDiskSpec } from '../host/records.ts';
import { layerId, requireServerId, type ServerRef } from '../host/refs.ts';
import { DEFAULT_MEMORY_MIB, DEFAULT_VCPUS } from '../rules.ts';
import { diagnose, explained, readOrKeep, type Context } from './diagnose.ts';
import { imageSourceAttributes } from './image-source.ts';

/** The largest swap or user disk: 64 TiB, as a disk_size_mib may be. */
const MAX_DISK_MIB = 67108864;

// The definition's own rules for a disk's name and file and a web panel path: a value the
// catalog accepts is one the provider accepts.
const definitionRule = (rule: typeof DISK_NAME, subject: string) => (v: string | number | boolean) => {
  const r = rule.check(String(v), { subject });
  return r.ok ? undefined : `${r.message}.`;
};

const schema = {
  typeName: 'storm_appliance',
  version: 0,
  description:
    'An appliance installed on a server: its base-OS layer (shared by every appliance on the server that names the same base) and its appliance layer, a qcow2 overlay on the base. ' +
    'Without a `base` block it is a single-layer appliance (the paper\'s Figure 2): its image is a whole disk (raw, or qcow2 without a backing file) installed as the appliance layer on its own. ' +
    'The image may also be a gzip\'d tar holding the system disk\'s file (the paper\'s webserv.tgz holding sys.img; known by its first bytes, not its name): its SHA-256 is checked on the archive as downloaded, then only `image.file` is unpacked from it. ' +
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
      disks: {
        type: { list: { object: { name: 'string', type: 'string', size_mib: 'number' } } },
        mode: 'optional',
        description:
          'The swap and user disks every instance of this appliance gets beside its system disk, in order (from a channel: the definition\'s `<disk type="swap"|"user" size="…"/>`, as `data.storm_appliance.disks`): ' +
          'objects of `name` (e.g. `hda3`, also the disk\'s serial in the guest), `type` (`swap` or `user`) and `size_mib`. Each instance gets a new empty raw volume per disk; see `storm_instance` for what happens to them. ' +
          'Changing it affects instances created afterwards; existing ones keep their disks.',
      },
      webpanel: {
        type: 'string',
        mode: 'optional',
        validators: [definitionRule(WEBPANEL, 'webpanel')],
        description: 'Path of the appliance\'s web control panel, e.g. `/upload.php` (from a channel: `data.storm_appliance.webpanel`); its instances show `http://IP/PATH` as `webpanel_url`. Changing it affects instances created afterwards.',
      },
      volume: { type: 'string', mode: 'computed', description: 'Name of the appliance-layer volume in the server\'s `storm` pool.' },
      base_volume: { type: 'string', mode: 'computed', description: 'Name of the base-layer volume (shared); null for a single-layer appliance.' },
      size_bytes: { type: 'number', mode: 'computed', description: 'Virtual disk size of the appliance.' },
    },
    blocks: {
      base: {
        nesting: 'single',
        forceNew: true,
        description:
          'The base-OS layer: a raw or qcow2 image without a backing file, shared by the appliances on the server that name it. Leave it out for a single-layer appliance (from a channel: when `data.storm_appliance.base_name` is null; a `dynamic "base"` block does both, see the example).',
        block: { attributes: { name: { type: 'string', mode: 'required', forceNew: true, validators: [nameValidator], description: 'Base name, e.g. `debian-12`.' }, ...imageSourceAttributes('base') } },
      },
      image: {
        nesting: 'single',
        minItems: 1,
        description: 'The appliance layer (required): a qcow2 overlay whose backing file is the base image; without a base, a whole image. Either may come packed in a gzip\'d tar.',
        block: {
          attributes: {
            ...imageSourceAttributes('appliance'),
            file: {
              type: 'string',
              mode: 'optional',
              forceNew: true,
              validators: [definitionRule(DISK_FILE, 'file')],
              description:
                'When the image is a gzip\'d tar: the system disk\'s file in it, e.g. `sys.img` (from a channel: `data.storm_appliance.system_disk_file`). Only that plain file, at the archive\'s top level, is unpacked, and only if it fits in the server\'s pool. Ignored for an image that is not an archive.',
            },
          },
        },
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

function stateOf(planned: Appliance, layer: Volume, base: string | null): Appliance {
  return { ...planned, id: layerId(layer.name, planned.server), volume: layer.name, base_volume: base, size_bytes: layer.capacity };
}

/** The disks as instances read them (validate has refused anything else). */
function disksOf(a: Appliance): DataDiskSpec[] {
  return (a.disks ?? []).map((d) => ({ name: d.name ?? '', type: d.type === 'user' ? 'user' : 'swap', sizeMib: d.size_mib ?? 0 }));
}

function recordOf(a: Appliance, layer: string, base: string | null, boot: ApplianceRecord['boot']): ApplianceRecord {
  return { volume: layer, base, memoryMib: a.memory_mib, vcpus: a.vcpus, boot, disks: disksOf(a), webpanel: a.webpanel };
}

/** What bounds a system disk unpacked from an archive: the room in the server's pool. */
function poolRoom(a: Appliance): () => Promise<{ bytes: number; where: string }> {
  const server = serverOf(a);
  return async () => ({ bytes: await poolAvailableBytes(server.uri), where: `the free space in server "${server.name}"'s storm pool` });
}

/** Each disk's fields by the definition's rules, names unique: said where the user wrote them. */
function validateDisks(disks: unknown): Diagnostic[] {
  if (!Array.isArray(disks)) return [];
  const diags: Diagnostic[] = [];
  const seen = new Set<string>();
  disks.forEach((d: unknown, index) => {
    if (d === null || typeof d !== 'object') return;
    const { name, type, size_mib: size } = d as ObjectValue;
    const at = (field: string) => [{ attribute: 'disks' }, { index }, { attribute: field }];
    const bad = (field: string, detail: string) => diags.push({ severity: 'error', summary: `Invalid disks[${index}].${field}`, detail, path: at(field) });
    if (typeof name === 'string') {
      const problem = definitionRule(DISK_NAME, 'name')(name);
      if (problem) bad('name', problem);
      else if (seen.has(name)) bad('name', `Two disks are named "${name}"; give each its own name (it names the disk's volume and its serial in the guest).`);
      seen.add(name);
    }
    if (typeof type === 'string' && type !== 'swap' && type !== 'user') {
      bad('type', type === 'system' ? 'The system disk is the appliance\'s image (image.file names it inside an archive); disks lists only "swap" and "user" disks.' : `type must be "swap" or "user", not "${type}".`);
    }
    if (typeof size === 'number') {
      const problem = between(1, MAX_DISK_MIB)(size);
      if (problem) bad('size_mib', `size_mib ${problem}`);
    }
  });
  return diags;
}

export const appliance = defineResource<typeof schema>({
  schema,

  validate(config) {
    return validateDisks(config.disks);
  },

  async create(ctx, planned) {
    const server = serverOf(planned);
    const uri = server.uri;
    // Required by the schema (min 1): Terraform refuses a configuration without it.
    const image = planned.image!;
    const base = planned.base;
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
      // The appliance's own image first: one that is not what it should be (a checksum, an
      // archive without its system disk) must fail before anything is installed.
      const fetched = await explained(blame(planned, { what: 'appliance', path: attr('image', 'sha256') }), () => fetchLogged(image, layerName, ctx.log, ctx.signal, ctx.provider.cacheDir));
      const file = await explained(blame(planned, { what: 'appliance', path: attr('image', 'file') }), () =>
        layerFile(fetched, image, { file: image.file, room: poolRoom(planned) }, ctx.log, ctx.signal, ctx.provider.cacheDir),
      );
      let baseLayer: SharedLayer | null = null;
      if (base) {
        baseLayer = await sharedLayer(ctx, planned, baseVolumeName(base.name, base.sha256), base, { what: 'base', path: attr('base', 'sha256') });
        if (baseLayer.created) made.push(baseLayer.vol.name);
      }
      const below = baseLayer?.vol ?? null;
      const layer = await explained(blame(planned, { what: 'appliance', path: attr('image', 'sha256') }), () => installLayer(uri, layerName, file, below));
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
      await writeLayerRecord(ctx.session, uri, layer.name, recordOf(planned, layer.name, below?.name ?? null, boot));
      ctx.log.info('appliance installed', { server: server.name, layer: layer.name, base: below?.name ?? 'none (single-layer)', base_shared: baseLayer ? !baseLayer.created : false });
      return stateOf(planned, layer, below?.name ?? null);
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
      const baseName = state.base_volume ?? (state.base ? baseVolumeName(state.base.name, state.base.sha256) : null);
      const [layer, base] = await Promise.all([getVolume(uri, state.volume ?? applianceVolumeName(state.name, state.version)), baseName ? getVolume(uri, baseName) : null]);
      if (!layer || (baseName && !base)) return null;
      return stateOf(state, layer, base?.name ?? null);
    });
  },

  async update(ctx, _prior, planned) {
    const uri = serverOf(planned).uri;
    const volume = planned.volume ?? applianceVolumeName(planned.name, planned.version);
    await explained(blame(planned), async () => {
      const record = await readLayerRecord<ApplianceRecord>(uri, volume);
      if (record) await writeLayerRecord(ctx.session, uri, volume, { ...record, memoryMib: planned.memory_mib, vcpus: planned.vcpus, disks: disksOf(planned), webpanel: planned.webpanel });
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
