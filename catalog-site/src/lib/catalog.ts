// The catalog's view of the channel: appliances grouped by name, versions newest first.
import type { PublishedAppliance } from './schema.ts';
import { compareVersions } from '../../../provider/src/channel/versions.ts';

export interface ApplianceFamily {
  name: string;
  /** Newest first. */
  versions: PublishedAppliance[];
  latest: PublishedAppliance;
}

export function families(appliances: readonly PublishedAppliance[]): ApplianceFamily[] {
  const byName = new Map<string, PublishedAppliance[]>();
  for (const a of appliances) byName.set(a.definition.name, [...(byName.get(a.definition.name) ?? []), a]);
  return [...byName.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, list]) => {
      const versions = list.sort((a, b) => compareVersions(b.definition.version, a.definition.version));
      return { name, versions, latest: versions[0]! };
    });
}

export const formatMib = (mib: number) => (mib >= 1024 && mib % 1024 === 0 ? `${mib / 1024} GiB` : `${mib} MiB`);
