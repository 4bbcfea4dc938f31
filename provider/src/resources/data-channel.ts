// data "storm_channel": a channel's feed → the appliances it lists (every version).
import type { ResourceSchema } from '../schema/model.ts';
import { defineDataSource } from '../schema/typed.ts';
import { channelUrlValidator as CHANNEL_URL } from '../schema/validators.ts';
import { formatTime } from '../channel/signing.ts';
import { readChannel } from './channel-access.ts';


const listed = {
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
} as const;

const schema = {
  typeName: 'storm_channel',
  version: 0,
  description:
    'A channel: an appliance publisher\'s RSS feed. storm checks the feed\'s signature against the provider\'s `trusted_keys` (following a key rotation the channel publishes), ' +
    'and refuses a feed signed for another channel, one past the expiry its publisher signed, and one older than the newest this machine has seen of the channel. ' +
    'It caches the feed, and serves the cached copy (with a warning) when the channel is down, until that expiry.',
  block: {
    attributes: {
      url: { type: 'string', mode: 'required', validators: [CHANNEL_URL], description: 'URL of the channel\'s feed, e.g. `https://appliances.example.org/rss.xml`.' },
      insecure_skip_verify: { type: 'bool', mode: 'optional', description: 'Use this channel without checking signatures. Only for channels you publish yourself on a network you trust.' },
      id: { type: 'string', mode: 'computed', description: 'The feed URL.' },
      title: { type: 'string', mode: 'computed', description: 'The channel\'s title.' },
      verified_by: { type: 'string', mode: 'computed', description: 'Key id of the publisher key that signed the feed (null when not checked).' },
      feed_version: { type: 'number', mode: 'computed', description: 'The feed\'s signed version: `storm sign` uses the signing time in milliseconds (null when not checked).' },
      feed_expires: { type: 'string', mode: 'computed', description: 'When the feed\'s signature expires (RFC 3339, UTC); storm refuses the feed, cached copy included, from then on (null when not checked).' },
      appliances: { type: { list: listed }, mode: 'computed', description: 'Every appliance version the channel lists.' },
    },
  },
} as const satisfies ResourceSchema;

export const channelDataSource = defineDataSource<typeof schema>({
  schema,
  async read(ctx, config) {
    const url = config.url;
    const { feed, verifiedBy, statement } = await readChannel(ctx, url, config.insecure_skip_verify === true);
    return {
      ...config,
      id: url,
      title: feed.title,
      verified_by: verifiedBy,
      feed_version: statement?.version ?? null,
      feed_expires: statement ? formatTime(statement.expires) : null,
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
});
