// Build-time settings come from the environment (see README.md):
//   STORM_CHANNEL_URL         absolute URL the built tree will be served at (default http://127.0.0.1:8080/)
//   STORM_CHANNEL_TITLE       the channel's title
//   STORM_CHANNEL_DESCRIPTION the channel's description
//   STORM_CHANNEL_PUBLISHER   who publishes it (default: the key's comment, else the URL's host)
//   STORM_CHANNEL_APPLIANCES  directory of <name>/appliance.xml files (default catalog-site/appliances)
//   STORM_CHANNEL_PUBLIC_KEY  the publisher's PREFIX.pub from `storm keygen`, published as publisher.pub (optional)
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig, passthroughImageService } from 'astro/config';
import { parsePublicKey } from '../provider/src/channel/signing.ts';
import { channelConfig } from './src/lib/channel-config.ts';
import { publishImages } from './src/lib/publish-images.ts';

const channel = channelConfig(process.env, process.env.INIT_CWD ?? process.cwd(), fileURLToPath(new URL('./appliances/', import.meta.url)));
// Resolved once, read back by src/lib/channel.ts in the content loader and the pages.
process.env.STORM_CHANNEL_URL = channel.url.href;
process.env.STORM_CHANNEL_APPLIANCES = channel.appliancesDir;
if (channel.publicKeyFile) {
  let line: string;
  try {
    line = readFileSync(channel.publicKeyFile, 'utf8');
  } catch (e) {
    throw new Error(`STORM_CHANNEL_PUBLIC_KEY: cannot read ${channel.publicKeyFile} (${(e as Error).message}); point it at the .pub file \`storm keygen\` wrote`);
  }
  try {
    parsePublicKey(line);
  } catch (e) {
    throw new Error(`STORM_CHANNEL_PUBLIC_KEY: ${channel.publicKeyFile}: ${(e as Error).message}`);
  }
  process.env.STORM_CHANNEL_PUBLIC_KEY = channel.publicKeyFile;
}

export default defineConfig({
  site: channel.url.origin,
  base: channel.url.pathname,
  output: 'static',
  trailingSlash: 'ignore',
  build: { format: 'directory' },
  // No image optimisation: the site has no raster images, and sharp is not needed.
  image: { service: passthroughImageService() },
  devToolbar: { enabled: false },
  integrations: [publishImages(() => channel.appliancesDir, () => channel.url)],
});
