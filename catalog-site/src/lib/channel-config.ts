// The channel's build-time settings, from the environment. Pure: takes the env and the
// directory relative paths are resolved against, returns the config or throws saying the fix.
import path from 'node:path';

export interface ChannelConfig {
  /** Absolute URL the built tree is served at, ending in '/'. */
  url: URL;
  title: string;
  description: string;
  /** Directory holding `**\/appliance.xml`. */
  appliancesDir: string;
  /** The publisher's public key file (`storm keygen`'s PREFIX.pub), published as publisher.pub; null: none. */
  publicKeyFile: string | null;
}

export const DEFAULT_CHANNEL_URL = 'http://127.0.0.1:8080/';

export function channelConfig(env: Record<string, string | undefined>, cwd: string, defaultAppliancesDir: string): ChannelConfig {
  const raw = env.STORM_CHANNEL_URL?.trim() || DEFAULT_CHANNEL_URL;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`STORM_CHANNEL_URL "${raw}" is not an absolute URL; set it to where the channel will be served, e.g. ${DEFAULT_CHANNEL_URL}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`STORM_CHANNEL_URL "${raw}" must be http: or https:, e.g. ${DEFAULT_CHANNEL_URL}`);
  }
  if (url.search || url.hash) throw new Error(`STORM_CHANNEL_URL "${raw}" must not have a query or fragment`);
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  const dir = env.STORM_CHANNEL_APPLIANCES?.trim();
  const key = env.STORM_CHANNEL_PUBLIC_KEY?.trim();
  return {
    url,
    title: env.STORM_CHANNEL_TITLE?.trim() || 'storm channel',
    description: env.STORM_CHANNEL_DESCRIPTION?.trim() || 'Virtual appliances published for storm.',
    appliancesDir: dir ? path.resolve(cwd, dir) : defaultAppliancesDir,
    publicKeyFile: key ? path.resolve(cwd, key) : null,
  };
}
