// The contract between the protocol server and what serves it: what a resource or data source
// provides and what it is given. Types only (no code runs here), so the server, the resources,
// the CLI and the controller can all import it without pulling in each other.
import type { CtyValue } from './protocol/cty/index.ts';
import type { AttributePath, Diagnostic } from './protocol/diagnostics.ts';
import type { HostSession } from './host/session.ts';
import type { BlockSpec, ResourceSchema } from './schema/model.ts';

/** A Terraform object value as the codec decodes it: attribute name → cty value. */
export type ObjectValue = { [name: string]: CtyValue };

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** The provider block, as configured (ConfigureProvider). */
export interface ProviderConfig {
  /** Publisher keys (`storm-ed25519 …` lines) whose signatures storm accepts on channels. */
  trustedKeys: string[];
  /** Where fetched images and channel feeds are cached; null: the default. */
  cacheDir: string | null;
  /** The storm controller's API (scaling groups, host power); null when not configured. */
  controller: { url: string; token: string; caPem: string } | null;
}

export interface ResourceContext {
  readonly log: Logger;
  readonly provider: ProviderConfig;
  /** Aborted when Terraform asks the provider to stop (Ctrl-C): long waits should end early. */
  readonly signal: AbortSignal;
  /** What this provider process remembers about the hosts (observations, work in flight, placements). */
  readonly session: HostSession;
  warn(summary: string, detail?: string, path?: AttributePath): void;
}

export interface PlanRefinement {
  planned: ObjectValue;
  /** Extra attribute paths whose change replaces the resource (beyond schema forceNew). */
  requiresReplace?: AttributePath[];
  /** Said in the plan, e.g. that an update restarts the guest. */
  warnings?: Diagnostic[];
}

/**
 * A resource: its schema and its Terraform semantics. The protocol server sees it untyped
 * (object values in and out, the defaults below); resource files write it against the model
 * their schema gives (`M`, see schema/typed.ts). Planning and validation see raw object values
 * whatever `M` is, because a configuration or a plan may hold values not known until apply;
 * prior state is always known, so it arrives as `M`.
 */
export interface ResourceDefinition<M = ObjectValue, S extends ResourceSchema = ResourceSchema> {
  readonly schema: S;
  /** Rules that involve several attributes; single-attribute rules belong in the schema. */
  validate?(config: ObjectValue): Diagnostic[];
  /** Adjusts the generic plan: e.g. marks computed values unknown when inputs they derive from change. */
  refinePlan?(prior: M | null, planned: ObjectValue, config: ObjectValue): PlanRefinement | Promise<PlanRefinement>;
  create(ctx: ResourceContext, planned: M): Promise<M>;
  /** Null means the object is gone: Terraform plans to create it again. */
  read(ctx: ResourceContext, state: M): Promise<M | null>;
  update(ctx: ResourceContext, prior: M, planned: M): Promise<M>;
  delete(ctx: ResourceContext, prior: M): Promise<void>;
  /** Partial state from an import id; Terraform calls read right after. */
  importState?(ctx: ResourceContext, id: string): Promise<M>;
}

/** A data source: read-only, computed from its configuration at plan time. */
export interface DataSourceDefinition<M = ObjectValue, S extends ResourceSchema = ResourceSchema> {
  readonly schema: S;
  validate?(config: ObjectValue): Diagnostic[];
  read(ctx: ResourceContext, config: M): Promise<M>;
}

/** The provider as the protocol server serves it: its configuration block, resources and data sources. */
export interface ProviderDefinition {
  typeName: string;
  configBlock: BlockSpec;
  description: string;
  resources: readonly ResourceDefinition[];
  dataSources: readonly DataSourceDefinition[];
  /** Reads the provider block's value into the configuration resources see. */
  configure(config: ObjectValue | null): ProviderConfig;
  /** What resources share for the life of this process (one Terraform walk). */
  createSession(): HostSession;
}
