// This build's channel settings. astro.config.ts resolves them once (relative paths against
// the directory npm was started in, the key checked) and exports the result to the
// environment; this reads it back.
import { readFileSync } from 'node:fs';
import { parsePublicKey } from '../../../provider/src/channel/signing.ts';
import { channelConfig, publisherOf, type Publisher } from './channel-config.ts';

export const channel = channelConfig(process.env, process.cwd(), '');

/** The publisher's public key line, or null when STORM_CHANNEL_PUBLIC_KEY is not set. */
export const publisherKey: string | null = channel.publicKeyFile ? readFileSync(channel.publicKeyFile, 'utf8').trim() : null;

/**
 * Who publishes the channel, and the key id the pages show as "signed by". A configured key is
 * taken as the publisher's word that rss.xml will be signed with it after the build (the README's
 * `storm sign --purpose feed`): the site is built before the signature exists, so it cannot see it.
 */
export const publisher: Publisher = publisherOf(channel, publisherKey ? parsePublicKey(publisherKey) : null);
