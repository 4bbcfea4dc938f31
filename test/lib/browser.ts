// Debian's Chromium through playwright-core, as every browser test launches it. A machine
// without it skips those tests with what to install (scripts/install-system.sh installs it).
import { existsSync } from 'node:fs';
import type { TestContext } from 'node:test';
import type { Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** A headless Chromium closed after the test; null (the test skipped) when it is not installed. */
export async function launchChromium(t: TestContext): Promise<Browser | null> {
  if (!existsSync(CHROMIUM)) {
    t.skip(`${CHROMIUM} is missing: apt-get install -y chromium (scripts/install-system.sh) to run the browser test`);
    return null;
  }
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  t.after(() => browser.close());
  return browser;
}
