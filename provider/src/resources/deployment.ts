// storm_deployment: the deployment-specific layer over an appliance on a server, and the
// deployment's files: templates with ${variable} that every instance of it gets, expanded
// with the instance's variables when the instance is created.
import { DiagnosticError, attr, type Diagnostic } from '../protocol/diagnostics.ts';
import type { ResourceSchema } from '../schema/model.ts';
import { decodeBlock, defineResource, type Model } from '../schema/typed.ts';
import { nameValidator } from '../schema/validators.ts';
import { fetchLogged, installLayer } from '../drivers/layers.ts';
import { createOverlay, deleteVolume, dependentsOf, getVolume } from '../drivers/volumes.ts';
import { deploymentVolumeName, layerRecordName } from '../host/names.ts';
import { readLayerRecord, writeLayerRecord, type ApplianceRecord, type DeploymentRecord } from '../host/records.ts';
import { layerId, parseImportId, parseLayerId, type LayerRef } from '../host/refs.ts';
import { diagnose, explained, readOrKeep, type Context } from './diagnose.ts';
import { fileBlock } from './file-block.ts';
import { imageSourceAttributes } from './image-source.ts';

const schema = {
  typeName: 'storm_deployment',
  version: 0,
  description:
    'A deployment of an appliance on a server: a qcow2 layer over the appliance layer (empty, or a published deployment image) and the files every instance of it gets. ' +
    'Files are templates: `${name}` is replaced by the instance\'s variable (or this deployment\'s default) when an instance is created. In HCL write `$${name}` so Terraform passes `${name}` through.',
  block: {
    attributes: {
      id: { type: 'string', mode: 'computed', description: 'The deployment reference instances take: `VOLUME@SERVER_ID`.' },
      appliance: { type: 'string', mode: 'required', forceNew: true, description: 'The `storm_appliance` id this deployment stands on.' },
      name: { type: 'string', mode: 'required', forceNew: true, validators: [nameValidator], description: 'Deployment name, e.g. `corp-mail`.' },
      variables: { type: { map: 'string' }, mode: 'optional', description: 'Default values for template variables; an instance\'s own variables win.' },
      volume: { type: 'string', mode: 'computed', description: 'Name of the deployment-layer volume in the server\'s `storm` pool.' },
    },
    blocks: {
      image: {
        nesting: 'single',
        description: 'A published deployment layer: a qcow2 overlay whose backing file is the appliance image. Without it the layer starts empty.',
        block: { attributes: imageSourceAttributes('deployment') },
      },
      file: fileBlock('A file every instance gets, written into its own layer at first boot (NoCloud `write_files`). Changing files affects instances created afterwards.'),
    },
  },
} as const satisfies ResourceSchema;

type Deployment = Model<typeof schema>;

const applianceOf = (d: Deployment): LayerRef => parseLayerId(d.appliance, 'app', attr('appliance'));
const blame = (d: Deployment): Context => ({ server: applianceOf(d).server.name, libvirt: { path: attr('appliance'), via: 'reference' }, image: { what: 'deployment', path: attr('image', 'sha256') } });

function recordOf(d: Deployment, volume: string, appliance: string): DeploymentRecord {
  return { volume, appliance, files: d.file, variables: d.variables ?? {}, image: d.image ? { url: d.image.url, sha256: d.image.sha256 } : null };
}

export const deployment = defineResource<typeof schema>({
  schema,

  validate(config) {
    const diags: Diagnostic[] = [];
    const seen = new Set<string>();
    (Array.isArray(config.file) ? config.file : []).forEach((f, index) => {
      const path = f !== null && typeof f === 'object' && 'path' in f ? f.path : null;
      if (typeof path !== 'string') return;
      if (seen.has(path)) diags.push({ severity: 'error', summary: 'Duplicate file path', detail: `${path} appears twice; give each file one block.`, path: [{ attribute: 'file' }, { index }, { attribute: 'path' }] });
      seen.add(path);
    });
    return diags;
  },

  async create(ctx, planned) {
    const app = applianceOf(planned);
    const uri = app.server.uri;
    const volume = deploymentVolumeName(planned.name);
    try {
      const [appRecord, below] = await Promise.all([readLayerRecord<ApplianceRecord>(uri, app.volume), getVolume(uri, app.volume)]);
      if (!appRecord || !below) {
        throw new DiagnosticError('The appliance is not installed', `Server "${app.server.name}" has no ${app.volume}. Reference the storm_appliance's id so Terraform creates it first.`, attr('appliance'));
      }
      if (await getVolume(uri, volume)) {
        if (await readLayerRecord(uri, volume)) {
          throw new DiagnosticError('The deployment already exists', `Server "${app.server.name}" already has ${volume}. Choose another name.`, attr('name'));
        }
        // No record: a create that was cut off before it finished.
        ctx.log.warn('replacing an incomplete deployment layer left by an interrupted create', { volume });
        await deleteVolume(uri, volume);
      }
      if (planned.image) {
        const local = await fetchLogged(planned.image, volume, ctx.log, ctx.signal, ctx.provider.cacheDir);
        await installLayer(uri, volume, local.path, below);
      } else {
        await createOverlay(uri, volume, below);
      }
    } catch (err) {
      diagnose(err, blame(planned));
    }
    try {
      await writeLayerRecord(ctx.session, uri, volume, recordOf(planned, volume, app.volume));
    } catch (err) {
      await deleteVolume(uri, volume).catch(() => {});
      diagnose(err, blame(planned));
    }
    return { ...planned, id: layerId(volume, app.serverId), volume };
  },

  async read(ctx, state) {
    const uri = applianceOf(state).server.uri;
    const volume = state.volume ?? deploymentVolumeName(state.name);
    return readOrKeep(ctx.warn, blame(state), `deployment "${state.name}"`, state, async () => {
      const [vol, record] = await Promise.all([getVolume(uri, volume), readLayerRecord<DeploymentRecord>(uri, volume)]);
      if (!vol || !record) return null;
      // An unset variables map stays unset (user intent), unless the host has some.
      const variables = Object.keys(record.variables).length || state.variables !== null ? record.variables : null;
      return { ...state, file: record.files, variables };
    });
  },

  async update(ctx, _prior, planned) {
    const app = applianceOf(planned);
    const volume = planned.volume ?? deploymentVolumeName(planned.name);
    await explained(blame(planned), () => writeLayerRecord(ctx.session, app.server.uri, volume, recordOf(planned, volume, app.volume)));
    return planned;
  },

  async importState(_ctx, id) {
    const { name, ref } = parseImportId(id, 'dep', 'corp-mail@blade1@qemu+tls://blade1.rack.example/system');
    const record = await readLayerRecord<DeploymentRecord>(ref.server.uri, ref.volume);
    if (!record) throw new DiagnosticError('No such deployment', `Server "${ref.server.name}" has no deployment ${ref.volume}.`);
    return decodeBlock(schema.block, {
      id: layerId(ref.volume, ref.serverId),
      appliance: layerId(record.appliance, ref.serverId),
      name,
      variables: Object.keys(record.variables).length ? record.variables : null,
      volume: ref.volume,
      image: record.image ?? null,
      file: record.files,
    });
  },

  async delete(ctx, prior) {
    const uri = applianceOf(prior).server.uri;
    const volume = prior.volume ?? deploymentVolumeName(prior.name);
    await explained(blame(prior), async () => {
      const vol = await getVolume(uri, volume);
      if (vol) {
        const above = await dependentsOf(uri, vol.path);
        if (above.length) throw new DiagnosticError('The deployment still has instances', `${above.join(', ')} stand on ${vol.name}. Destroy those instances first.`);
        await deleteVolume(uri, vol.name);
      }
      await ctx.session.deleteRecord(uri, layerRecordName(volume));
    });
  },
});
