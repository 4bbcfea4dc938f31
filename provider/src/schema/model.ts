// The one declaration of every storm schema. The protocol schema, config validation, the
// generic planner, the registry docs and the cdktf bindings are all derived from it.

export type ValueType =
  | 'string'
  | 'number'
  | 'bool'
  | { list: ValueType }
  | { set: ValueType }
  | { map: ValueType }
  | { object: Readonly<Record<string, ValueType>> };

/** Returns a message saying what is wrong and how to fix it, or undefined when the value is fine. */
export type Validator = (value: string | number | boolean) => string | undefined;

export interface AttributeSpec {
  type: ValueType;
  description: string;
  /** required: the user must set it; optional: may set it; computed: only the provider sets it. */
  mode: 'required' | 'optional' | 'computed';
  /** Used when the user leaves an optional attribute unset (the attribute is then also computed). */
  default?: string | number | boolean;
  /** An optional attribute whose unset value the provider fills from what it observes. */
  observed?: boolean;
  sensitive?: boolean;
  /** Changing it replaces the resource; the plan says so. */
  forceNew?: boolean;
  validators?: readonly Validator[];
}

export interface BlockSpec {
  description?: string;
  attributes: Readonly<Record<string, AttributeSpec>>;
  blocks?: Readonly<Record<string, NestedBlockSpec>>;
}

export interface NestedBlockSpec {
  /** `single` is a block that appears at most once and is an object (or null) in state. */
  nesting: 'single' | 'list';
  description: string;
  block: BlockSpec;
  /** At least this many; on a `single` block, 1 makes it required. */
  minItems?: number;
  maxItems?: number;
  forceNew?: boolean;
}

export interface ResourceSchema {
  typeName: string;
  version: number;
  description: string;
  block: BlockSpec;
}

/** What Terraform must treat as computed: provider-set values and optional ones it may fill. */
export function isComputed(spec: AttributeSpec): boolean {
  return spec.mode === 'computed' || spec.default !== undefined || spec.observed === true;
}
