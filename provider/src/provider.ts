// The storm provider: its configuration block and its resources.
import type { ProviderDefinition } from './plugin/provider-service.ts';
import { appliance } from './resources/appliance.ts';
import { applianceServer } from './resources/appliance-server.ts';
import { deployment } from './resources/deployment.ts';
import { instance } from './resources/instance.ts';
import { network } from './resources/network.ts';

export const PROVIDER_VERSION = '0.1.0';

export const storm: ProviderDefinition = {
  typeName: 'storm',
  description: 'storm manages virtual appliances on your own hardware: libvirt hosts powered through IPMI.',
  configBlock: { attributes: {} },
  resources: [applianceServer, appliance, deployment, instance, network],
};
