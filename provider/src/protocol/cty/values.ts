// cty values as plain JS data. The type is never stored in a value (except under `dynamic`):
// callers pass it alongside, as Terraform does, so lists and sets are both arrays and maps and
// objects are both plain objects.

import { BOOL, DYNAMIC, NUMBER, STRING, defineOwn, objectOf, tupleOf, typeEqual } from './types.ts';
import type { CtyType } from './types.ts';

/** A value not known until apply. There is one instance, {@link UNKNOWN}. */
export class Unknown {
  static readonly instance: Unknown = new Unknown();
  private constructor() {
    Object.freeze(this);
  }
  toString(): string {
    return '(known after apply)';
  }
}

export const UNKNOWN: Unknown = Unknown.instance;

/**
 * A known value of an attribute typed `dynamic`: on the wire it carries its own type, which
 * the receiver needs to decode it, so the decoded value keeps it too.
 */
export class TypedValue {
  constructor(
    readonly type: CtyType,
    readonly value: CtyValue,
  ) {}
}

export type CtyValue = null | string | number | boolean | Unknown | TypedValue | CtyValue[] | CtyObject;

/** A cty object or map. */
export interface CtyObject {
  [key: string]: CtyValue;
}

export function isUnknown(value: CtyValue | undefined): value is Unknown {
  return value instanceof Unknown;
}

/** True for a plain object standing for a cty object or map (not an array, unknown or typed value). */
export function isCtyObject(value: CtyValue | undefined): value is CtyObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Unknown) && !(value instanceof TypedValue);
}

/** True when no unknown appears anywhere inside the value. */
export function isWhollyKnown(value: CtyValue | undefined): boolean {
  if (value instanceof Unknown) return false;
  if (value instanceof TypedValue) return isWhollyKnown(value.value);
  if (Array.isArray(value)) return value.every(isWhollyKnown);
  if (isCtyObject(value)) {
    for (const key in value) {
      if (Object.hasOwn(value, key) && !isWhollyKnown(value[key])) return false;
    }
  }
  return true;
}

/**
 * Deep structural equality. With a type, sets compare regardless of order and a missing object
 * attribute equals null; without one, arrays compare in order and objects need the same keys.
 * Two unknowns are equal here (same sentinel), unlike cty's `Equals`, which calls that unknown:
 * callers use this to ask "did the value change", not "are these equal after apply".
 */
export function ctyEqual(a: CtyValue | undefined, b: CtyValue | undefined, type?: CtyType): boolean {
  a ??= null;
  b ??= null;
  if (a === b) return true;
  if (a === null || b === null || a instanceof Unknown || b instanceof Unknown) return false;
  if (a instanceof TypedValue || b instanceof TypedValue) {
    return a instanceof TypedValue && b instanceof TypedValue && typeEqual(a.type, b.type) && ctyEqual(a.value, b.value, a.type);
  }
  if (type === undefined || type.kind === 'dynamic') return untypedEqual(a, b);
  switch (type.kind) {
    case 'string':
    case 'number':
    case 'bool':
      return false; // not identical, and primitives have nothing further to compare
    case 'list':
      return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => ctyEqual(x, b[i], type.element));
    case 'tuple':
      return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => ctyEqual(x, b[i], type.elements[i]));
    case 'set':
      return Array.isArray(a) && Array.isArray(b) && setEqual(a, b, type.element);
    case 'map':
      return isCtyObject(a) && isCtyObject(b) && mapEqual(a, b, type.element);
    case 'object': {
      if (!isCtyObject(a) || !isCtyObject(b)) return false;
      for (const name of Object.keys(type.attributes)) {
        if (!ctyEqual(ownValue(a, name), ownValue(b, name), type.attributes[name])) return false;
      }
      return true;
    }
  }
}

/**
 * The type a value would have on its own, as cty infers for JSON: arrays are tuples and plain
 * objects are objects. Null and unknown give `dynamic`.
 */
export function impliedType(value: CtyValue | undefined): CtyType {
  if (value === null || value === undefined || value instanceof Unknown) return DYNAMIC;
  if (value instanceof TypedValue) return value.type;
  switch (typeof value) {
    case 'string':
      return STRING;
    case 'number':
      return NUMBER;
    case 'boolean':
      return BOOL;
  }
  if (Array.isArray(value)) return tupleOf(value.map(impliedType));
  const attributes: Record<string, CtyType> = {};
  for (const key of Object.keys(value)) {
    defineOwn(attributes, key, impliedType(value[key]));
  }
  return objectOf(attributes);
}

/** Internal to the codec: reads an own property only, so `constructor` or `toString` are never found on the prototype. */
export function ownValue(object: CtyObject, key: string): CtyValue | undefined {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

function untypedEqual(a: CtyValue, b: CtyValue): boolean {
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => ctyEqual(x, b[i]));
  }
  if (isCtyObject(a)) {
    return isCtyObject(b) && mapEqual(a, b, undefined);
  }
  return false;
}

function mapEqual(a: CtyObject, b: CtyObject, element: CtyType | undefined): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((key) => Object.hasOwn(b, key) && ctyEqual(a[key], b[key], element));
}

// Quadratic, which is fine for the sizes of sets in a resource; each element of `b` is matched
// at most once so [x, x] and [x, y] differ.
function setEqual(a: CtyValue[], b: CtyValue[], element: CtyType): boolean {
  if (a.length !== b.length) return false;
  const matched = new Array<boolean>(b.length).fill(false);
  outer: for (const x of a) {
    for (let i = 0; i < b.length; i++) {
      if (!matched[i] && ctyEqual(x, b[i], element)) {
        matched[i] = true;
        continue outer;
      }
    }
    return false;
  }
  return true;
}

/** One step into a value: an object attribute, a map key, or a list/set/tuple index. */
export type PathStep = { readonly attribute: string } | { readonly key: string } | { readonly index: number };

/** `disks[0].size`, `labels["env"]`: the form Terraform users read in messages. */
export function formatPath(path: readonly PathStep[]): string {
  let text = '';
  for (const step of path) {
    if ('attribute' in step) text += text === '' ? step.attribute : `.${step.attribute}`;
    else if ('key' in step) text += `[${JSON.stringify(step.key)}]`;
    else text += `[${step.index}]`;
  }
  return text;
}

/**
 * A value that does not fit its type. The path is kept structured so the plugin layer can turn
 * it into a diagnostic's attribute path.
 */
export class CtyPathError extends Error {
  readonly path: PathStep[];

  constructor(
    readonly reason: string,
    path: PathStep[] = [],
  ) {
    super(reason);
    this.name = 'CtyPathError';
    this.path = path;
    this.message = this.describe();
  }

  /** Called while unwinding, so paths cost nothing unless something fails. */
  prepend(step: PathStep): this {
    this.path.unshift(step);
    this.message = this.describe();
    return this;
  }

  private describe(): string {
    return this.path.length === 0 ? this.reason : `${formatPath(this.path)}: ${this.reason}`;
  }
}

/** Internal to the codec: runs one step deeper, adding that step to the path of any {@link CtyPathError}. */
export function within<T>(step: PathStep, run: () => T): T {
  try {
    return run();
  } catch (error) {
    throw error instanceof CtyPathError ? error.prepend(step) : error;
  }
}

/** Describes a JS value for error messages without dumping it whole. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (value instanceof Unknown) return 'an unknown value';
  if (value instanceof TypedValue) return 'a dynamic value';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return 'binary data';
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${JSON.stringify(value)?.slice(0, 40)}`;
}
