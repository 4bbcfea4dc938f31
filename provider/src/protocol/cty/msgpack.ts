// cty values <-> msgpack, as in Terraform's `DynamicValue.msgpack`. The bytes are decoded to
// plain JS by @msgpack/msgpack, then checked and shaped against the type in one walk.

import { Decoder, Encoder, ExtData, ExtensionCodec } from '@msgpack/msgpack';
import { defineOwn, describeType, listAttributeNames, typeFromJsonBytes, typeJsonBytes } from './types.ts';
import type { CtyType } from './types.ts';
import { CtyPathError, TypedValue, UNKNOWN, Unknown, describeValue, impliedType, isCtyObject, ownValue, within } from './values.ts';
import type { CtyObject, CtyValue, PathStep } from './values.ts';

// cty gives every extension type the meaning "unknown" (0 plain, 12 refined with a payload we
// do not need); -1 must be overridden or the library turns it into a Date.
const decodeCodec = new ExtensionCodec();
for (let type = -128; type <= 127; type++) {
  decodeCodec.register({ type, encode: () => null, decode: () => UNKNOWN });
}
const decoder = new Decoder({ extensionCodec: decodeCodec });
const encoder = new Encoder();

// cty writes unknown as fixext1 type 0 with one zero byte (`d4 00 00`), not as an empty ext.
const UNKNOWN_WIRE = new ExtData(0, new Uint8Array(1));

/** Decodes a `DynamicValue.msgpack` payload. Throws {@link CtyPathError} if it does not fit the type. */
export function decodeMsgpack(bytes: Uint8Array, type: CtyType): CtyValue {
  let raw: unknown;
  try {
    raw = decoder.decode(bytes);
  } catch (error) {
    throw new Error(`invalid msgpack value: ${(error as Error).message}`, { cause: error });
  }
  return fromWire(raw, type);
}

/** Encodes a value for `DynamicValue.msgpack`. Throws {@link CtyPathError} if it does not fit the type. */
export function encodeMsgpack(value: CtyValue, type: CtyType): Uint8Array {
  return encoder.encode(toWire(value, type));
}

// Rewrites the decoder's fresh arrays and objects in place: nobody else holds them, and a plan
// decodes thousands of values.
function fromWire(raw: unknown, type: CtyType): CtyValue {
  if (raw === null || raw === undefined) return null;
  if (raw === UNKNOWN) return UNKNOWN;
  switch (type.kind) {
    case 'string':
      if (typeof raw === 'string') return raw;
      break;
    case 'number':
      if (typeof raw === 'number') return raw;
      // cty sends numbers that fit neither int64 nor float64 exactly as decimal text.
      if (typeof raw === 'string') return parseNumber(raw);
      break;
    case 'bool':
      if (typeof raw === 'boolean') return raw;
      break;
    case 'list':
    case 'set':
      if (Array.isArray(raw)) {
        for (let i = 0; i < raw.length; i++) {
          raw[i] = within({ index: i }, () => fromWire(raw[i], type.element));
        }
        return raw as CtyValue[];
      }
      break;
    case 'tuple':
      if (Array.isArray(raw)) {
        if (raw.length !== type.elements.length) {
          throw new CtyPathError(`expected a tuple of ${type.elements.length} elements, got ${raw.length}`);
        }
        for (let i = 0; i < raw.length; i++) {
          raw[i] = within({ index: i }, () => fromWire(raw[i], type.elements[i]!));
        }
        return raw as CtyValue[];
      }
      break;
    case 'map':
      if (isWireMap(raw)) {
        for (const key of Object.keys(raw)) {
          raw[key] = within({ key }, () => fromWire(raw[key], type.element));
        }
        return raw as CtyObject;
      }
      break;
    case 'object':
      if (isWireMap(raw)) {
        for (const key of Object.keys(raw)) {
          if (!Object.hasOwn(type.attributes, key)) throw new CtyPathError(`unexpected attribute ${JSON.stringify(key)}`);
        }
        for (const name of Object.keys(type.attributes)) {
          const attributeType = type.attributes[name]!;
          raw[name] = within({ attribute: name }, () => fromWire(Object.hasOwn(raw, name) ? raw[name] : null, attributeType));
        }
        return raw as CtyObject;
      }
      break;
    case 'dynamic':
      return dynamicFromWire(raw);
  }
  throw new CtyPathError(`expected ${describeType(type)}, got ${describeValue(raw)}`);
}

// A known dynamic value travels as [type JSON as bin, value]; cty reads the first element with
// DecodeBytes, which also accepts str, so we do too.
function dynamicFromWire(raw: unknown): CtyValue {
  if (!Array.isArray(raw) || raw.length !== 2 || !(raw[0] instanceof Uint8Array || typeof raw[0] === 'string')) {
    throw new CtyPathError(`expected a dynamic value as [type, value], got ${describeValue(raw)}`);
  }
  let type: CtyType;
  try {
    type = typeFromJsonBytes(raw[0]);
  } catch (error) {
    throw new CtyPathError((error as Error).message);
  }
  return new TypedValue(type, fromWire(raw[1], type));
}

function toWire(value: CtyValue | undefined, type: CtyType): unknown {
  if (value === null || value === undefined) return null;
  if (value instanceof Unknown) return UNKNOWN_WIRE;
  switch (type.kind) {
    case 'string':
      if (typeof value === 'string') return value;
      break;
    case 'number':
      // The encoder writes safe integers as ints and everything else as float64, as cty expects.
      if (typeof value === 'number' && !Number.isNaN(value)) return value;
      break;
    case 'bool':
      if (typeof value === 'boolean') return value;
      break;
    case 'list':
    case 'set':
      if (Array.isArray(value)) return value.map((element, i) => within({ index: i }, () => toWire(element, type.element)));
      break;
    case 'tuple':
      if (Array.isArray(value)) {
        if (value.length !== type.elements.length) {
          throw new CtyPathError(`expected a tuple of ${type.elements.length} elements, got ${value.length}`);
        }
        return value.map((element, i) => within({ index: i }, () => toWire(element, type.elements[i]!)));
      }
      break;
    case 'map':
      if (isCtyObject(value)) {
        const wire: Record<string, unknown> = {};
        for (const key of Object.keys(value)) {
          const element = within({ key }, () => toWire(value[key], type.element));
          defineOwn(wire, key, element);
        }
        return wire;
      }
      break;
    case 'object':
      if (isCtyObject(value)) {
        for (const key of Object.keys(value)) {
          if (!Object.hasOwn(type.attributes, key)) {
            throw new CtyPathError(`unexpected attribute ${JSON.stringify(key)}; the type has ${listAttributeNames(type.attributes)}`);
          }
        }
        // Every attribute, nulls included: Terraform rejects an object with fewer keys than its type.
        const wire: Record<string, unknown> = {};
        for (const name of Object.keys(type.attributes)) {
          const attributeType = type.attributes[name]!;
          const attribute = within({ attribute: name }, () => toWire(ownValue(value, name), attributeType));
          defineOwn(wire, name, attribute);
        }
        return wire;
      }
      break;
    case 'dynamic': {
      const typed = value instanceof TypedValue ? value : new TypedValue(impliedType(value), value);
      return [typeJsonBytes(typed.type), toWire(typed.value, typed.type)];
    }
  }
  throw new CtyPathError(`expected ${describeType(type)}, got ${describeValue(value)}`);
}

function parseNumber(text: string): number {
  const number = Number(text);
  if (text.trim() === '' || Number.isNaN(number)) throw new CtyPathError(`expected a number, got string ${JSON.stringify(text)}`);
  return number;
}

function isWireMap(raw: unknown): raw is Record<string, unknown> {
  return typeof raw === 'object' && raw !== null && !Array.isArray(raw) && !(raw instanceof Uint8Array) && raw !== UNKNOWN;
}
