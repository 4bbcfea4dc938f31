// publisher.pub: the publisher's public key, when STORM_CHANNEL_PUBLIC_KEY names one.
import type { APIRoute, GetStaticPaths } from 'astro';
import { publisherKey } from '../lib/channel.ts';

export const getStaticPaths = (() => (publisherKey ? [{ params: { key: 'publisher' } }] : [])) satisfies GetStaticPaths;

export const GET: APIRoute = () => new Response(`${publisherKey}\n`, { headers: { 'Content-Type': 'text/plain; charset=utf-8' } });
