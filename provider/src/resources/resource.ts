// What a resource file provides. Terraform semantics live in the resource files; the protocol
// layer (plugin/provider-service.ts) only decodes, calls these, and encodes.
import type { CtyValue } from '../plugin/cty/index.ts';
import type { AttributePath, Diagnostic } from '../plugin/diagnostics.ts';
import type { Logger } from '../plugin/log.ts';
import type { ResourceSchema } from '../schema/model.ts';
import type { ObjectValue } from '../schema/validate.ts';

export type { ObjectValue };

/** The provider block, as configured (ConfigureProvider). */
export interface ProviderConfig {
  /** Publisher keys (`storm-ed25519 …` lines) whose signatures storm accepts on channels. */
  trustedKeys: string[];
  /** Where fetched images and channel feeds are cached; null: the default. */
  cacheDir: string | null;
}

export interface ResourceContext {
  readonly log: Logger;
  readonly provider: ProviderConfig;
  /** Aborted when Terraform asks the provider to stop (Ctrl-C): long waits should end early. */
  readonly signal: AbortSignal;
  warn(summary: string, detail?: string, path?: AttributePath): void;
}

export interface PlanRefinement {
  planned: ObjectValue;
  /** Extra attribute paths whose change replaces the resource (beyond schema forceNew). */
  requiresReplace?: AttributePath[];
  /** Said in the plan, e.g. that an update restarts the guest. */
  warnings?: Diagnostic[];
}

export interface ResourceDefinition {
  readonly schema: ResourceSchema;
  /** Rules that involve several attributes; single-attribute rules belong in the schema. */
  validate?(config: ObjectValue): Diagnostic[];
  /** Adjusts the generic plan: e.g. marks computed values unknown when inputs they derive from change. */
  refinePlan?(prior: ObjectValue | null, planned: ObjectValue, config: ObjectValue): PlanRefinement;
  create(ctx: ResourceContext, planned: ObjectValue): Promise<ObjectValue>;
  /** Null means the object is gone: Terraform plans to create it again. */
  read(ctx: ResourceContext, state: ObjectValue): Promise<ObjectValue | null>;
  update(ctx: ResourceContext, prior: ObjectValue, planned: ObjectValue): Promise<ObjectValue>;
  delete(ctx: ResourceContext, prior: ObjectValue): Promise<void>;
  /** Partial state from an import id; Terraform calls read right after. */
  importState?(ctx: ResourceContext, id: string): Promise<ObjectValue>;
}

export function str(v: CtyValue | undefined): string | null {
  return typeof v === 'string' ? v : null;
}

export function num(v: CtyValue | undefined): number | null {
  return typeof v === 'number' ? v : null;
}

/** A data source: read-only, computed from its configuration at plan time. */
export interface DataSourceDefinition {
  readonly schema: ResourceSchema;
  validate?(config: ObjectValue): Diagnostic[];
  read(ctx: ResourceContext, config: ObjectValue): Promise<ObjectValue>;
}
