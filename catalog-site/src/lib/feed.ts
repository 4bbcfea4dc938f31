// The channel feed, as a pure function of the published appliances: one RSS item per
// appliance version, with the storm namespace carrying what a storm client needs to resolve
// and verify it without fetching the page (name, version, definition, checksums, signatures,
// base layer, provides, dependencies).
//
// @astrojs/rss 4 round-trips item customData through fast-xml-parser with number parsing on,
// so element text such as a version "1.0" would come out as "1" and a checksum "12e4" as
// "120000". Element text therefore goes in as opaque slots that fill() puts back, escaped,
// into the finished document. The slots are private-use characters, which no definition may hold
// (the validator refuses them) and no channel setting either (./channel-config.ts); fill()
// still checks that it finds exactly the slots it issued, so a stray one fails the build
// instead of putting a checksum where a title was.
import type { RSSFeedItem } from '@astrojs/rss';
import type { ApplianceDefinition } from './definition.ts';
import { compareVersions } from '../../../provider/src/channel/versions.ts';
import { IMAGE_MEDIA_TYPES, type Download } from '../../../provider/src/channel/publish.ts';
import { definitionPath, versionPath } from './urls.ts';

export interface FeedAppliance {
  definition: ApplianceDefinition;
  /** SHA-256 of the published appliance.xml, so a signed feed covers the definition too. */
  definitionSha256: string;
  published: Date;
  download: Download;
}

export const escapeXml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);

const escapeHtml = escapeXml;

const SLOT = /\uE000(\d+)\uE001/g;

class TextSlots {
  private readonly values: string[] = [];
  slot(value: string): string {
    this.values.push(value);
    return `\uE000${this.values.length - 1}\uE001`;
  }
  fill(xml: string): string {
    const filled = new Set<number>();
    const out = xml.replace(SLOT, (whole: string, i: string) => {
      const n = Number(i);
      if (n >= this.values.length || filled.has(n)) throw new Error(`the feed holds a placeholder it did not issue (${JSON.stringify(whole)}): private-use text reached the feed unchecked`);
      filled.add(n);
      return escapeXml(this.values[n]!);
    });
    if (filled.size !== this.values.length) throw new Error(`the feed lost ${this.values.length - filled.size} of its ${this.values.length} placeholders on the way through @astrojs/rss`);
    return out;
  }
}

export const formatDependency = (d: { name: string; version: string | null }) => (d.version ? `${d.name}:${d.version}` : d.name);

export function memoryMib(def: ApplianceDefinition): number {
  return Math.round(def.hardware.memoryKib / 1024);
}

function itemDescription(def: ApplianceDefinition): string {
  const facts = [
    `${def.hardware.cpus} CPU${def.hardware.cpus === 1 ? '' : 's'}`,
    `${memoryMib(def)} MiB memory`,
    `${def.sizeMib} MiB disk`,
    def.base ? `base ${def.base.name}` : 'single layer',
  ];
  const parts = [`<p>${escapeHtml(def.description)}</p>`, `<p>${escapeHtml(facts.join(' · '))}</p>`];
  if (def.provides.length) parts.push(`<p>Provides: ${escapeHtml(def.provides.join(', '))}</p>`);
  if (def.dependencies.length) parts.push(`<p>Depends on: ${escapeHtml(def.dependencies.map(formatDependency).join(', '))}</p>`);
  return parts.join('');
}

function stormElements(def: ApplianceDefinition, imageSha256: string, definitionUrl: string, definitionSha256: string, t: TextSlots): string {
  const el = (name: string, text: string) => `<storm:${name}>${t.slot(text)}</storm:${name}>`;
  const attrs = (a: Record<string, string | null>) =>
    Object.entries(a)
      .filter((e): e is [string, string] => e[1] !== null)
      .map(([k, v]) => ` ${k}="${escapeXml(v)}"`)
      .join('');
  return [
    `<guid isPermaLink="true">${t.slot(definitionUrl)}</guid>`,
    el('name', def.name),
    el('version', def.version),
    el('definition', definitionUrl),
    el('definition-sha256', definitionSha256),
    el('sha256', imageSha256),
    def.image.sig ? el('signature', def.image.sig) : '',
    // No storm:base: a single-layer appliance (its image is its own base).
    def.base ? `<storm:base${attrs({ name: def.base.name, url: def.base.url, sha256: def.base.sha256, sig: def.base.sig })}/>` : '',
    ...def.provides.map((p) => el('provides', p)),
    ...def.dependencies.map((d) => el('dependency', formatDependency(d))),
  ].join('');
}

/**
 * The items, newest publication first (then by name, newest version first), and fill() to
 * apply to the document @astrojs/rss renders from them.
 */
export function feedItems(appliances: readonly FeedAppliance[], channelUrl: URL): { items: RSSFeedItem[]; fill: (xml: string) => string } {
  const slots = new TextSlots();
  const byName = new Map<string, FeedAppliance[]>();
  for (const a of appliances) byName.set(a.definition.name, [...(byName.get(a.definition.name) ?? []), a]);
  const ordered = [...byName.keys()]
    .sort()
    .flatMap((name) => byName.get(name)!.sort((a, b) => compareVersions(b.definition.version, a.definition.version)))
    .sort((a, b) => b.published.getTime() - a.published.getTime());
  const items = ordered.map(({ definition: def, definitionSha256, published, download }): RSSFeedItem => {
    const definitionUrl = new URL(definitionPath(def.name, def.version), channelUrl).href;
    return {
      title: `${def.label} ${def.version}`,
      link: new URL(versionPath(def.name, def.version), channelUrl).href,
      pubDate: published,
      description: itemDescription(def),
      categories: def.provides,
      // RSS asks for the download's length in bytes; 0 when the image lives elsewhere and the build never saw it.
      enclosure: { url: new URL(def.image.url, channelUrl).href, length: download.bytes ?? 0, type: IMAGE_MEDIA_TYPES[download.format] },
      customData: stormElements(def, download.sha256, definitionUrl, definitionSha256, slots),
    };
  });
  return { items, fill: (xml) => slots.fill(xml) };
}
