import { defineCollection } from 'astro:content';
import { applianceLoader } from './lib/appliance-loader.ts';
import { channel } from './lib/channel.ts';
import { publishedApplianceSchema } from './lib/schema.ts';

const appliances = defineCollection({
  loader: applianceLoader({ directory: channel.appliancesDir }),
  schema: publishedApplianceSchema,
});

export const collections = { appliances };
