/**
 * The admin page's consumers and parked-events panels in headless Chromium, against a real server
 * with API keys and a durable subscription running in its process: the page asks for a key (kept
 * for the tab), lists the parked events with their error, replays one from the page (through the
 * subscription's handler) and skips the other.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/index.js';
import { type ConsumerHandle, startSubscription } from '../../src/projections.js';
import { type RunningServer, startServer } from '../../src/server/serve.js';
import { CHROMIUM, CHROMIUM_ARGS, ensureChromium } from '../helpers/chromium.js';
import { ROOT, tempDir } from './process.js';

const OPERATOR_KEY = 'operator-key-0123456789';

describe('admin page: consumers and parked events in headless Chromium', () => {
  const dir = tempDir('logline-admin-parked-');
  let available = false;
  let server: RunningServer;
  let subscription: ConsumerHandle;
  let closeStore: () => Promise<void>;
  let browser: Browser;
  let failing = true;
  const mailed: string[] = [];

  beforeAll(async () => {
    available = ensureChromium();
    const file = join(dir.path, 'admin-parked.db');
    const store = await openStore(`sqlite:${file}`);
    closeStore = () => store.close();
    await store.append('order-7', [
      { type: 'OrderPlaced', data: { total: 12 } },
      { type: 'OrderPaid', data: { total: 12 } },
    ]);
    subscription = await startSubscription(store, {
      name: 'mailer',
      retry: { maxAttempts: 2, initialDelayMs: 1, maxDelayMs: 2 },
      onFailure: 'skip',
      handler: (event) => {
        if (failing) throw new Error(`SMTP refused ${event.type}`);
        mailed.push(event.type);
      },
    });
    await subscription.waitForPosition(2n, { timeout: 10_000 });
    const keysFile = join(dir.path, 'keys.json');
    writeFileSync(keysFile, JSON.stringify({ keys: [{ name: 'operator', key: OPERATOR_KEY, read: ['*'], write: ['*'] }] }));
    server = await startServer({
      store: `sqlite:${file}`,
      port: 0,
      keysFile,
      consumers: [subscription],
      logger: pino({ level: 'silent' }),
    });
    if (available) browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  }, 660_000);

  afterAll(async () => {
    await browser?.close();
    await subscription?.stop();
    await server?.close();
    await closeStore?.();
    dir.remove();
  });

  it('asks for a key, lists parked events, replays one and skips the other from the page', async (ctx) => {
    if (!available) ctx.skip();
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(String(error)));
    await page.goto(server.url);
    await page.locator('#key-form:not([hidden])').waitFor();
    await page.fill('#key-input', OPERATOR_KEY);
    await page.keyboard.press('Enter');
    // The key is kept for the tab: after the reload the page works without asking again.
    await expect.poll(() => page.locator('#parked-count').textContent(), { timeout: 10_000 }).toBe('2');
    expect(await page.evaluate('sessionStorage.getItem("logline-api-key")')).toBe(OPERATOR_KEY);
    expect(await page.locator('#key-form').isHidden()).toBe(true);

    const first = page.locator('#parked li[data-parked]').first();
    expect(await first.textContent()).toContain('OrderPlaced at 1 on order-7 · mailer · 2 attempts');
    expect(await first.locator('.error').textContent()).toBe('SMTP refused OrderPlaced');
    await first.locator('summary').click();
    expect(await first.locator('details pre').textContent()).toContain('Error: SMTP refused OrderPlaced');
    // The consumers panel shows the subscription and its parked count.
    await expect.poll(() => page.locator('#subscriptions tr[data-name="mailer"]').textContent()).toMatch(/mailer2.*2 parked/);

    // docs/admin-parked.png is refreshed when missing or on request (LOGLINE_UPDATE_SCREENSHOT=1).
    const docsShot = join(ROOT, 'docs/admin-parked.png');
    const refresh = !existsSync(docsShot) || process.env.LOGLINE_UPDATE_SCREENSHOT === '1';
    await page.screenshot({ path: refresh ? docsShot : join(dir.path, 'admin-parked.png') });

    failing = false;
    await first.getByRole('button', { name: 'Replay' }).click();
    await expect.poll(() => page.locator('#parked-status').textContent()).toMatch(/replayed 1, still failing 0/);
    expect(mailed).toEqual(['OrderPlaced']);
    await expect.poll(() => page.locator('#parked li[data-parked]').count()).toBe(1);

    await page.locator('#parked li[data-parked]').first().getByRole('button', { name: 'Skip' }).click();
    await expect.poll(() => page.locator('#parked-count').textContent()).toBe('0');
    expect(mailed).toEqual(['OrderPlaced']);
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);
});
