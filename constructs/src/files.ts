// Files and variables that deployments, instances and scaling groups hand to their instances.
// storm expands `${name}` in them when it creates an instance; Terraform would expand it first
// (in HCL one writes `$${name}`), so literal text is escaped on its way into the configuration.
// References to other resources (tokens) stay references.

/** A file written into each instance at first boot; a template whose `${name}` is a variable. */
export interface InstanceFile {
  /** Absolute path in the instance. */
  readonly path: string;
  /** Template text: storm replaces `${name}` with the instance's variable `name`. Write it as is (no `$${`). */
  readonly content: string;
  /**
   * File mode, in octal.
   * @default '0644'
   */
  readonly permissions?: string;
}

// Terraform reads `${` and `%{` in any string as its own template syntax; `$${` and `%%{` are
// the literal text. cdktf's tokens are `${TfToken[...]}` and must stay as they are.
const TEMPLATE = /([$%])\{(?!TfToken\[)/g;

/** The text as storm should see it, escaped so that Terraform passes `${...}` through. */
export const literalText = (text: string): string => text.replace(TEMPLATE, '$1$1{');

export const literalVariables = (variables: Readonly<Record<string, string>> | undefined): Record<string, string> | undefined =>
  variables && Object.fromEntries(Object.entries(variables).map(([k, v]) => [k, literalText(v)]));

/** The L1 `file` blocks of any of the three resources (they share one shape). */
export const fileBlocks = (files: readonly InstanceFile[]) =>
  files.length ? files.map((f) => ({ path: f.path, content: literalText(f.content), permissions: f.permissions })) : undefined;
