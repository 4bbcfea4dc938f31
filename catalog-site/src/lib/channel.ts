// This build's channel settings. astro.config.ts resolves them once (relative paths against
// the directory npm was started in, the key checked) and exports the result to the
// environment; this reads it back.
import { readFileSync } from 'node:fs';
import { channelConfig } from './channel-config.ts';

export const channel = channelConfig(process.env, process.cwd(), '');

/** The publisher's public key line, or null when STORM_CHANNEL_PUBLIC_KEY is not set. */
export const publisherKey: string | null = channel.publicKeyFile ? readFileSync(channel.publicKeyFile, 'utf8').trim() : null;
