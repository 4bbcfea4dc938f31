// Diagnostics are the only way failures cross the plugin boundary: Terraform shows a thrown
// error as a bare "rpc error: code = Unknown", so everything below the protocol layer reports
// through these types and the protocol layer turns leftovers into diagnostics too.

export type PathStep = { attribute: string } | { key: string } | { index: number };
export type AttributePath = readonly PathStep[];

export interface Diagnostic {
  severity: 'error' | 'warning';
  summary: string;
  detail?: string;
  path?: AttributePath;
}

/** `attr('ipmi', 'password')` → the path of a nested attribute, as Terraform names it. */
export function attr(...names: string[]): AttributePath {
  return names.map((attribute) => ({ attribute }));
}

export function pathToString(path: AttributePath): string {
  return path
    .map((s, i) => ('attribute' in s ? (i ? '.' : '') + s.attribute : 'key' in s ? `["${s.key}"]` : `[${s.index}]`))
    .join('');
}

/** A failure that knows which attribute caused it and how to fix it. */
export class DiagnosticError extends Error {
  readonly diagnostic: Diagnostic;
  constructor(summary: string, detail?: string, path?: AttributePath) {
    super(detail ? `${summary}: ${detail}` : summary);
    this.diagnostic = { severity: 'error', summary, detail, path };
  }
}

export function toDiagnostic(err: unknown, fallbackSummary: string): Diagnostic {
  if (err instanceof DiagnosticError) return err.diagnostic;
  const detail = err instanceof Error ? err.message : String(err);
  return { severity: 'error', summary: fallbackSummary, detail };
}

export function hasErrors(diags: readonly Diagnostic[]): boolean {
  return diags.some((d) => d.severity === 'error');
}
