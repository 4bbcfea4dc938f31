// Hand decoding, on its way out: resources move to typed models (schema/typed.ts).
import type { CtyValue } from '../protocol/cty/index.ts';
export type { ObjectValue, ResourceContext, ResourceDefinition, DataSourceDefinition, ProviderConfig, PlanRefinement } from '../contract.ts';

export function str(v: CtyValue | undefined): string | null {
  return typeof v === 'string' ? v : null;
}

export function num(v: CtyValue | undefined): number | null {
  return typeof v === 'number' ? v : null;
}
