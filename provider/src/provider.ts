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
import { scalingGroup } from './resources/scaling-group.ts';
import { applianceDataSource } from './resources/data-appliance.ts';
import { channelDataSource } from './resources/data-channel.ts';

const configBlock = {
  attributes: {
    trusted_keys: {
      type: { list: 'string' },
      mode: 'optional',
      description:
        'Public keys of the appliance publishers you trust, each the line `storm keygen` printed (`storm-ed25519 KEYID BASE64`). Channels whose feed or images are not signed by one of them are refused, unless a data source sets `insecure_skip_verify`. A key a channel rotated to, by a rotation its old trusted key signed, is followed (with a warning to replace the line). Removing a key here is how you revoke it.',
    },
    cache_dir: {
      type: 'string',
      mode: 'optional',
      description:
        'Where images and channel feeds are cached, and where storm remembers the newest feed it has seen of each channel (`channels/trust/`; keep it between runs for the rollback check). Defaults to `$STORM_CACHE_DIR`, else `~/.cache/storm`.',
    },
  },
  blocks: {
    controller: {
      nesting: 'single',
      description: 'The storm controller that runs scaling groups and host power (`storm controller run`). Needed by `storm_scaling_group`; with it, appliance servers that have an `ipmi` block are registered with the controller so it can power them.',
      block: {
        attributes: {
          url: { type: 'string', mode: 'required', description: 'The controller\'s API, e.g. `https://10.0.0.5:8443`.' },
          token: { type: 'string', mode: 'required', sensitive: true, description: 'The admin token (the `admin-token` file `storm controller init` wrote).' },
          ca_pem: { type: 'string', mode: 'required', description: 'The CA that issued the controller\'s certificate (its `ca.pem`, e.g. `file("controller/ca.pem")`): the only one trusted for this connection.' },
        },
      },
    },
  },
} as const satisfies BlockSpec;

export const storm: ProviderDefinition = {
  typeName: 'storm',
  description: 'storm manages virtual appliances on your own hardware: libvirt hosts powered through IPMI.',
  configBlock,
  resources: [applianceServer, appliance, deployment, instance, network, scalingGroup],
  dataSources: [channelDataSource, applianceDataSource],
  createSession: () => new HostSession(),
  configure(config) {
    const c = decodeBlock(configBlock, config ?? {});
    return {
      trustedKeys: (c.trusted_keys ?? []).filter((k) => typeof k === 'string'),
      cacheDir: c.cache_dir,
      controller: c.controller ? { url: c.controller.url, token: c.controller.token, caPem: c.controller.ca_pem } : null,
    };
  },
};
