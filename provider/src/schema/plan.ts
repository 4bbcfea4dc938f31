// The generic part of planning, derived from the schema: defaults, computed values, and
// which changes force a replacement. Resources refine the result (see resources/resource.ts).
import type { CtyType, CtyValue } from '../protocol/cty/index.ts';
import { UNKNOWN, ctyEqual, isUnknown } from '../protocol/cty/index.ts';
import type { AttributePath } from '../protocol/diagnostics.ts';
import type { BlockSpec } from './model.ts';
import { blockCtyType, valueCtyType } from './cty-type.ts';
import { asObject, type ObjectValue } from './validate.ts';

export interface GenericPlan {
  planned: ObjectValue;
  requiresReplace: AttributePath[];
}

function changed(before: CtyValue | undefined, after: CtyValue, type: CtyType): boolean {
  if (isUnknown(after)) return true;
  return !ctyEqual(before ?? null, after, type);
}

/**
 * `prior` is null on create. `config` is what the user wrote (unknowns included); Terraform's
 * proposed state is not needed because every rule here is stated against config and prior.
 */
export function planBlock(block: BlockSpec, prior: ObjectValue | null, config: ObjectValue, path: AttributePath = []): GenericPlan {
  const planned: ObjectValue = {};
  const requiresReplace: AttributePath[] = [];
  for (const [name, spec] of Object.entries(block.attributes)) {
    const fromConfig = config[name] ?? null;
    const before = prior ? (prior[name] ?? null) : undefined;
    let value: CtyValue;
    if (spec.mode === 'computed') value = prior ? (before ?? null) : UNKNOWN;
    else if (fromConfig !== null) value = fromConfig;
    else if (spec.default !== undefined) value = spec.default;
    else if (spec.observed) value = prior ? (before ?? null) : UNKNOWN;
    else value = null;
    planned[name] = value;
    if (prior && spec.forceNew && spec.mode !== 'computed' && changed(before, value, valueCtyType(spec.type))) {
      requiresReplace.push([...path, { attribute: name }]);
    }
  }
  for (const [name, nested] of Object.entries(block.blocks ?? {})) {
    const here: AttributePath = [...path, { attribute: name }];
    const before = prior ? (prior[name] ?? null) : undefined;
    let value: CtyValue;
    if (nested.nesting === 'single') {
      const inner = asObject(config[name] ?? null);
      if (inner) {
        const sub = planBlock(nested.block, asObject(before ?? null), inner, here);
        value = sub.planned;
        requiresReplace.push(...sub.requiresReplace);
      } else value = isUnknown(config[name] ?? null) ? UNKNOWN : null;
    } else {
      const items = config[name];
      const priorItems = Array.isArray(before) ? before : [];
      value = Array.isArray(items)
        ? items.map((item, index) => {
            const sub = planBlock(nested.block, asObject(priorItems[index] ?? null), asObject(item) ?? {}, [...here, { index }]);
            requiresReplace.push(...sub.requiresReplace);
            return sub.planned;
          })
        : (items ?? null);
    }
    planned[name] = value;
    if (prior && nested.forceNew && changed(before, value, blockCtyTypeOf(nested.block, nested.nesting))) requiresReplace.push(here);
  }
  return { planned, requiresReplace };
}

function blockCtyTypeOf(block: BlockSpec, nesting: 'single' | 'list'): CtyType {
  const inner = blockCtyType(block);
  return nesting === 'single' ? inner : { kind: 'list', element: inner };
}
