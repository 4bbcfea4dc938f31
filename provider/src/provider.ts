// The storm provider: its configuration block and its resources.
import type { ProviderDefinition } from './contract.ts';
import { HostSession } from './host/session.ts';
import type { BlockSpec } from './schema/model.ts';
import { decodeBlock } from './schema/typed.ts';
import { appliance } from './resources/appliance.ts';
import { applianceServer } from './resources/appliance-server.ts';
import { deployment } from './resources/deployment.ts';
import { instance } from './resources/instance.ts';
import { network } from './resources/network.ts';
import { applianceDataSource } from './resources/data-appliance.ts';
import { channelDataSource } from './resources/data-channel.ts';

const configBlock = {
  attributes: {
    trusted_keys: {
      type: { list: 'string' },
      mode: 'optional',
      description:
        'Public keys of the appliance publishers you trust, each the line `storm keygen` printed (`storm-ed25519 KEYID BASE64`). Channels whose feed or images are not signed by one of them are refused, unless a data source sets `insecure_skip_verify`.',
    },
    cache_dir: { type: 'string', mode: 'optional', description: 'Where images and channel feeds are cached. Defaults to `$STORM_CACHE_DIR`, else `~/.cache/storm`.' },
  },
} as const satisfies BlockSpec;

export const storm: ProviderDefinition = {
  typeName: 'storm',
  description: 'storm manages virtual appliances on your own hardware: libvirt hosts powered through IPMI.',
  configBlock,
  resources: [applianceServer, appliance, deployment, instance, network],
  dataSources: [channelDataSource, applianceDataSource],
  createSession: () => new HostSession(),
  configure(config) {
    const c = decodeBlock(configBlock, config ?? {});
    return { trustedKeys: (c.trusted_keys ?? []).filter((k) => typeof k === 'string'), cacheDir: c.cache_dir };
  },
};
