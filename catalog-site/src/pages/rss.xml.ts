// The channel: RSS 2.0, one item per appliance version, storm's namespace for the machine part.
import { getRssString } from '@astrojs/rss';
import type { APIRoute } from 'astro';
import { getCollection } from 'astro:content';
import { channel } from '../lib/channel.ts';
import { CHANNEL_FEED_NAMESPACE } from '../../../provider/src/rules.ts';
import { escapeXml, feedItems } from '../lib/feed.ts';
import { FEED_PATH } from '../lib/urls.ts';

export const GET: APIRoute = async () => {
  const appliances = (await getCollection('appliances')).map((e) => e.data);
  const { items, fill } = feedItems(appliances, channel.url);
  const feedUrl = new URL(FEED_PATH, channel.url).href;
  const xml = await getRssString({
    title: channel.title,
    description: channel.description,
    site: channel.url.href,
    xmlns: { storm: CHANNEL_FEED_NAMESPACE, atom: 'http://www.w3.org/2005/Atom' },
    customData: [
      `<atom:link href="${escapeXml(feedUrl)}" rel="self" type="application/rss+xml"/>`,
      `<lastBuildDate>${new Date().toUTCString()}</lastBuildDate>`,
      `<generator>storm catalog-site</generator>`,
      `<docs>https://www.rssboard.org/rss-specification</docs>`,
    ].join(''),
    items,
  });
  return new Response(fill(xml), { headers: { 'Content-Type': 'application/rss+xml; charset=utf-8' } });
};
