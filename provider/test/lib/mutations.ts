// Mutations of a seed document for the fuzzers (definitions, feeds): text edits built from tokens
// that matter to the reader under test, and byte edits for what lies below the text.
import fc from 'fast-check';

export type Edit = { at: number; cut: number; insert: string; times: number };

/** One of `tokens`, or any short string. */
export const tokenOf = (tokens: readonly string[]): fc.Arbitrary<string> =>
  fc.oneof(fc.constantFrom(...tokens), fc.string({ maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 4 }));

/** An edit inserting one of `tokens` (or any short string) and cutting up to `maxCut` characters. */
export function textEdit(tokens: readonly string[], maxCut: number): fc.Arbitrary<Edit> {
  return fc.record({ at: fc.nat(), cut: fc.nat({ max: maxCut }), insert: tokenOf(tokens), times: fc.integer({ min: 1, max: 3 }) });
}

export function applyEdits(text: string, edits: readonly Edit[]): string {
  let t = text;
  for (const e of edits) {
    const at = t.length === 0 ? 0 : e.at % (t.length + 1);
    t = t.slice(0, at) + e.insert.repeat(e.times) + t.slice(Math.min(t.length, at + e.cut));
  }
  return t;
}

export type ByteEdit = { at: number; value: number; kind: 'set' | 'insert' | 'delete' };

export const byteEdit: fc.Arbitrary<ByteEdit> = fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }), kind: fc.constantFrom('set' as const, 'insert' as const, 'delete' as const) });

export function applyByteEdits(bytes: Uint8Array, edits: readonly ByteEdit[]): Uint8Array {
  const b = [...bytes];
  for (const e of edits) {
    const at = b.length === 0 ? 0 : e.at % b.length;
    if (e.kind === 'set' && b.length > 0) b[at] = e.value;
    else if (e.kind === 'insert') b.splice(at, 0, e.value);
    else b.splice(at, 1);
  }
  return Uint8Array.from(b);
}
