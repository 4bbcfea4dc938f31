// How the demo waits: for a condition, bounded, and failing with what it waited for and where
// to look (never a stack trace).
import { setTimeout as sleep } from 'node:timers/promises';

/** A step that did not happen, said as what was waited for and where to look. */
export class DemoError extends Error {}

export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | null | undefined | false>, hint = ''): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => null);
    if (v) return v;
    if (Date.now() > deadline) throw new DemoError(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${hint ? `; ${hint}` : ''}`);
    await sleep(1000);
  }
}
