// A plan's resource changes as the summary reads them: one record per resource instance with
// its action in storm's words, its values before and after (unknown and sensitive marked), and
// what its configuration references, so a value known only after apply can still be traced to
// the resource it comes from.
import { isObject, type ConfigModuleJson, type ConfigResourceJson, type ExpressionJson, type Json, type JsonObject, type PlanJson, type ResourceChangeJson } from './plan-json.ts';

export type Action = 'create' | 'update' | 'replace' | 'destroy' | 'forget' | 'none';

export interface Change {
  address: string;
  /** `module.a[0]`, or '' at the root. */
  module: string;
  type: string;
  name: string;
  index: string | number | null;
  action: Action;
  /** Replacements: whether the new one is made before the old one goes (create_before_destroy). */
  createFirst: boolean;
  reason: string | null;
  replacePaths: (string | number)[][];
  before: JsonObject | null;
  after: JsonObject | null;
  afterUnknown: Json;
  beforeSensitive: Json;
  afterSensitive: Json;
  config: ConfigResourceJson | null;
}

export const isStorm = (c: Change): boolean => c.type.startsWith('storm_');

function actionOf(actions: readonly string[]): { action: Action; createFirst: boolean } {
  const a = actions.join(',');
  switch (a) {
    case 'create':
      return { action: 'create', createFirst: false };
    case 'update':
      return { action: 'update', createFirst: false };
    case 'delete':
      return { action: 'destroy', createFirst: false };
    case 'delete,create':
      return { action: 'replace', createFirst: false };
    case 'create,delete':
      return { action: 'replace', createFirst: true };
    case 'forget':
      return { action: 'forget', createFirst: false };
    default:
      // no-op, read (data sources), and anything a later Terraform adds: nothing to report.
      return { action: 'none', createFirst: false };
  }
}

/** `module.a[0].module.b["x"]` → `module.a.module.b`: how the configuration names a module. */
const configModule = (module: string): string => module.replace(/\[[^\]]*\]/g, '');

function indexConfig(module: ConfigModuleJson | undefined, prefix: string, into: Map<string, ConfigResourceJson>): void {
  for (const r of module?.resources ?? []) into.set(prefix + r.address, r);
  for (const [name, call] of Object.entries(module?.module_calls ?? {})) indexConfig(call.module, `${prefix}module.${name}.`, into);
}

function toChange(rc: ResourceChangeJson, config: Map<string, ConfigResourceJson>): Change {
  const module = rc.module_address ?? '';
  const { action, createFirst } = actionOf(rc.change.actions);
  const base = `${rc.type}.${rc.name}`;
  return {
    address: rc.address,
    module,
    type: rc.type,
    name: rc.name,
    index: rc.index ?? null,
    action,
    createFirst,
    reason: rc.action_reason ?? null,
    replacePaths: rc.change.replace_paths ?? [],
    before: isObject(rc.change.before) ? rc.change.before : null,
    after: isObject(rc.change.after) ? rc.change.after : null,
    afterUnknown: rc.change.after_unknown ?? null,
    beforeSensitive: rc.change.before_sensitive ?? null,
    afterSensitive: rc.change.after_sensitive ?? null,
    config: config.get(module ? `${configModule(module)}.${base}` : base) ?? null,
  };
}

export interface PlanChanges {
  /** Managed resources, by address. */
  all: readonly Change[];
  byAddress: ReadonlyMap<string, Change>;
  /** Changes the refresh found (made outside Terraform), by address. */
  drift: ReadonlyMap<string, Change>;
}

export function planChanges(plan: PlanJson): PlanChanges {
  const config = new Map<string, ConfigResourceJson>();
  indexConfig(plan.configuration?.root_module, '', config);
  const managed = (list: ResourceChangeJson[] | undefined) => (Array.isArray(list) ? list : []).filter((rc) => rc.mode === 'managed').map((rc) => toChange(rc, config));
  const all = managed(plan.resource_changes).sort((a, b) => compareAddresses(a.address, b.address));
  return {
    all,
    byAddress: new Map(all.map((c) => [c.address, c])),
    drift: new Map(managed(plan.resource_drift).map((c) => [c.address, c])),
  };
}

/** Addresses in a stable order that keeps `x[2]` before `x[10]`. */
export function compareAddresses(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/** The value at `path`, or undefined when the path leads nowhere. */
export function at(value: Json | undefined, path: readonly (string | number)[]): Json | undefined {
  let v: Json | undefined = value;
  for (const step of path) {
    if (Array.isArray(v) && typeof step === 'number') v = v[step];
    else if (isObject(v) && typeof step === 'string') v = v[step];
    else return undefined;
  }
  return v;
}

/**
 * `after_unknown` and the `*_sensitive` trees mirror the value with `true` where a value is
 * unknown (sensitive); a `true` higher up covers everything below it.
 */
export function marked(tree: Json | undefined, path: readonly (string | number)[]): boolean {
  let v: Json | undefined = tree;
  for (const step of path) {
    if (v === true) return true;
    v = at(v, [step]);
  }
  return v === true;
}

/** Whether anything at or below `path` is marked (an unknown element of a list, a field of a block). */
export function markedWithin(tree: Json | undefined, path: readonly (string | number)[]): boolean {
  if (marked(tree, path)) return true;
  const below = (v: Json | undefined): boolean => v === true || (Array.isArray(v) ? v.some(below) : isObject(v ?? null) ? Object.values(v as JsonObject).some(below) : false);
  return below(at(tree, path));
}

/** What a change's planned value of a top-level attribute is: known, unknown until apply, or absent. */
export type Planned<T> = { known: true; value: T } | { known: false };

export function afterString(c: Change, attribute: string): Planned<string | null> {
  if (marked(c.afterUnknown, [attribute])) return { known: false };
  const v = c.after?.[attribute];
  return { known: true, value: typeof v === 'string' ? v : null };
}

export function afterNumber(c: Change, attribute: string): Planned<number | null> {
  if (marked(c.afterUnknown, [attribute])) return { known: false };
  const v = c.after?.[attribute];
  return { known: true, value: typeof v === 'number' ? v : null };
}

export const beforeString = (c: Change, attribute: string): string | null => {
  const v = c.before?.[attribute];
  return typeof v === 'string' ? v : null;
};

export const beforeNumber = (c: Change, attribute: string): number | null => {
  const v = c.before?.[attribute];
  return typeof v === 'number' ? v : null;
};

/** The values the resource has at the end of the apply (before, for one that stays as it is or goes). */
export const finalValues = (c: Change): JsonObject | null => (c.action === 'destroy' || c.action === 'forget' ? null : (c.after ?? c.before));

// ---------------------------------------------------------------------------------------------
// References: where a value known only after apply comes from

const NOT_RESOURCES = new Set(['var', 'local', 'module', 'data', 'each', 'count', 'path', 'self', 'terraform']);

interface ResourceRef {
  /** `TYPE.NAME`. */
  base: string;
  /** The instance key given in the reference (`x["a"]`, `x[0]`), if any. */
  key: string | number | null;
}

function parseReference(ref: string): ResourceRef | null {
  const m = /^([A-Za-z_][\w-]*)\.([A-Za-z_][\w-]*)(?:\[("(?:[^"\\]|\\.)*"|\d+)\])?/.exec(ref);
  if (!m || NOT_RESOURCES.has(m[1]!)) return null;
  const raw = m[3];
  const key = raw === undefined ? null : raw.startsWith('"') ? (JSON.parse(raw) as string) : Number(raw);
  return { base: `${m[1]}.${m[2]}`, key };
}

function expressionOf(config: ConfigResourceJson | null, attribute: string): ExpressionJson | null {
  const e = config?.expressions?.[attribute];
  return isObject(e) ? (e as ExpressionJson) : null;
}

/**
 * The resource instances that the configuration of `c`'s `attribute` refers to, in its own
 * module: `x.y.id` is every instance of x.y (the one with `c`'s own key when x.y has it: the
 * usual `for_each = x.y` pairing), and `each.value` is the instance of the for_each collection
 * with `c`'s key. Locals and variables are not in the plan, so what passes through them is lost.
 */
export function referencedChanges(changes: PlanChanges, c: Change, attribute: string): Change[] {
  const refs = expressionOf(c.config, attribute)?.references ?? [];
  const found = new Map<string, Change>();
  const instancesOf = (ref: ResourceRef, byKey: string | number | null): Change[] => {
    const all = changes.all.filter((x) => x.module === c.module && `${x.type}.${x.name}` === ref.base);
    const key = ref.key ?? byKey;
    if (key !== null) {
      const same = all.filter((x) => x.index === key);
      if (same.length || ref.key !== null) return same;
    }
    return all;
  };
  for (const r of refs) {
    if (r === 'each.value' || r.startsWith('each.value.') || r.startsWith('each.value[')) {
      for (const fr of c.config?.for_each_expression?.references ?? []) {
        const ref = parseReference(fr);
        if (ref) for (const x of instancesOf(ref, c.index)) found.set(x.address, x);
      }
      continue;
    }
    const ref = parseReference(r);
    if (ref) for (const x of instancesOf(ref, c.index)) found.set(x.address, x);
  }
  return [...found.values()].sort((a, b) => compareAddresses(a.address, b.address));
}
