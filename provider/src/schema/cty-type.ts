import type { CtyType } from '../protocol/cty/index.ts';
import type { BlockSpec, ValueType } from './model.ts';

export function valueCtyType(t: ValueType): CtyType {
  if (typeof t === 'string') return { kind: t };
  if ('list' in t) return { kind: 'list', element: valueCtyType(t.list) };
  if ('set' in t) return { kind: 'set', element: valueCtyType(t.set) };
  if ('object' in t) return { kind: 'object', attributes: Object.fromEntries(Object.entries(t.object).map(([k, v]) => [k, valueCtyType(v)])) };
  return { kind: 'map', element: valueCtyType(t.map) };
}

const cache = new WeakMap<BlockSpec, CtyType>();

/** The object type a block's values have on the wire (nested blocks included). */
export function blockCtyType(block: BlockSpec): CtyType {
  const hit = cache.get(block);
  if (hit) return hit;
  const attributes: Record<string, CtyType> = {};
  for (const [name, spec] of Object.entries(block.attributes)) attributes[name] = valueCtyType(spec.type);
  for (const [name, nested] of Object.entries(block.blocks ?? {})) {
    const inner = blockCtyType(nested.block);
    attributes[name] = nested.nesting === 'single' ? inner : { kind: 'list', element: inner };
  }
  const type: CtyType = { kind: 'object', attributes };
  cache.set(block, type);
  return type;
}
