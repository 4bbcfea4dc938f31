// storm_deployment: the deployment-specific layer over an appliance on a server, and the
// deployment's files: templates with ${variable} that every instance of it gets, expanded
// with the instance's variables when the instance is created.
import { DiagnosticError, attr, type Diagnostic } from '../protocol/diagnostics.ts';
import type { CtyValue } from '../protocol/cty/index.ts';
import type { ResourceSchema } from '../schema/model.ts';
import { nameValidator } from '../schema/validators.ts';
import { imageSourceAttributes } from './image-source.ts';
import { fileBlock } from './file-block.ts';
import { ChecksumMismatchError, ImageSourceError } from '../drivers/images/fetch.ts';
import { fetchLogged, installLayer, LayerFormatError } from '../drivers/layers.ts';
import { Qcow2Error } from '../drivers/qcow2.ts';
import { createOverlay, deleteVolume, dependentsOf, getVolume, readRecord, writeRecord } from '../drivers/volumes.ts';
import { str, type ObjectValue, type ResourceDefinition } from './resource.ts';
import { applianceRecordName, type ApplianceRecord } from './appliance.ts';
import { layerId, parseLayerId } from './server-ref.ts';


const schema: ResourceSchema = {
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
};

export interface DeploymentFile {
  path: string;
  content: string;
  permissions: string;
}

export interface DeploymentRecord {
  volume: string;
  appliance: string;
  files: DeploymentFile[];
  variables: Record<string, string>;
  /** The published layer it was made from (null: an empty layer); kept so import can restore it. */
  image?: { url: string; sha256: string } | null;
}

export const deploymentRecordName = (volume: string) => `${volume}.json`;

function filesOf(v: CtyValue | undefined): DeploymentFile[] {
  return (Array.isArray(v) ? v : []).map((f) => {
    const o = f as ObjectValue;
    return { path: str(o.path) ?? '', content: str(o.content) ?? '', permissions: str(o.permissions) ?? '0644' };
  });
}

function stringMap(v: CtyValue | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (v && typeof v === 'object' && !Array.isArray(v)) for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}

export { filesOf, stringMap };

function recordOf(planned: ObjectValue, volume: string, appliance: string): DeploymentRecord {
  const image = planned.image as ObjectValue | null;
  return {
    volume,
    appliance,
    files: filesOf(planned.file),
    variables: stringMap(planned.variables),
    image: image ? { url: str(image.url) ?? '', sha256: str(image.sha256) ?? '' } : null,
  };
}

export const deployment: ResourceDefinition = {
  schema,

  validate(config) {
    const diags: Diagnostic[] = [];
    const files = filesOf(config.file);
    const seen = new Set<string>();
    files.forEach((f, index) => {
      if (seen.has(f.path)) diags.push({ severity: 'error', summary: 'Duplicate file path', detail: `${f.path} appears twice; give each file one block.`, path: [{ attribute: 'file' }, { index }, { attribute: 'path' }] });
      seen.add(f.path);
    });
    return diags;
  },

  async create(ctx, planned) {
    const app = parseLayerId(str(planned.appliance) ?? '', 'app-', 'an appliance', attr('appliance'));
    const uri = app.server.uri;
    const appRecord = await readRecord<ApplianceRecord>(uri, applianceRecordName(app.volume));
    const below = await getVolume(uri, app.volume);
    if (!appRecord || !below) {
      throw new DiagnosticError('The appliance is not installed', `Server "${app.server.name}" has no ${app.volume}. Reference the storm_appliance's id so Terraform creates it first.`, attr('appliance'));
    }
    const volume = `dep-${str(planned.name)}`;
    if (await getVolume(uri, volume)) {
      if (await readRecord(uri, deploymentRecordName(volume))) {
        throw new DiagnosticError('The deployment already exists', `Server "${app.server.name}" already has ${volume}. Choose another name.`, attr('name'));
      }
      // No record: a create that was cut off before it finished.
      ctx.log.warn('replacing an incomplete deployment layer left by an interrupted create', { volume });
      await deleteVolume(uri, volume);
    }
    const image = planned.image as ObjectValue | null;
    try {
      if (image) {
        const local = await fetchLogged({ url: str(image.url) ?? '', sha256: str(image.sha256) ?? '' }, volume, ctx.log, ctx.signal, ctx.provider.cacheDir);
        await installLayer(uri, volume, local.path, below);
      } else {
        await createOverlay(uri, volume, below);
      }
    } catch (err) {
      if (err instanceof ChecksumMismatchError || err instanceof ImageSourceError) throw new DiagnosticError('Could not use the deployment image', `${err.message}. Nothing was installed.`, attr('image', 'sha256'));
      if (err instanceof LayerFormatError || err instanceof Qcow2Error) throw new DiagnosticError('The deployment image cannot be a layer', `${err.message}.`, attr('image', 'url'));
      throw err;
    }
    try {
      await writeRecord(uri, deploymentRecordName(volume), recordOf(planned, volume, app.volume));
    } catch (err) {
      await deleteVolume(uri, volume).catch(() => {});
      throw err;
    }
    return { ...planned, id: layerId(volume, app.serverId), volume };
  },

  async read(_ctx, state) {
    const app = parseLayerId(str(state.appliance) ?? '', 'app-', 'an appliance', attr('appliance'));
    const volume = str(state.volume) ?? '';
    const [vol, record] = await Promise.all([getVolume(app.server.uri, volume), readRecord<DeploymentRecord>(app.server.uri, deploymentRecordName(volume))]);
    if (!vol || !record) return null;
    const file = record.files.map((f) => ({ path: f.path, content: f.content, permissions: f.permissions }));
    const variables = Object.keys(record.variables).length || state.variables !== null ? record.variables : null;
    return { ...state, file, variables };
  },

  async update(_ctx, _prior, planned) {
    const app = parseLayerId(str(planned.appliance) ?? '', 'app-', 'an appliance', attr('appliance'));
    const volume = str(planned.volume) ?? '';
    await writeRecord(app.server.uri, deploymentRecordName(volume), recordOf(planned, volume, app.volume));
    return planned;
  },

  async importState(_ctx, id) {
    const at = id.indexOf('@');
    const ref = at > 0 ? parseLayerId(`dep-${id.slice(0, at)}@${id.slice(at + 1)}`, 'dep-', 'a deployment', []) : null;
    if (!ref) throw new DiagnosticError('Invalid import id', `"${id}" is not NAME@SERVER_ID, e.g. corp-mail@blade1@qemu+tls://blade1.rack.example/system.`);
    const record = await readRecord<DeploymentRecord>(ref.server.uri, deploymentRecordName(ref.volume));
    if (!record) throw new DiagnosticError('No such deployment', `Server "${ref.server.name}" has no deployment ${ref.volume}.`);
    return {
      id: layerId(ref.volume, ref.serverId),
      appliance: layerId(record.appliance, ref.serverId),
      name: ref.volume.replace(/^dep-/, ''),
      variables: Object.keys(record.variables).length ? record.variables : null,
      volume: ref.volume,
      image: record.image ?? null,
      file: record.files.map((f) => ({ path: f.path, content: f.content, permissions: f.permissions })),
    };
  },

  async delete(_ctx, prior) {
    const app = parseLayerId(str(prior.appliance) ?? '', 'app-', 'an appliance', attr('appliance'));
    const uri = app.server.uri;
    const vol = await getVolume(uri, str(prior.volume) ?? '');
    if (vol) {
      const above = await dependentsOf(uri, vol.path);
      if (above.length) throw new DiagnosticError('The deployment still has instances', `${above.join(', ')} stand on ${vol.name}. Destroy those instances first.`);
      await deleteVolume(uri, vol.name);
    }
    await deleteVolume(uri, deploymentRecordName(str(prior.volume) ?? ''));
  },
};
