// Prop checks for the L2 constructs, run when the app is synthesized (cdktf runs every
// construct's validations then and reports them together, each under its construct's path).
// Each construct keeps its checks as one table of rules; a rule names the prop the user sets.
// The value rules themselves (names, versions, URIs, file modes) are the provider's, imported
// from provider/src: one rule and one wording for `terraform plan` and for `cdktf synth`.
import { Token } from 'cdktf';
import type { IConstruct } from 'constructs';
import type { Validator } from '../../provider/src/schema/model.ts';

/** One row of a construct's checks: a condition that is a mistake, and what to tell the user. */
export interface PropRule {
  readonly failed: boolean;
  readonly message: string;
}

/** Registers a construct's table of rules; `kind` starts every message (e.g. `ScalingGroup "mx"`). */
export function validateProps(construct: IConstruct, kind: string, rules: () => Iterable<PropRule | undefined>): void {
  construct.node.addValidation({
    validate: () => [...rules()].filter((r): r is PropRule => r !== undefined && r.failed).map((r) => `${kind}: ${r.message}`),
  });
}

/** A value a rule can judge now: set, and not a reference that Terraform resolves later. */
export const known = <T>(value: T | undefined): value is T => value !== undefined && !Token.isUnresolved(value);

/** The provider's own check of an attribute, for the prop that feeds it. */
export function providerRule(prop: string, value: string | number | boolean | undefined, validator: Validator): PropRule | undefined {
  if (!known(value)) return undefined;
  const problem = validator(value);
  return problem === undefined ? undefined : { failed: true, message: `${prop}: ${problem}` };
}

/** What a construct is called in messages: its kind and the name the user gave or its id. */
export const describe = (kind: string, name: string) => `${kind} "${name}"`;

/** The prop a name check blames: `name`, or the construct id that stands in for it. */
export const nameProp = (given: string | undefined) => (given === undefined ? 'name (not given, so the construct id)' : 'name');
