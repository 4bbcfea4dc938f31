// data "storm_channel": a channel's feed → the appliances it lists (every version).
import type { Diagnostic } from '../protocol/diagnostics.ts';
import type { ResourceSchema, ValueType } from '../schema/model.ts';
import { matches } from '../schema/validators.ts';
import { readChannel } from './channel-access.ts';
import { str, type DataSourceDefinition } from './resource.ts';

export const CHANNEL_URL = matches(/^(https?:\/\/\S+|file:\/\/\/\S+|\/\S+)$/, 'a channel feed URL: use the http(s) URL of its rss.xml (or a file:/// URL)');

const listed: ValueType = {
  object: {
    name: 'string',
    version: 'string',
    label: 'string',
    description: 'string',
    definition_url: 'string',
    image_url: 'string',
    image_sha256: 'string',
    provides: { list: 'string' },
    dependencies: { list: 'string' },
  },
};

const schema: ResourceSchema = {
  typeName: 'storm_channel',
  version: 0,
  description:
    'A channel: an appliance publisher\'s RSS feed. storm checks the feed\'s signature against the provider\'s `trusted_keys`, caches it, and serves the cached copy (with a warning) when the channel is down.',
  block: {
    attributes: {
      url: { type: 'string', mode: 'required', validators: [CHANNEL_URL], description: 'URL of the channel\'s feed, e.g. `https://appliances.example.org/rss.xml`.' },
      insecure_skip_verify: { type: 'bool', mode: 'optional', description: 'Use this channel without checking signatures. Only for channels you publish yourself on a network you trust.' },
      id: { type: 'string', mode: 'computed', description: 'The feed URL.' },
      title: { type: 'string', mode: 'computed', description: 'The channel\'s title.' },
      verified_by: { type: 'string', mode: 'computed', description: 'Key id of the publisher key that signed the feed (null when not checked).' },
      appliances: { type: { list: listed }, mode: 'computed', description: 'Every appliance version the channel lists.' },
    },
  },
};

export const channelDataSource: DataSourceDefinition = {
  schema,
  validate(): Diagnostic[] {
    return [];
  },
  async read(ctx, config) {
    const url = str(config.url) ?? '';
    const { feed, verifiedBy } = await readChannel(ctx, url, config.insecure_skip_verify === true);
    return {
      ...config,
      id: url,
      title: feed.title,
      verified_by: verifiedBy,
      appliances: feed.items.map((i) => ({
        name: i.name,
        version: i.version,
        label: i.label,
        description: i.description,
        definition_url: i.definitionUrl,
        image_url: i.image.url,
        image_sha256: i.image.sha256,
        provides: i.provides,
        dependencies: i.dependencies,
      })),
    };
  },
};
