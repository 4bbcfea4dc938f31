// Appliance versions (Debian-like: 1.0.0-0) and constraints (`1.0`, `>= 1.0, < 2`, `~> 1.2`).
// Pure functions: the data sources and the site may share them.

function parts(v: string): (number | string)[] {
  return v.split(/[.\-+~_]/).map((p) => (/^\d+$/.test(p) ? Number(p) : p));
}

/** Negative when a < b. Numeric segments compare as numbers; a missing segment counts as 0. */
export function compareVersions(a: string, b: string): number {
  const pa = parts(a);
  const pb = parts(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? 0;
    const y = pb[i] ?? 0;
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    return String(x) < String(y) ? -1 : 1;
  }
  return 0;
}

type Term = { op: '=' | '!=' | '>' | '>=' | '<' | '<=' | '~>'; version: string };

export class ConstraintError extends Error {}

export function parseConstraint(text: string): Term[] {
  const terms: Term[] = [];
  for (const raw of text.split(',').map((t) => t.trim()).filter(Boolean)) {
    const m = /^(=|!=|>=|<=|>|<|~>)?\s*([0-9A-Za-z][0-9A-Za-z.\-+~_]*)$/.exec(raw);
    if (!m) throw new ConstraintError(`"${raw}" is not a version constraint: write e.g. "1.0.0-0", ">= 1.0, < 2" or "~> 1.2"`);
    terms.push({ op: (m[1] ?? '=') as Term['op'], version: m[2]! });
  }
  return terms;
}

function pessimisticUpper(version: string): string {
  const nums = version.split('.').map((p) => Number.parseInt(p, 10));
  if (nums.length < 2 || nums.some(Number.isNaN)) return `${(nums[0] ?? 0) + 1}`;
  const keep = nums.slice(0, -1);
  keep[keep.length - 1]! += 1;
  return keep.join('.');
}

export function satisfies(version: string, constraint: string | null): boolean {
  if (!constraint) return true;
  return parseConstraint(constraint).every(({ op, version: want }) => {
    const c = compareVersions(version, want);
    switch (op) {
      case '=': return c === 0;
      case '!=': return c !== 0;
      case '>': return c > 0;
      case '>=': return c >= 0;
      case '<': return c < 0;
      case '<=': return c <= 0;
      case '~>': return c >= 0 && compareVersions(version, pessimisticUpper(want)) < 0;
    }
  });
}

/** The newest of `versions` that satisfies `constraint`, or null. */
export function newestSatisfying(versions: readonly string[], constraint: string | null): string | null {
  return [...versions].filter((v) => satisfies(v, constraint)).sort(compareVersions).pop() ?? null;
}
