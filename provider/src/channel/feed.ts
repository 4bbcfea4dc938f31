// A channel's feed (RSS 2.0 with storm's namespace, CHANNEL_FEED_NAMESPACE in ../rules.ts) read
// back into listings. rss-parser matches storm's elements by their `storm:` prefix, the one the
// catalog site declares for that namespace; it loads on first use (not on every provider start).
import type Parser from 'rss-parser';

export interface ChannelImage {
  url: string;
  sha256: string;
  sig: string | null;
}

export interface ChannelItem {
  name: string;
  version: string;
  label: string;
  description: string;
  link: string | null;
  definitionUrl: string;
  /** Checksum of the definition document, so what the signed feed says covers it too. */
  definitionSha256: string | null;
  image: ChannelImage & { sizeBytes: number | null };
  /** Null: a single-layer appliance (no storm:base; its image is its own base). */
  base: (ChannelImage & { name: string }) | null;
  provides: string[];
  dependencies: string[];
}

export interface ChannelFeed {
  title: string;
  items: ChannelItem[];
}

type Attrs = { $?: Record<string, string> };
type RawItem = Parser.Item & {
  stormName?: string;
  stormVersion?: string;
  stormDefinition?: string;
  stormDefinitionSha256?: string;
  stormSha256?: string;
  stormSignature?: string;
  stormBase?: Attrs;
  stormProvides?: string[];
  stormDependency?: string[];
};

const FEED_FIELDS = {
  customFields: {
    item: [
      ['storm:name', 'stormName'],
      ['storm:version', 'stormVersion'],
      ['storm:definition', 'stormDefinition'],
      ['storm:definition-sha256', 'stormDefinitionSha256'],
      ['storm:sha256', 'stormSha256'],
      ['storm:signature', 'stormSignature'],
      ['storm:base', 'stormBase'],
      ['storm:provides', 'stormProvides', { keepArray: true }],
      ['storm:dependency', 'stormDependency', { keepArray: true }],
    ],
  },
} satisfies Parser.ParserOptions<Record<string, unknown>, RawItem>;

export class FeedError extends Error {}

const text = (v: unknown): string => (typeof v === 'string' ? v.trim() : v && typeof v === 'object' && '_' in v ? String((v as { _: unknown })._).trim() : '');

export async function parseFeed(xml: string): Promise<ChannelFeed> {
  if (/<!DOCTYPE/i.test(xml)) throw new FeedError('the feed declares a DOCTYPE; storm refuses feeds with entity declarations');
  let feed: Parser.Output<RawItem>;
  try {
    // Loaded on first use: rss-parser (xml2js, sax, entities) would add ~20 ms to every
    // provider start, and most Terraform runs never read a feed.
    const { default: RssParser } = await import('rss-parser');
    feed = await new RssParser<Record<string, unknown>, RawItem>(FEED_FIELDS).parseString(xml);
  } catch (err) {
    throw new FeedError(`not an RSS feed: ${(err as Error).message}`);
  }
  const items: ChannelItem[] = [];
  feed.items.forEach((raw, i) => {
    const name = text(raw.stormName);
    const version = text(raw.stormVersion);
    const base = raw.stormBase?.$ ?? {};
    if (!name || !version || !text(raw.stormSha256) || !raw.enclosure?.url || (raw.stormBase !== undefined && !base.url)) {
      throw new FeedError(`item ${i + 1} ("${raw.title ?? ''}") lacks storm:name, storm:version, storm:sha256, a storm:base url or its enclosure: is this a storm channel?`);
    }
    items.push({
      name,
      version,
      label: raw.title ?? name,
      description: raw.contentSnippet ?? '',
      link: raw.link ?? null,
      definitionUrl: text(raw.stormDefinition),
      definitionSha256: text(raw.stormDefinitionSha256) || null,
      // An enclosure length of 0 is RSS for "not known" (the image lives on another server).
      image: { url: raw.enclosure.url, sha256: text(raw.stormSha256), sig: text(raw.stormSignature) || null, sizeBytes: Number(raw.enclosure.length) > 0 ? Number(raw.enclosure.length) : null },
      base: raw.stormBase === undefined ? null : { name: base.name ?? '', url: base.url ?? '', sha256: base.sha256 ?? '', sig: base.sig ?? null },
      provides: (raw.stormProvides ?? []).map(text).filter(Boolean),
      dependencies: (raw.stormDependency ?? []).map(text).filter(Boolean),
    });
  });
  return { title: feed.title ?? '', items };
}
