/**
 * Debian's Chromium for the browser tests, through playwright-core (which downloads nothing).
 * CI installs it (.ci/run); elsewhere a test that needs it is skipped and says what it needs
 * instead of failing.
 */
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** `false` when Chromium is there (or CI must have it), else the reason to skip. */
export const noChromium: string | false =
  !existsSync(chromiumPath) && !process.env.CI
    ? `no Chromium at ${chromiumPath}: apt-get install chromium, or set CHROMIUM_PATH`
    : false;

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
}
