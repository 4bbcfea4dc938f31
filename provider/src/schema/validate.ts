// Checks a configuration against the validators declared in the schema. Unknown values
// (known only after apply) are skipped: Terraform validates again once they are known.
import type { CtyValue } from '../protocol/cty/index.ts';
import { isUnknown } from '../protocol/cty/index.ts';
import type { AttributePath, Diagnostic } from '../protocol/diagnostics.ts';
import type { BlockSpec } from './model.ts';

export type { ObjectValue } from '../contract.ts';
import type { ObjectValue } from '../contract.ts';

export function asObject(v: CtyValue): ObjectValue | null {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !isUnknown(v) ? (v as ObjectValue) : null;
}

export function validateBlock(block: BlockSpec, value: CtyValue, path: AttributePath = []): Diagnostic[] {
  const obj = asObject(value);
  if (!obj) return [];
  const diags: Diagnostic[] = [];
  for (const [name, spec] of Object.entries(block.attributes)) {
    const v = obj[name];
    if (v === null || v === undefined || isUnknown(v)) continue;
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') continue;
    for (const check of spec.validators ?? []) {
      const problem = check(v);
      if (problem) {
        diags.push({ severity: 'error', summary: `Invalid ${name}`, detail: `${name} ${problem}`, path: [...path, { attribute: name }] });
      }
    }
  }
  for (const [name, nested] of Object.entries(block.blocks ?? {})) {
    const v = obj[name];
    if (nested.nesting === 'single') diags.push(...validateBlock(nested.block, v ?? null, [...path, { attribute: name }]));
    else if (Array.isArray(v)) v.forEach((item, index) => diags.push(...validateBlock(nested.block, item, [...path, { attribute: name }, { index }])));
  }
  return diags;
}
