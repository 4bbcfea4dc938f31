// Resolves an appliance and its dependencies against a channel's listing, in install order
// (dependencies first). Pure: a function of the listing.
import { newestSatisfying } from './versions.ts';

export interface ListedAppliance {
  name: string;
  version: string;
  /** `name` or `name:version` (exact), as in the definition. */
  dependencies: string[];
}

export class ResolutionError extends Error {}

export function resolve<T extends ListedAppliance>(listing: readonly T[], name: string, constraint: string | null): T[] {
  const byName = new Map<string, T[]>();
  for (const a of listing) byName.set(a.name, [...(byName.get(a.name) ?? []), a]);
  const order: T[] = [];
  const done = new Set<string>();

  const pick = (wanted: string, versionConstraint: string | null, neededBy: string | null): T => {
    const candidates = byName.get(wanted);
    const by = neededBy ? `${neededBy} needs ${wanted}${versionConstraint ? ` ${versionConstraint}` : ''}, but ` : '';
    if (!candidates) throw new ResolutionError(`${by}the channel lists no appliance named "${wanted}".`);
    const version = newestSatisfying(candidates.map((c) => c.version), versionConstraint);
    if (!version) {
      throw new ResolutionError(`${by || `no version of "${wanted}" satisfies "${versionConstraint}": `}the channel has ${wanted} ${candidates.map((c) => c.version).join(', ')}.`);
    }
    return candidates.find((c) => c.version === version)!;
  };

  const visit = (a: T, path: string[]): void => {
    const key = `${a.name}:${a.version}`;
    if (done.has(key)) return;
    if (path.includes(a.name)) throw new ResolutionError(`dependency cycle: ${[...path, a.name].join(' → ')}.`);
    for (const dep of a.dependencies) {
      const [depName, depVersion] = dep.split(':') as [string, string | undefined];
      visit(pick(depName, depVersion ? `= ${depVersion}` : null, `${a.name} ${a.version}`), [...path, a.name]);
    }
    done.add(key);
    order.push(a);
  };

  visit(pick(name, constraint, null), []);
  return order;
}
