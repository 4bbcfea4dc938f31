// Resolves an appliance and its dependencies against a channel's listing, in install order
// (dependencies first). Pure: a function of the listing.
//
// A walk with its own stack, not recursion, so a chain of any length resolves (a channel of
// 10,000 appliances each needing the next is a listing, not a stack overflow); each appliance
// version is visited once and each choice of version made once, so the work is linear in the
// listing. A cycle is a path that comes back to the same appliance version: that one can never
// be installed, since each needs the other first. Two versions of one appliance in a chain
// (a 2 needs b, b needs a 1) are not a cycle; both are installed, as layers of different names.
import { newestSatisfying } from './versions.ts';

export interface ListedAppliance {
  name: string;
  version: string;
  /** `name` or `name:version` (exact), as in the definition. */
  dependencies: readonly string[];
}

export class ResolutionError extends Error {}

/** A cycle: the appliances on it, the first again at the end. */
export class DependencyCycleError extends ResolutionError {
  constructor(readonly cycle: readonly ListedAppliance[]) {
    const named = cycle.map((a) => `${a.name} ${a.version}`);
    // A cycle through thousands of appliances is still said in one line.
    const shown = named.length > 12 ? [...named.slice(0, 6), `… (${named.length - 11} more)`, ...named.slice(-5)] : named;
    super(`dependency cycle: ${shown.join(' → ')}; each needs the next installed first, so none can be; remove one of these dependencies.`);
  }
}

type Picked<T> = { ok: true; appliance: T } | { ok: false; why: string };

/** Choosing a version for a name and a constraint, each choice made once. */
class Picker<T extends ListedAppliance> {
  private readonly byName = new Map<string, T[]>();
  private readonly chosen = new Map<string, Picked<T>>();

  constructor(listing: readonly T[]) {
    for (const a of listing) {
      const list = this.byName.get(a.name);
      if (list) list.push(a);
      else this.byName.set(a.name, [a]);
    }
  }

  pick(wanted: string, constraint: string | null): Picked<T> {
    const key = `${wanted}\u0000${constraint ?? ''}`;
    let picked = this.chosen.get(key);
    if (picked === undefined) {
      picked = this.choose(wanted, constraint);
      this.chosen.set(key, picked);
    }
    return picked;
  }

  private choose(wanted: string, constraint: string | null): Picked<T> {
    const candidates = this.byName.get(wanted);
    if (!candidates) return { ok: false, why: `the channel lists no appliance named "${wanted}".` };
    const version = newestSatisfying(
      candidates.map((c) => c.version),
      constraint,
    );
    if (!version) return { ok: false, why: `the channel has ${wanted} ${candidates.map((c) => c.version).join(', ')}.` };
    return { ok: true, appliance: candidates.find((c) => c.version === version)! };
  }
}

/** `name[:version]` as the constraint a dependency puts on the listing. */
function dependencyConstraint(dep: string): { name: string; constraint: string | null } {
  const colon = dep.indexOf(':');
  return colon === -1 ? { name: dep, constraint: null } : { name: dep.slice(0, colon), constraint: `= ${dep.slice(colon + 1)}` };
}

interface Frame<T> {
  appliance: T;
  next: number;
}

/**
 * Depth-first from each root, dependencies before dependants, sharing what is done across roots.
 * `missing` says what to do with a dependency the listing cannot satisfy: throw, or skip it.
 */
function walk<T extends ListedAppliance>(picker: Picker<T>, roots: readonly T[], missing: 'throw' | 'skip'): T[] {
  const order: T[] = [];
  const state = new Map<T, 'open' | 'done'>();
  for (const root of roots) {
    if (state.has(root)) continue;
    const stack: Frame<T>[] = [{ appliance: root, next: 0 }];
    state.set(root, 'open');
    while (stack.length > 0) {
      const frame = stack[stack.length - 1]!;
      const { appliance } = frame;
      if (frame.next === appliance.dependencies.length) {
        stack.pop();
        state.set(appliance, 'done');
        order.push(appliance);
        continue;
      }
      const dep = dependencyConstraint(appliance.dependencies[frame.next++]!);
      const picked = picker.pick(dep.name, dep.constraint);
      if (!picked.ok) {
        if (missing === 'skip') continue;
        throw new ResolutionError(`${appliance.name} ${appliance.version} needs ${dep.name}${dep.constraint ? ` ${dep.constraint}` : ''}, but ${picked.why}`);
      }
      const next = picked.appliance;
      const seen = state.get(next);
      if (seen === 'done') continue;
      if (seen === 'open') {
        const from = stack.findIndex((f) => f.appliance === next);
        throw new DependencyCycleError([...stack.slice(from).map((f) => f.appliance), next]);
      }
      state.set(next, 'open');
      stack.push({ appliance: next, next: 0 });
    }
  }
  return order;
}

export function resolve<T extends ListedAppliance>(listing: readonly T[], name: string, constraint: string | null): T[] {
  const picker = new Picker(listing);
  const root = picker.pick(name, constraint);
  if (!root.ok) {
    if (constraint !== null && root.why.startsWith('the channel has')) throw new ResolutionError(`no version of "${name}" satisfies "${constraint}": ${root.why}`);
    throw new ResolutionError(root.why);
  }
  return walk(picker, [root.appliance], 'throw');
}

/**
 * The first dependency cycle among the listed appliances, or null when there is none. Dependencies
 * the listing cannot satisfy are skipped (not a cycle; whoever asks says what they think of them).
 */
export function findDependencyCycle<T extends ListedAppliance>(listing: readonly T[]): T[] | null {
  try {
    walk(new Picker(listing), listing, 'skip');
    return null;
  } catch (e) {
    if (e instanceof DependencyCycleError) return e.cycle as T[];
    throw e;
  }
}
