// The channel's build-time settings, from the environment. Pure: takes the env and the
// directory relative paths are resolved against, returns the config or throws saying the fix.
//
//   STORM_CHANNEL_URL          absolute URL the built tree is served at (default http://127.0.0.1:8080/)
//   STORM_CHANNEL_TITLE        the channel's title (default "storm channel")
//   STORM_CHANNEL_DESCRIPTION  the feed's description
//   STORM_CHANNEL_PUBLISHER    who publishes the channel, as the pages name them. Default: the
//                              comment of the publisher key (`storm keygen --comment`), else the
//                              host of STORM_CHANNEL_URL: a name the publisher already chose, and
//                              failing that the one users see in their address bar.
//   STORM_CHANNEL_APPLIANCES   directory of **/appliance.xml (default catalog-site/appliances)
//   STORM_CHANNEL_PUBLIC_KEY   the publisher's .pub; with it the pages say "signed by <key id>"
//                              and link rss.xml.sig, without it they say the channel is unsigned
//
// Title, description and publisher reach the feed and the pages as text, and take the characters
// a definition may hold and no others (provider/src/channel/definition/xml-reader.ts
// refusedCharacter): XML cannot carry control characters at all, and the feed's builder
// (./feed.ts) uses private-use characters as its placeholders, so one in a title would be
// replaced by a checksum or a URL. They are refused here, naming the setting.
import path from 'node:path';
import { refusedCharacter } from '../../../provider/src/channel/definition/xml-reader.ts';

export interface ChannelConfig {
  /** Absolute URL the built tree is served at, ending in '/'. */
  url: URL;
  title: string;
  description: string;
  /** STORM_CHANNEL_PUBLISHER; null: derive it (see publisherOf). */
  publisher: string | null;
  /** Directory holding `**\/appliance.xml`. */
  appliancesDir: string;
  /** The publisher's public key file (`storm keygen`'s PREFIX.pub), published as publisher.pub; null: none. */
  publicKeyFile: string | null;
}

/** Who publishes the channel and with which key, as the pages say it. */
export interface Publisher {
  name: string;
  /** The key id of STORM_CHANNEL_PUBLIC_KEY (16 hex digits); null: the channel is unsigned. */
  keyId: string | null;
}

export const DEFAULT_CHANNEL_URL = 'http://127.0.0.1:8080/';

/** A publisher's mistake in a setting: the message says it all, so no stack trace into the config. */
export class ChannelSettingError extends Error {
  override name = 'ChannelSettingError';
  constructor(message: string) {
    super(message);
    this.stack = `${this.name}: ${message}`;
  }
}

/** Throws, naming the setting, when `value` holds a character the channel's text may not. */
export function checkSettingText(setting: string, value: string): string {
  let at = 0;
  for (const ch of value) {
    at++;
    const cp = ch.codePointAt(0)!;
    const why = refusedCharacter(cp);
    if (why !== null) {
      throw new ChannelSettingError(
        `${setting}: character ${at} cannot be published: ${why}. The channel's title, description and publisher take the same characters as a definition; set ${setting} without it.`,
      );
    }
  }
  return value;
}

function textSetting(env: Record<string, string | undefined>, setting: string, fallback: string): string;
function textSetting(env: Record<string, string | undefined>, setting: string, fallback: null): string | null;
function textSetting(env: Record<string, string | undefined>, setting: string, fallback: string | null): string | null {
  const value = env[setting]?.trim();
  return value ? checkSettingText(setting, value) : fallback;
}

export function channelConfig(env: Record<string, string | undefined>, cwd: string, defaultAppliancesDir: string): ChannelConfig {
  const raw = env.STORM_CHANNEL_URL?.trim() || DEFAULT_CHANNEL_URL;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ChannelSettingError(`STORM_CHANNEL_URL "${raw}" is not an absolute URL; set it to where the channel will be served, e.g. ${DEFAULT_CHANNEL_URL}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ChannelSettingError(`STORM_CHANNEL_URL "${raw}" must be http: or https:, e.g. ${DEFAULT_CHANNEL_URL}`);
  }
  if (url.search || url.hash) throw new ChannelSettingError(`STORM_CHANNEL_URL "${raw}" must not have a query or fragment`);
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  const dir = env.STORM_CHANNEL_APPLIANCES?.trim();
  const key = env.STORM_CHANNEL_PUBLIC_KEY?.trim();
  return {
    url,
    title: textSetting(env, 'STORM_CHANNEL_TITLE', 'storm channel'),
    description: textSetting(env, 'STORM_CHANNEL_DESCRIPTION', 'Virtual appliances published for storm.'),
    publisher: textSetting(env, 'STORM_CHANNEL_PUBLISHER', null),
    appliancesDir: dir ? path.resolve(cwd, dir) : defaultAppliancesDir,
    publicKeyFile: key ? path.resolve(cwd, key) : null,
  };
}

/**
 * The publisher as the pages name it: STORM_CHANNEL_PUBLISHER, else the key's comment, else the
 * channel's host. `key` is the parsed STORM_CHANNEL_PUBLIC_KEY, or null.
 */
export function publisherOf(config: Pick<ChannelConfig, 'url' | 'publisher'>, key: { keyId: string; comment: string | null } | null): Publisher {
  // The comment is free text in a file, so it gets the settings' check too, named as the file it came from.
  const comment = key?.comment ? checkSettingText('STORM_CHANNEL_PUBLIC_KEY (the key comment)', key.comment) : null;
  return { name: config.publisher ?? comment ?? config.url.host, keyId: key?.keyId ?? null };
}
