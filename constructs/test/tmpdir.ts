// cdktf's Testing.app() makes an output directory under the system temp dir for every app and
// never removes it; pointed at a directory of its own, a test file cleans up after itself.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

export function ownTmpdir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'storm-constructs-test-'));
  process.env.TMPDIR = dir;
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
