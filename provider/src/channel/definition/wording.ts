// How a problem is worded: values quoted the same way everywhere, and a guess at what the
// publisher meant ("did you mean <label>?", "for 512 MiB write 524288") so a message carries
// its own fix.

/** A value as a message shows it: JSON-quoted, cut at 80 characters. */
export function quote(value: string): string {
  const v = value.length > 80 ? `${value.slice(0, 77)}...` : value;
  return JSON.stringify(v);
}

// Edit distance counting a swap of neighbours as one edit: "tpye" is one typo away from "type".
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** The known name `name` is probably a typo of, or null when none is close enough to suggest. */
export function closest(name: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  for (const k of known) {
    const d = k.toLowerCase() === name.toLowerCase() ? 0 : distance(name.toLowerCase(), k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  const limit = name.length <= 4 ? 1 : 2;
  return bestD <= limit ? best : null;
}

// "512MB" in <memory> is the commonest mistake; work out the number that was meant.
export function convertUnits(raw: string, unit: 'KiB' | 'MiB'): { amount: string; value: number } | null {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt])i?b?$/i.exec(raw.trim());
  if (!m) return null;
  const power = 'kmgt'.indexOf(m[2]!.toLowerCase()) - (unit === 'KiB' ? 0 : 1);
  const value = Number(m[1]) * 1024 ** power;
  if (!Number.isSafeInteger(value) || value < 1) return null;
  return { amount: `${m[1]} ${m[2]!.toUpperCase()}iB`, value };
}
