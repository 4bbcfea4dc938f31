// data "storm_appliance": one appliance from a channel, by name and version constraint, with
// its dependencies resolved in install order, every image's signature checked, and what
// resource "storm_appliance" needs (base, image and its system disk file, boot, hardware,
// swap and user disks, web panel) from its definition.
import { DiagnosticError, attr, type Diagnostic } from '../protocol/diagnostics.ts';
import type { ResourceSchema, ValueType } from '../schema/model.ts';
import { defineDataSource } from '../schema/typed.ts';
import { nameValidator } from '../schema/validators.ts';
import { parseApplianceDefinition, formatProblems } from '../channel/definition.ts';
import type { ChannelItem } from '../channel/feed.ts';
import { ResolutionError, resolve } from '../channel/resolve.ts';
import { ConstraintError, parseConstraint } from '../channel/versions.ts';
import type { ApplianceDefinition } from '../channel/types.ts';
import { channelDocument, readChannel, sha256Hex, verifyDetached } from './channel-access.ts';
import { channelUrlValidator as CHANNEL_URL } from '../schema/validators.ts';
import { kibToMibCeil } from '../rules.ts';
import type { ResourceContext } from '../contract.ts';

const dependency = {
  object: { name: 'string', version: 'string', image_url: 'string', image_sha256: 'string', base_name: 'string', base_url: 'string', base_sha256: 'string' },
} as const;

const boot = { object: { kernel_url: 'string', kernel_sha256: 'string', initrd_url: 'string', initrd_sha256: 'string', cmdline: 'string' } } as const;

/** The shape resource "storm_appliance" takes as `disks`, so the list passes straight through. */
const disk = { object: { name: 'string', type: 'string', size_mib: 'number' } } as const;

const computed = <const T extends ValueType>(type: T, description: string) => ({ type, mode: 'computed' as const, description });

const schema = {
  typeName: 'storm_appliance',
  version: 0,
  description:
    'One appliance from a channel, chosen by name and version constraint, with its dependencies resolved in install order. ' +
    'Every image\'s signature is checked against the provider\'s `trusted_keys`; the attributes feed `resource "storm_appliance"` directly.',
  block: {
    attributes: {
      channel: { type: 'string', mode: 'required', validators: [CHANNEL_URL], description: 'URL of the channel\'s feed.' },
      name: { type: 'string', mode: 'required', validators: [nameValidator], description: 'Appliance name, e.g. `webserv`.' },
      version_constraint: { type: 'string', mode: 'optional', description: 'Which versions are acceptable, e.g. `1.0.0-0`, `>= 1.0, < 2` or `~> 1.2`; the newest that fits wins. Unset: the newest.' },
      insecure_skip_verify: { type: 'bool', mode: 'optional', description: 'Use this channel without checking signatures.' },
      id: computed('string', '`NAME@VERSION` of the chosen appliance.'),
      version: computed('string', 'The chosen version.'),
      label: computed('string', 'Human name.'),
      description: computed('string', 'What it is.'),
      definition_url: computed('string', 'URL of its definition.'),
      image_url: computed('string', 'The appliance layer.'),
      image_sha256: computed('string', 'Its SHA-256 (covered by the publisher\'s signature).'),
      image_size_bytes: computed('number', 'Its download size in bytes, as the feed\'s enclosure says (null when the channel does not know it: the image lives on another server).'),
      system_disk_file: computed('string', 'The system disk\'s file inside the image, when the image is an archive (the definition\'s `<disk type="system" file="…"/>`, e.g. `sys.img`): feed it to `image.file` of `resource "storm_appliance"`. Null when the definition names none.'),
      base_name: computed('string', 'The base-OS layer it stands on; null for a single-layer appliance (its image is its own base: leave out the resource\'s `base` block).'),
      base_url: computed('string', 'Where that base is.'),
      base_sha256: computed('string', 'Its SHA-256.'),
      boot: computed(boot, 'Direct kernel boot, when the appliance has no boot loader (else null).'),
      memory_mib: computed('number', 'Memory the appliance asks for (its `<memory>`, KiB, rounded up to MiB): feed it to the resource\'s `memory_mib`, and its instances get it unless they set their own.'),
      vcpus: computed('number', 'vCPUs it asks for (its `<cpus>`): feed it to the resource\'s `vcpus`, like memory_mib.'),
      disks: computed(
        { list: disk },
        'Its swap and user disks, in the definition\'s order: `name`, `type` (`swap` or `user`) and `size_mib`. The shape `disks` of `resource "storm_appliance"` takes: `disks = data.storm_appliance.NAME.disks`.',
      ),
      provides: computed({ list: 'string' }, 'Services it provides.'),
      webpanel: computed('string', 'Path of its web control panel, if any (e.g. `/upload.php`): feed it to the resource\'s `webpanel`, and instances show `webpanel_url`.'),
      verified_by: computed('string', 'Key id of the publisher key that signed it (null when not checked).'),
      dependencies: computed({ list: dependency }, 'The appliances it depends on, resolved, in install order (install these first).'),
    },
  },
} as const satisfies ResourceSchema;

async function definitionOf(ctx: ResourceContext, item: ChannelItem, insecure: boolean): Promise<ApplianceDefinition & { image: { sha256: string } }> {
  const bytes = await channelDocument(ctx, item.definitionUrl).catch((err: unknown) => {
    throw new DiagnosticError('Cannot fetch the appliance definition', `${(err as Error).message}.`);
  });
  if (!bytes) throw new DiagnosticError('The appliance definition is missing', `${item.definitionUrl} answered 404.`);
  if (!insecure) {
    if (!item.definitionSha256) throw new DiagnosticError('The feed does not cover the definition', `The feed item for ${item.name} ${item.version} has no storm:definition-sha256, so its definition cannot be trusted. Ask the publisher to rebuild the channel.`);
    if (sha256Hex(bytes) !== item.definitionSha256) throw new DiagnosticError('The appliance definition was changed after the feed was signed', `${item.definitionUrl} does not match the checksum in the signed feed. Do not use it; tell the publisher.`);
  }
  // A definition in the paper's format has no <name> or <sha256>: the signed feed's stand (the
  // feed covers this document's checksum, so they describe the same appliance).
  const parsed = parseApplianceDefinition(bytes, item.definitionUrl, { name: item.name });
  if (!parsed.ok) throw new DiagnosticError('The appliance definition is invalid', formatProblems(parsed.problems, item.definitionUrl));
  const d = parsed.definition;
  const imageSha256 = d.image.sha256 ?? item.image.sha256;
  if (d.name !== item.name || d.version !== item.version || imageSha256 !== item.image.sha256 || (d.base?.sha256 ?? null) !== (item.base?.sha256 ?? null)) {
    throw new DiagnosticError('The appliance definition disagrees with the feed', `${item.definitionUrl} describes ${d.name} ${d.version} (image ${imageSha256.slice(0, 12)}…), the feed ${item.name} ${item.version} (image ${item.image.sha256.slice(0, 12)}…).`);
  }
  return { ...d, image: { ...d.image, sha256: imageSha256 } };
}

export const applianceDataSource = defineDataSource<typeof schema>({
  schema,

  validate(config) {
    const diags: Diagnostic[] = [];
    const c = config.version_constraint;
    if (typeof c === 'string' && c) {
      try {
        parseConstraint(c);
      } catch (err) {
        if (err instanceof ConstraintError) diags.push({ severity: 'error', summary: 'Invalid version_constraint', detail: err.message, path: attr('version_constraint') });
      }
    }
    return diags;
  },

  async read(ctx, config) {
    const url = config.channel;
    const insecure = config.insecure_skip_verify === true;
    const { feed, verifiedBy, keys } = await readChannel(ctx, url, insecure, attr('channel'));
    let chain: ChannelItem[];
    try {
      chain = resolve(feed.items, config.name, config.version_constraint);
    } catch (err) {
      if (err instanceof ResolutionError) throw new DiagnosticError('Cannot resolve the appliance', `${err.message} (channel ${url})`, attr('name'));
      throw err;
    }
    if (!insecure) {
      for (const item of chain) {
        await verifyDetached(ctx, item.image.sig, 'image', item.image.sha256, `image of ${item.name} ${item.version}`, item.image.url, keys);
        if (item.base) await verifyDetached(ctx, item.base.sig, 'image', item.base.sha256, `base image ${item.base.name}`, item.base.url, keys);
      }
    }
    const root = chain[chain.length - 1]!;
    const def = await definitionOf(ctx, root, insecure);
    const disks = def.hardware.disks.filter((d) => d.type !== 'system');
    for (const d of disks.filter((x) => x.sizeMib === null)) {
      ctx.warn(
        `Disk "${d.name}" of ${root.name} ${root.version} is left out`,
        `Its definition gives the ${d.type} disk file="${d.file ?? ''}" (a file inside the image) rather than size="…"; storm gives every instance its swap and user disks as new empty volumes of a size, so it cannot honour this one. Ask the publisher to write size='MiB'.`,
      );
    }
    return {
      ...config,
      id: `${root.name}@${root.version}`,
      version: root.version,
      label: def.label,
      description: def.description,
      definition_url: root.definitionUrl,
      image_url: def.image.url,
      image_sha256: def.image.sha256,
      image_size_bytes: root.image.sizeBytes,
      system_disk_file: def.hardware.disks.find((d) => d.type === 'system')?.file ?? null,
      base_name: def.base?.name ?? null,
      base_url: def.base?.url ?? null,
      base_sha256: def.base?.sha256 ?? null,
      boot: def.boot
        ? { kernel_url: def.boot.kernel.url, kernel_sha256: def.boot.kernel.sha256, initrd_url: def.boot.initrd.url, initrd_sha256: def.boot.initrd.sha256, cmdline: def.boot.cmdline }
        : null,
      memory_mib: kibToMibCeil(def.hardware.memoryKib),
      vcpus: def.hardware.cpus,
      provides: def.provides,
      webpanel: def.webpanel,
      disks: disks.filter((d) => d.sizeMib !== null).map((d) => ({ name: d.name, type: d.type, size_mib: d.sizeMib })),
      verified_by: verifiedBy,
      dependencies: chain.slice(0, -1).map((i) => ({
        name: i.name,
        version: i.version,
        image_url: i.image.url,
        image_sha256: i.image.sha256,
        base_name: i.base?.name ?? null,
        base_url: i.base?.url ?? null,
        base_sha256: i.base?.sha256 ?? null,
      })),
    };
  },
});
