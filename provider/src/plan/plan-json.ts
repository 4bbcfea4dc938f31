// The input: what `terraform show -json PLANFILE` prints (Terraform's "JSON output format",
// the same from OpenTofu), reduced to the parts a plan summary reads. Only these fields are
// typed; values stay `unknown` until a reader narrows them, because they are whatever the
// provider's schema says.
//
//   { format_version: "1.2", terraform_version,
//     planned_values: { root_module },            the plan's result, present in every plan
//     resource_changes: [ { address, module_address?, mode, type, name, index?,
//                           change: { actions, before, after, after_unknown,
//                                     before_sensitive, after_sensitive, replace_paths? },
//                           action_reason? } ],   left out when nothing changes
//     resource_drift: [ ... same shape ... ],     changes found by the refresh
//     prior_state: { values: { root_module } },   the refreshed state the plan started from
//     configuration: { root_module: { resources: [ { address, expressions, for_each_expression?,
//                                                    count_expression? } ], module_calls } },
//     applyable, complete, errored }
//
// `terraform show -json` without a plan prints a state instead ({ format_version, values }):
// the commonest mistake, so it gets its own message.

/** Terraform promises that format_version's minor versions only add: any 1.x is read. */
export const KNOWN_FORMAT_MAJOR = 1;

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** One element of `actions`: Terraform's own words. */
export type PlanAction = 'no-op' | 'create' | 'read' | 'update' | 'delete' | 'forget';

export interface ResourceChangeJson {
  address: string;
  module_address?: string;
  mode: 'managed' | 'data';
  type: string;
  name: string;
  index?: string | number;
  change: {
    actions: PlanAction[];
    before: Json;
    after: Json;
    after_unknown?: Json;
    before_sensitive?: Json;
    after_sensitive?: Json;
    replace_paths?: (string | number)[][];
  };
  action_reason?: string;
}

export interface ExpressionJson {
  constant_value?: Json;
  references?: string[];
}

export interface ConfigResourceJson {
  address: string;
  mode: 'managed' | 'data';
  type: string;
  name: string;
  /** Attributes map to an expression; nested blocks to an object (or array) of them. */
  expressions?: { [attribute: string]: Json };
  for_each_expression?: ExpressionJson;
  count_expression?: ExpressionJson;
}

export interface ConfigModuleJson {
  resources?: ConfigResourceJson[];
  module_calls?: { [name: string]: { module?: ConfigModuleJson } };
}

export interface StateResourceJson {
  address: string;
  mode: 'managed' | 'data';
  type: string;
  name: string;
  index?: string | number;
  values?: JsonObject;
}

export interface StateModuleJson {
  resources?: StateResourceJson[];
  child_modules?: StateModuleJson[];
}

export interface PlanJson {
  format_version: string;
  terraform_version?: string;
  planned_values: { root_module?: StateModuleJson };
  resource_changes?: ResourceChangeJson[];
  resource_drift?: ResourceChangeJson[];
  prior_state?: { values?: { root_module?: StateModuleJson } };
  configuration?: { root_module?: ConfigModuleJson };
  applyable?: boolean;
  complete?: boolean;
  errored?: boolean;
}

/** Input that is not a plan this reader understands: what is wrong, and what to run instead. */
export class NotAPlanError extends Error {
  override name = 'NotAPlanError';
  constructor(
    readonly problem: string,
    readonly fix: string,
  ) {
    super(`${problem} ${fix}`);
  }
}

const HOW = 'Give it the JSON of a saved plan: terraform plan -out=tfplan && terraform show -json tfplan > plan.json.';

export const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Parses and checks `text` as a plan in Terraform's JSON format. Only the structure the summary
 * walks is checked (a change's actions, the lists it iterates); attribute values are the
 * provider's and are narrowed where they are read.
 */
export function readPlanJson(text: string): PlanJson {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    const looksBinary = text.startsWith('PK');
    throw new NotAPlanError(
      looksBinary ? 'This is a saved plan file itself (a zip archive), not its JSON.' : `This is not JSON (${(err as Error).message}).`,
      looksBinary ? 'Turn it into JSON first: terraform show -json tfplan > plan.json.' : HOW,
    );
  }
  if (!isObject(parsed) || typeof parsed.format_version !== 'string') {
    throw new NotAPlanError('This JSON has no format_version: it is not something `terraform show -json` printed.', HOW);
  }
  const version = parsed.format_version;
  const major = Number(version.split('.')[0]);
  if (!('planned_values' in parsed)) {
    const state = 'values' in parsed || Object.keys(parsed).every((k) => k === 'format_version' || k === 'terraform_version');
    throw new NotAPlanError(
      state ? 'This is a Terraform state (`terraform show -json` without a plan file), not a plan.' : 'This JSON has no planned_values: it is not a plan.',
      HOW,
    );
  }
  if (major !== KNOWN_FORMAT_MAJOR) {
    throw new NotAPlanError(
      `The plan's format_version is ${version}; this storm reads ${KNOWN_FORMAT_MAJOR}.x (Terraform 1.x and OpenTofu print that).`,
      major > KNOWN_FORMAT_MAJOR ? 'Update storm, or make the plan with a Terraform version that prints format 1.x.' : 'Make the plan with Terraform 1.0 or later.',
    );
  }
  const changes = parsed.resource_changes;
  if (changes !== undefined && !Array.isArray(changes)) throw new NotAPlanError('resource_changes is not a list.', HOW);
  (changes ?? []).forEach((c, i) => {
    const change = isObject(c) ? c.change : undefined;
    if (!isObject(c) || typeof c.address !== 'string' || typeof c.type !== 'string' || !isObject(change) || !Array.isArray(change.actions)) {
      throw new NotAPlanError(`resource_changes[${i}] is not a resource change (address, type, change.actions).`, HOW);
    }
  });
  return parsed as unknown as PlanJson;
}
