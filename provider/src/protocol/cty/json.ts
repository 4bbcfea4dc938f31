// cty values <-> JSON, as in stored state (`UpgradeResourceState.raw_state.json`). Stored state
// may come from an older schema, so decoding is lenient where cty's own JSON decoder converts
// (numbers and bools written as strings, and the reverse) and drops attributes the type no
// longer has instead of failing.

import { defineOwn, describeType, typeFromJson, typeToJson } from './types.ts';
import type { CtyType } from './types.ts';
import { CtyPathError, TypedValue, Unknown, describeValue, formatPath, impliedType, isCtyObject, ownValue, within } from './values.ts';
import type { CtyObject, CtyValue, PathStep } from './values.ts';

export interface JsonDecodeResult {
  value: CtyValue;
  /** Attributes present in the JSON but not in the type, as `disks[0].old_name`: worth a warning. */
  droppedPaths: string[];
}

const utf8Decoder = new TextDecoder();

/** Decodes stored state. Throws {@link CtyPathError} if it does not fit the type. */
export function decodeJson(text: string | Uint8Array, type: CtyType): JsonDecodeResult {
  const source = typeof text === 'string' ? text : utf8Decoder.decode(text);
  let raw: unknown;
  try {
    raw = JSON.parse(source);
  } catch (error) {
    throw new Error(`stored state is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  const dropped: PathStep[][] = [];
  const value = fromJson(raw, type, [], dropped);
  return { value, droppedPaths: dropped.map(formatPath) };
}

/** Encodes a wholly known value as JSON text. Throws {@link CtyPathError} on unknowns or a type mismatch. */
export function encodeJson(value: CtyValue, type: CtyType): string {
  return JSON.stringify(toJson(value, type));
}

// `path` is the live path (pushed and popped) so dropped attributes can be reported by where
// they were; errors still get their path from `within` while unwinding.
function fromJson(raw: unknown, type: CtyType, path: PathStep[], dropped: PathStep[][]): CtyValue {
  if (raw === null) return null;
  switch (type.kind) {
    case 'string':
      if (typeof raw === 'string') return raw;
      if (typeof raw === 'number' || typeof raw === 'boolean') return String(raw);
      break;
    case 'number':
      if (typeof raw === 'number') return raw;
      if (typeof raw === 'string') {
        const number = Number(raw);
        if (raw.trim() !== '' && !Number.isNaN(number)) return number;
      }
      break;
    case 'bool':
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true' || raw === 'false') return raw === 'true';
      break;
    case 'list':
    case 'set':
      if (Array.isArray(raw)) return raw.map((element: unknown, i) => step({ index: i }, path, () => fromJson(element, type.element, path, dropped)));
      break;
    case 'tuple':
      if (Array.isArray(raw)) {
        if (raw.length !== type.elements.length) {
          throw new CtyPathError(`expected a tuple of ${type.elements.length} elements, got ${raw.length}`);
        }
        return raw.map((element: unknown, i) => step({ index: i }, path, () => fromJson(element, type.elements[i]!, path, dropped)));
      }
      break;
    case 'map':
      if (isJsonObject(raw)) {
        const value: CtyObject = {};
        for (const key of Object.keys(raw)) {
          const element = step({ key }, path, () => fromJson(raw[key], type.element, path, dropped));
          defineOwn(value, key, element);
        }
        return value;
      }
      break;
    case 'object':
      if (isJsonObject(raw)) {
        for (const key of Object.keys(raw)) {
          if (!Object.hasOwn(type.attributes, key)) dropped.push([...path, { attribute: key }]);
        }
        const value: CtyObject = {};
        for (const name of Object.keys(type.attributes)) {
          const attributeType = type.attributes[name]!;
          const attributeRaw = Object.hasOwn(raw, name) ? raw[name] : null;
          const attribute = step({ attribute: name }, path, () => fromJson(attributeRaw, attributeType, path, dropped));
          defineOwn(value, name, attribute);
        }
        return value;
      }
      break;
    case 'dynamic':
      return dynamicFromJson(raw, path, dropped);
  }
  throw new CtyPathError(`expected ${describeType(type)}, got ${describeValue(raw)}`);
}

// cty writes a dynamic value as {"value": ..., "type": ...}; anything else is taken at face
// value with the type JSON implies.
function dynamicFromJson(raw: unknown, path: PathStep[], dropped: PathStep[][]): CtyValue {
  if (isJsonObject(raw) && Object.keys(raw).length === 2 && Object.hasOwn(raw, 'value') && Object.hasOwn(raw, 'type')) {
    let type: CtyType;
    try {
      type = typeFromJson(raw['type']);
    } catch (error) {
      throw new CtyPathError((error as Error).message);
    }
    return new TypedValue(type, fromJson(raw['value'], type, path, dropped));
  }
  const plain = raw as CtyValue;
  return new TypedValue(impliedType(plain), plain);
}

function toJson(value: CtyValue | undefined, type: CtyType): unknown {
  if (value === null || value === undefined) return null;
  if (value instanceof Unknown) throw new CtyPathError('an unknown value cannot be written as JSON (only known values can be stored)');
  switch (type.kind) {
    case 'string':
      if (typeof value === 'string') return value;
      break;
    case 'number':
      if (typeof value === 'number') {
        if (!Number.isFinite(value)) throw new CtyPathError(`${value} cannot be written as JSON`);
        return value;
      }
      break;
    case 'bool':
      if (typeof value === 'boolean') return value;
      break;
    case 'list':
    case 'set':
      if (Array.isArray(value)) return value.map((element, i) => within({ index: i }, () => toJson(element, type.element)));
      break;
    case 'tuple':
      if (Array.isArray(value)) {
        if (value.length !== type.elements.length) {
          throw new CtyPathError(`expected a tuple of ${type.elements.length} elements, got ${value.length}`);
        }
        return value.map((element, i) => within({ index: i }, () => toJson(element, type.elements[i]!)));
      }
      break;
    case 'map':
      if (isCtyObject(value)) {
        const json: Record<string, unknown> = {};
        for (const key of Object.keys(value)) {
          const element = within({ key }, () => toJson(value[key], type.element));
          defineOwn(json, key, element);
        }
        return json;
      }
      break;
    case 'object':
      if (isCtyObject(value)) {
        for (const key of Object.keys(value)) {
          if (!Object.hasOwn(type.attributes, key)) throw new CtyPathError(`unexpected attribute ${JSON.stringify(key)}`);
        }
        const json: Record<string, unknown> = {};
        for (const name of Object.keys(type.attributes)) {
          const attributeType = type.attributes[name]!;
          const attribute = within({ attribute: name }, () => toJson(ownValue(value, name), attributeType));
          defineOwn(json, name, attribute);
        }
        return json;
      }
      break;
    case 'dynamic': {
      const typed = value instanceof TypedValue ? value : new TypedValue(impliedType(value), value);
      return { value: toJson(typed.value, typed.type), type: typeToJson(typed.type) };
    }
  }
  throw new CtyPathError(`expected ${describeType(type)}, got ${describeValue(value)}`);
}

function step<T>(at: PathStep, path: PathStep[], run: () => T): T {
  path.push(at);
  try {
    return within(at, run);
  } finally {
    path.pop();
  }
}

function isJsonObject(raw: unknown): raw is Record<string, unknown> {
  return typeof raw === 'object' && raw !== null && !Array.isArray(raw);
}
