// `${name}` expansion for deployment/instance file templates.
//
// Rules, scanning left to right:
//   - `$${` is an escape and produces a literal `${` (Terraform's own convention). Because HCL
//     applies the same escape first, a heredoc that should hand `${name}` to storm is written
//     `$${name}` in the .tf file; to end up with a literal `${HOME}` in the guest's file, storm
//     must receive `$${HOME}`, i.e. `$$${HOME}` in a heredoc, or `$${HOME}` in a file() template.
//   - `${name}` with name = [A-Za-z_][A-Za-z0-9_]* is replaced by the variable's value; values
//     are inserted verbatim and never expanded again.
//   - any other `${` (shell forms like `${x:-y}`, `${#a}`, or `${ spaced }`) is left as it is:
//     only the reference grammar above belongs to storm.

const REFERENCE = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

export type ExpandResult = { text: string } | { missing: string[] };

export function expandTemplate(text: string, variables: Record<string, string>): ExpandResult {
  const missing: string[] = [];
  const expanded = text.replace(REFERENCE, (match: string, name: string | undefined) => {
    if (name === undefined) return '${';
    // Own properties only, so `${constructor}` or `${__proto__}` are not found on Object.prototype.
    if (Object.hasOwn(variables, name)) return variables[name] as string;
    if (!missing.includes(name)) missing.push(name);
    return match;
  });
  return missing.length > 0 ? { missing } : { text: expanded };
}

// The names a template refers to, unique and in order of first use, so the provider can check
// them against the instance's variables at plan time.
export function templateVariables(text: string): string[] {
  const names: string[] = [];
  for (const m of text.matchAll(REFERENCE)) {
    const name = m[1];
    if (name !== undefined && !names.includes(name)) names.push(name);
  }
  return names;
}
