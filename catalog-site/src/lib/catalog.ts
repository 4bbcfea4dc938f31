// The catalog's view of the channel: appliances grouped by name, versions newest first, and
// what a card or a page says about them (sizes, dates, signatures). Pure: no Astro, no I/O.
import type { PublishedAppliance } from './schema.ts';
import { compareVersions } from '../../../provider/src/channel/versions.ts';

export interface ApplianceFamily<A extends PublishedAppliance = PublishedAppliance> {
  name: string;
  /** Newest first. */
  versions: A[];
  latest: A;
  /** The latest publication of any version: a fix to an older line updates the appliance too. */
  updated: Date;
}

/** A version as its page shows it: what was published, and the definition's text. */
export type CatalogVersion = PublishedAppliance & {
  /** appliance.xml as published, without a byte order mark (invisible, and not worth copying). */
  xml: string;
};

/** The collection's entries as pages show them (the loader keeps each definition's text as the entry's body). */
export const catalogVersions = (entries: readonly { data: PublishedAppliance; body?: string | undefined }[]): CatalogVersion[] =>
  entries.map((e) => ({ ...e.data, xml: (e.body ?? '').replace(/^\uFEFF/, '') }));

export function families<A extends PublishedAppliance>(appliances: readonly A[]): ApplianceFamily<A>[] {
  const byName = new Map<string, A[]>();
  for (const a of appliances) byName.set(a.definition.name, [...(byName.get(a.definition.name) ?? []), a]);
  return [...byName.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, list]) => {
      const versions = list.sort((a, b) => compareVersions(b.definition.version, a.definition.version));
      const updated = new Date(Math.max(...versions.map((v) => v.published.getTime())));
      return { name, versions, latest: versions[0]!, updated };
    });
}

export const formatMib = (mib: number) => (mib >= 1024 && mib % 1024 === 0 ? `${mib / 1024} GiB` : `${mib} MiB`);

/** Binary units, as the rest of the site (MiB of memory and disk); three significant digits at most. */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${bytes} ${bytes === 1 ? 'byte' : 'bytes'}`;
  const shown = value >= 100 ? Math.round(value).toString() : value >= 10 ? value.toFixed(1) : value.toFixed(2);
  return `${shown.includes('.') ? shown.replace(/\.?0+$/, '') : shown} ${units[unit]}`;
}

/** What a download weighs, in words: never a guess for an image the build did not see. */
export function downloadSize(download: PublishedAppliance['download']): string {
  return download.bytes === null ? 'size unknown' : formatBytes(download.bytes);
}

/** A publication date as the pages print it: the UTC day, which sorts and reads the same everywhere. */
export const formatDate = (d: Date) => d.toISOString().slice(0, 10);

/**
 * Whether storm can verify an appliance from this channel, as the pages say it.
 *   signed    the publisher gave a key, and every image storm checks a signature of (the
 *             appliance's and its base's: provider/src/resources/data-appliance.ts) has one
 *   partly    the publisher gave a key, but some of those images have no <sig>: storm refuses them
 *             unless insecure_skip_verify is set
 *   unsigned  the channel has no publisher key: nothing can be verified
 */
export type SignatureCue = { state: 'signed'; keyId: string } | { state: 'partly'; keyId: string; unsigned: string[] } | { state: 'unsigned' };

export function signatureCue(definition: PublishedAppliance['definition'], keyId: string | null): SignatureCue {
  if (keyId === null) return { state: 'unsigned' };
  const unsigned = [
    ...(definition.image.sig === null ? [definition.base ? 'appliance layer' : 'image'] : []),
    ...(definition.base && definition.base.sig === null ? [`base ${definition.base.name}`] : []),
  ];
  return unsigned.length ? { state: 'partly', keyId, unsigned } : { state: 'signed', keyId };
}
