// Typed models derived from the schema declaration: a resource declares its schema once (as a
// literal), and its TypeScript model follows from it — required and defaulted attributes are
// plain values, optional and computed ones may be null, single blocks are objects or null,
// list blocks arrays. Values are decoded into that model once, defaults applied once, here;
// resources never pick values out of an ObjectValue by hand.
import type { CtyValue } from '../protocol/cty/index.ts';
import { isCtyObject, isUnknown } from '../protocol/cty/index.ts';
import type { DataSourceDefinition, ObjectValue, ResourceDefinition } from '../contract.ts';
import type { AttributeSpec, BlockSpec, ResourceSchema, ValueType } from './model.ts';

/** The TypeScript value of a cty type. */
export type ValueOf<T extends ValueType> = T extends 'string'
  ? string
  : T extends 'number'
    ? number
    : T extends 'bool'
      ? boolean
      : T extends { readonly list: infer E extends ValueType }
        ? ValueOf<E>[]
        : T extends { readonly set: infer E extends ValueType }
          ? ValueOf<E>[]
          : T extends { readonly map: infer E extends ValueType }
            ? Record<string, ValueOf<E>>
            : T extends { readonly object: infer O extends Readonly<Record<string, ValueType>> }
              ? { [K in keyof O]: ValueOf<O[K]> | null }
              : never;

/** Required and defaulted attributes always have a value; the rest may be null. */
export type AttributeValue<A extends AttributeSpec> = A extends { readonly default: string | number | boolean }
  ? ValueOf<A['type']>
  : A extends { readonly mode: 'required' }
    ? ValueOf<A['type']>
    : ValueOf<A['type']> | null;

type NestedValue<N> = N extends { readonly nesting: 'single'; readonly block: infer I extends BlockSpec }
  ? BlockModel<I> | null
  : N extends { readonly block: infer I extends BlockSpec }
    ? BlockModel<I>[]
    : never;

type BlocksOf<B> = B extends { readonly blocks: infer N } ? N : Record<never, never>;

type Simplify<T> = { -readonly [K in keyof T]: T[K] } & {};

// A block not declared as a literal (the wide BlockSpec) has no model to derive: stop there,
// or tsc recurses through BlockSpec → NestedBlockSpec → BlockSpec for ever.
export type BlockModel<B extends BlockSpec> = string extends keyof B['attributes']
  ? { [name: string]: unknown }
  : Simplify<{ [K in keyof B['attributes']]: AttributeValue<B['attributes'][K]> } & { [K in keyof BlocksOf<B>]: NestedValue<BlocksOf<B>[K]> }>;

/** The model of a resource or data source: its block's attributes and nested blocks, typed. */
export type Model<S extends ResourceSchema> = BlockModel<S['block']>;

/** A model value in the loose shape the codec understands (the typed model is narrower). */
type LooseModel = { [name: string]: unknown };

function zeroOf(type: ValueType): CtyValue {
  if (type === 'string') return '';
  if (type === 'number') return 0;
  if (type === 'bool') return false;
  if ('list' in type || 'set' in type) return [];
  return {};
}

function decodeValue(type: ValueType, v: CtyValue | undefined): CtyValue {
  if (v === undefined || v === null || isUnknown(v)) return null;
  if (typeof type === 'string') return typeof v === (type === 'bool' ? 'boolean' : type) ? v : null;
  if ('list' in type || 'set' in type) {
    const element: ValueType = 'list' in type ? type.list : (type as { set: ValueType }).set;
    return Array.isArray(v) ? (v as CtyValue[]).map((e) => decodeValue(element, e)) : null;
  }
  if (!isCtyObject(v)) return null;
  if ('map' in type) {
    const element: ValueType = type.map;
    return Object.fromEntries(Object.entries(v as { [key: string]: CtyValue }).map(([k, e]) => [k, decodeValue(element, e)]));
  }
  const fields = (type as { object: Readonly<Record<string, ValueType>> }).object;
  const object = v as { [key: string]: CtyValue };
  return Object.fromEntries(Object.entries(fields).map(([k, t]) => [k, decodeValue(t, object[k])]));
}

function decodeAttribute(spec: AttributeSpec, v: CtyValue | undefined): CtyValue {
  const value = decodeValue(spec.type, v);
  if (value !== null) return value;
  if (spec.default !== undefined) return spec.default;
  return spec.mode === 'required' ? zeroOf(spec.type) : null;
}

/**
 * A decoded object value as the block's model. Values not known yet (planned computed ones)
 * decode as null; unset attributes take their default; a required attribute that is missing
 * (only in a hand-built partial state) takes its type's zero value.
 */
export function decodeBlock<B extends BlockSpec>(block: B, value: { readonly [name: string]: unknown }): BlockModel<B> {
  // `unknown` in: checking a nested literal against the recursive CtyValue type is too deep for tsc.
  return decodeObject(block, value as ObjectValue) as unknown as BlockModel<B>;
}

function decodeObject(block: BlockSpec, value: ObjectValue): ObjectValue {
  const out: ObjectValue = {};
  for (const [name, spec] of Object.entries(block.attributes)) out[name] = decodeAttribute(spec, value[name]);
  for (const [name, nested] of Object.entries(block.blocks ?? {})) {
    const v = value[name];
    if (nested.nesting === 'single') out[name] = isCtyObject(v) ? decodeObject(nested.block, v) : null;
    else out[name] = Array.isArray(v) ? v.filter(isCtyObject).map((item) => decodeObject(nested.block, item)) : [];
  }
  return out;
}

/** A model back into the object value the codec encodes: every attribute present, null when unset. */
export function encodeBlock<B extends BlockSpec>(block: B, model: BlockModel<B>): ObjectValue {
  return encodeObject(block, model as LooseModel);
}

function encodeObject(block: BlockSpec, m: LooseModel): ObjectValue {
  const out: ObjectValue = {};
  for (const name of Object.keys(block.attributes)) out[name] = (m[name] ?? null) as CtyValue;
  for (const [name, nested] of Object.entries(block.blocks ?? {})) {
    const v = m[name];
    if (nested.nesting === 'single') out[name] = v ? encodeObject(nested.block, v as LooseModel) : null;
    else out[name] = Array.isArray(v) ? v.map((item) => encodeObject(nested.block, item as LooseModel)) : [];
  }
  return out;
}

/** A resource written against the model its schema gives. */
export type TypedResource<S extends ResourceSchema> = ResourceDefinition<Model<S>, S>;

export function defineResource<S extends ResourceSchema>(r: TypedResource<S>): ResourceDefinition {
  const block = r.schema.block;
  // Through the untyped codec: instantiating BlockModel for every schema here is too deep for tsc.
  const decode = (v: ObjectValue) => decodeObject(block, v) as unknown as Model<S>;
  const encode = (m: Model<S>) => encodeObject(block, m as unknown as LooseModel);
  return {
    schema: r.schema,
    validate: r.validate?.bind(r),
    refinePlan: r.refinePlan ? (prior, planned, config) => r.refinePlan!(prior ? decode(prior) : null, planned, config) : undefined,
    create: async (ctx, planned) => encode(await r.create(ctx, decode(planned))),
    read: async (ctx, state) => {
      const next = await r.read(ctx, decode(state));
      return next ? encode(next) : null;
    },
    update: async (ctx, prior, planned) => encode(await r.update(ctx, decode(prior), decode(planned))),
    delete: (ctx, prior) => r.delete(ctx, decode(prior)),
    importState: r.importState ? async (ctx, id) => encode(await r.importState!(ctx, id)) : undefined,
  };
}

export type TypedDataSource<S extends ResourceSchema> = DataSourceDefinition<Model<S>, S>;

export function defineDataSource<S extends ResourceSchema>(d: TypedDataSource<S>): DataSourceDefinition {
  const block = d.schema.block;
  return {
    schema: d.schema,
    validate: d.validate?.bind(d),
    read: async (ctx, config) => encodeObject(block, (await d.read(ctx, decodeObject(block, config) as unknown as Model<S>)) as unknown as LooseModel),
  };
}
