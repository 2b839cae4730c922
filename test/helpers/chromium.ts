/** Debian's Chromium for browser tests (never a downloaded browser build). */
import { execSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const CHROMIUM = '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Installs Chromium from apt when it is missing; with CI=true a failure fails the suite. */
export function ensureChromium(): boolean {
  if (existsSync(CHROMIUM)) return true;
  try {
    execSync('apt-get update && apt-get install -y chromium', { stdio: 'ignore', timeout: 600_000 });
  } catch (error) {
    if (process.env.CI === 'true') throw new Error(`Chromium is missing and apt-get could not install it (CI=true): ${String(error)}`);
    console.warn(`Chromium is missing and could not be installed; skipping the browser test (${String(error)})`);
    return false;
  }
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI === 'true') throw new Error(`apt-get installed chromium but ${CHROMIUM} is still missing`);
    return false;
  }
  return true;
}
