// cty types as plain data, and their wire form: the JSON that Terraform expects in a schema
// attribute's `type` field and inside msgpack-encoded dynamic values.

export type PrimitiveKind = 'string' | 'number' | 'bool';
export type CollectionKind = 'list' | 'set' | 'map';

export type CtyType =
  | { readonly kind: PrimitiveKind }
  | { readonly kind: 'dynamic' }
  | { readonly kind: CollectionKind; readonly element: CtyType }
  | {
      readonly kind: 'object';
      readonly attributes: Readonly<Record<string, CtyType>>;
      /** Attribute names marked optional in a type constraint (the JSON form's 3rd element). */
      readonly optional?: readonly string[];
    }
  | { readonly kind: 'tuple'; readonly elements: readonly CtyType[] };

export type ObjectType = Extract<CtyType, { kind: 'object' }>;
export type TupleType = Extract<CtyType, { kind: 'tuple' }>;
export type CollectionType = Extract<CtyType, { kind: CollectionKind }>;

/** The JSON form of a type, as produced by cty's `Type.MarshalJSON`. */
export type CtyTypeJson =
  | PrimitiveKind
  | 'dynamic'
  | [CollectionKind, CtyTypeJson]
  | ['object', Record<string, CtyTypeJson>]
  | ['object', Record<string, CtyTypeJson>, string[]]
  | ['tuple', CtyTypeJson[]];

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

export const STRING: CtyType = Object.freeze({ kind: 'string' });
export const NUMBER: CtyType = Object.freeze({ kind: 'number' });
export const BOOL: CtyType = Object.freeze({ kind: 'bool' });
export const DYNAMIC: CtyType = Object.freeze({ kind: 'dynamic' });

export function listOf(element: CtyType): CtyType {
  return { kind: 'list', element };
}

export function setOf(element: CtyType): CtyType {
  return { kind: 'set', element };
}

export function mapOf(element: CtyType): CtyType {
  return { kind: 'map', element };
}

export function objectOf(attributes: Record<string, CtyType>, optional?: readonly string[]): CtyType {
  return optional && optional.length > 0 ? { kind: 'object', attributes, optional } : { kind: 'object', attributes };
}

export function tupleOf(elements: readonly CtyType[]): CtyType {
  return { kind: 'tuple', elements };
}

export function typeToJson(t: CtyType): CtyTypeJson {
  switch (t.kind) {
    case 'string':
    case 'number':
    case 'bool':
    case 'dynamic':
      return t.kind;
    case 'list':
    case 'set':
    case 'map':
      return [t.kind, typeToJson(t.element)];
    case 'object': {
      const attributes: Record<string, CtyTypeJson> = {};
      for (const [name, attributeType] of Object.entries(t.attributes)) {
        defineOwn(attributes, name, typeToJson(attributeType));
      }
      return t.optional && t.optional.length > 0 ? ['object', attributes, [...t.optional]] : ['object', attributes];
    }
    case 'tuple':
      return ['tuple', t.elements.map(typeToJson)];
  }
}

/** Parses an already JSON-decoded type. Throws an Error naming the offending part. */
export function typeFromJson(json: unknown): CtyType {
  if (typeof json === 'string') {
    switch (json) {
      case 'string':
        return STRING;
      case 'number':
        return NUMBER;
      case 'bool':
        return BOOL;
      case 'dynamic':
        return DYNAMIC;
    }
    throw new Error(`unknown cty type ${JSON.stringify(json)}: expected "string", "number", "bool" or "dynamic"`);
  }
  if (!Array.isArray(json) || json.length < 2 || typeof json[0] !== 'string') {
    throw new Error(`invalid cty type ${JSON.stringify(json)}: expected a primitive name or a [kind, ...] array`);
  }
  const [kind, arg, extra] = json as [string, unknown, unknown];
  switch (kind) {
    case 'list':
    case 'set':
    case 'map':
      expectLength(json, 2);
      return { kind, element: typeFromJson(arg) };
    case 'object': {
      expectLength(json, 3);
      if (!isJsonObject(arg)) {
        throw new Error(`invalid cty object type ${JSON.stringify(json)}: attributes must be a JSON object`);
      }
      const attributes: Record<string, CtyType> = {};
      for (const [name, attributeJson] of Object.entries(arg)) {
        defineOwn(attributes, name, typeFromJson(attributeJson));
      }
      return objectOf(attributes, parseOptionalNames(json, extra, attributes));
    }
    case 'tuple':
      expectLength(json, 2);
      if (!Array.isArray(arg)) {
        throw new Error(`invalid cty tuple type ${JSON.stringify(json)}: elements must be a JSON array`);
      }
      return tupleOf(arg.map(typeFromJson));
  }
  throw new Error(`unknown cty type kind ${JSON.stringify(kind)} in ${JSON.stringify(json)}`);
}

/** The bytes Terraform wants in `Schema.Attribute.type`: JSON text, so `"string"` keeps its quotes. */
export function typeJsonBytes(t: CtyType): Uint8Array {
  return utf8Encoder.encode(JSON.stringify(typeToJson(t)));
}

export function typeFromJsonBytes(bytes: Uint8Array | string): CtyType {
  const text = typeof bytes === 'string' ? bytes : utf8Decoder.decode(bytes);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`cty type is not valid JSON: ${JSON.stringify(text)}`, { cause: error });
  }
  return typeFromJson(json);
}

/** Structural equality; the optional-attribute markers are part of the type, as in cty. */
export function typeEqual(a: CtyType, b: CtyType): boolean {
  if (a === b) return true;
  switch (a.kind) {
    case 'string':
    case 'number':
    case 'bool':
    case 'dynamic':
      return a.kind === b.kind;
    case 'list':
    case 'set':
    case 'map':
      return a.kind === b.kind && typeEqual(a.element, (b as CollectionType).element);
    case 'object': {
      if (b.kind !== 'object') return false;
      const names = Object.keys(a.attributes);
      if (names.length !== Object.keys(b.attributes).length) return false;
      for (const name of names) {
        const other = Object.hasOwn(b.attributes, name) ? b.attributes[name] : undefined;
        if (other === undefined || !typeEqual(a.attributes[name]!, other)) return false;
      }
      const optionalA = new Set(a.optional ?? []);
      const optionalB = new Set(b.optional ?? []);
      return optionalA.size === optionalB.size && [...optionalA].every((name) => optionalB.has(name));
    }
    case 'tuple':
      return (
        b.kind === 'tuple' &&
        a.elements.length === b.elements.length &&
        a.elements.every((element, i) => typeEqual(element, b.elements[i]!))
      );
  }
}

/** Internal to the codec: for error messages. */
export function listAttributeNames(attributes: Readonly<Record<string, CtyType>>): string {
  const names = Object.keys(attributes);
  return names.length === 0 ? 'no attributes' : `attributes ${names.join(', ')}`;
}

/** `a string`, `a list of string`, ... for error messages. */
export function describeType(type: CtyType): string {
  switch (type.kind) {
    case 'string':
    case 'number':
    case 'bool':
      return `a ${type.kind}`;
    case 'dynamic':
      return 'a dynamic value';
    case 'list':
    case 'set':
    case 'map':
      return `a ${type.kind} of ${describeType(type.element).replace(/^an? /, '')}`;
    case 'object':
      return `an object with ${listAttributeNames(type.attributes)}`;
    case 'tuple':
      return `a tuple of ${type.elements.length} elements`;
  }
}

/** Internal to the codec. Sets a property even when the key is `__proto__`, which plain assignment would turn into a prototype change. */
export function defineOwn<T>(target: Record<string, T>, key: string, value: T): void {
  if (key === '__proto__') {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    target[key] = value;
  }
}

function expectLength(json: unknown[], max: number): void {
  if (json.length > max) {
    throw new Error(`invalid cty type ${JSON.stringify(json)}: too many elements`);
  }
}

function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseOptionalNames(json: unknown, extra: unknown, attributes: Record<string, CtyType>): string[] | undefined {
  if (extra === undefined) return undefined;
  if (!Array.isArray(extra) || !extra.every((name) => typeof name === 'string')) {
    throw new Error(`invalid cty object type ${JSON.stringify(json)}: optional attributes must be an array of names`);
  }
  for (const name of extra) {
    if (!Object.hasOwn(attributes, name)) {
      throw new Error(`invalid cty object type ${JSON.stringify(json)}: optional attribute ${JSON.stringify(name)} is not an attribute`);
    }
  }
  return extra;
}
