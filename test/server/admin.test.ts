/**
 * The admin page in real headless Chromium (Debian package, never a downloaded browser): it
 * lists and searches streams, shows a stream's events, and a live $all tail picks up an event
 * appended through the API. Saves docs/admin.png (when missing, or with LOGLINE_UPDATE_SCREENSHOT=1).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, CHROMIUM_ARGS, ensureChromium } from '../helpers/chromium.js';
import { post, ROOT, type ServerProcess, startServerProcess, tempDir } from './process.js';

/** How long the page may take to show something: generous, as Chromium shares 2 cores with the rest of the suite. */
const UI_TIMEOUT = 15_000;

describe('admin page in headless Chromium', () => {
  const dir = tempDir();
  let available = false;
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    available = ensureChromium();
    server = await startServerProcess(['--store', `sqlite:${join(dir.path, 'admin.db')}`, '--demo']);
    if (!available) return;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 820 } });
  }, 660_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    dir.remove();
  });

  it('lists and searches streams, shows events, tails $all live', async (ctx) => {
    if (!available) ctx.skip();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(String(error)));
    await page.goto(server.url);
    await page.locator('#streams li[data-stream="account-1"]').waitFor();
    await expect.poll(() => page.locator('#stats').textContent(), { timeout: UI_TIMEOUT }).toMatch(/12 events · 5 streams/);

    await page.fill('#stream-search', 'order');
    await expect.poll(() => page.locator('#streams li').allTextContents(), { timeout: UI_TIMEOUT }).toEqual(['order-1001v3']);
    await page.click('#streams li[data-stream="order-1001"]');
    await page.locator('.event').first().waitFor();
    expect(await page.locator('.event .type').allTextContents()).toEqual(['OrderShipped', 'OrderPaid', 'OrderPlaced']);
    expect(await page.locator('#stream-events').textContent()).toContain('"Springfield Post"');

    await page.locator('#live-status.live').waitFor();
    const appended = await post(`${server.url}/v1/streams/browser-check`, {
      events: [{ type: 'SeenInBrowser', data: { hello: 'from the test', nested: { ok: true } } }],
    });
    expect(appended.status).toBe(201);
    const row = page.locator(`#live li[data-position="${appended.body.position}"]`);
    await row.waitFor({ timeout: 10_000 });
    expect(await row.textContent()).toContain('SeenInBrowser on browser-check');

    await row.locator('a').click();
    await expect.poll(() => page.locator('#stream-title').textContent(), { timeout: UI_TIMEOUT }).toBe('browser-check');
    await expect
      .poll(() => page.locator('#stream-events pre').first().textContent(), { timeout: UI_TIMEOUT })
      .toContain('"hello": "from the test"');
    // Retention and deletions: the stream's line, the side list, a deleted stream's message.
    const call = (method: string, path: string, body?: unknown) =>
      fetch(`${server.url}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    expect((await call('PUT', '/v1/streams/browser-check/metadata', { maxCount: 10 })).status).toBe(200);
    expect((await call('DELETE', '/v1/streams/account-1?hard=true')).status).toBe(200);
    await expect
      .poll(() => page.locator('#lifecycles li').allTextContents(), { timeout: 10_000 })
      .toEqual(['account-1 v3 · deleted (hard)', 'browser-check v1 · keeps the last 10']);
    await page.click('#lifecycles li[data-stream="browser-check"] a');
    await expect.poll(() => page.locator('#stream-lifecycle').textContent(), { timeout: UI_TIMEOUT }).toBe('Retention: keeps the last 10');
    await page.click('#lifecycles li[data-stream="account-1"] a');
    await expect
      .poll(() => page.locator('#stream-events').textContent(), { timeout: UI_TIMEOUT })
      .toBe('This stream was deleted for good at v3.');
    await page.fill('#stream-search', '');
    await page.click('#streams li[data-stream="order-1001"]');
    await page.locator('.event').first().waitFor();
    // Subscriptions with lag: the page's own live tail is one of them.
    await expect.poll(() => page.locator('#subscriptions tbody').textContent(), { timeout: UI_TIMEOUT }).toMatch(/sse#\d+ \$all/);
    // docs/admin.png is refreshed when missing or on request, so test runs leave the tree clean.
    const docsShot = join(ROOT, 'docs/admin.png');
    const refresh = !existsSync(docsShot) || process.env.LOGLINE_UPDATE_SCREENSHOT === '1';
    await page.screenshot({ path: refresh ? docsShot : join(dir.path, 'admin.png') });
    expect(errors).toEqual([]);
  });

  it('marks events with personal data and shows a subject forgotten after DELETE /v1/subjects/{subject}', {
    timeout: 90_000,
  }, async (ctx) => {
    if (!available) ctx.skip();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(String(error)));
    const event = { type: 'SignedUp', data: { email: 'flanders@example.com' }, metadata: { subject: 'ned', personal: ['email'] } };
    expect((await post(`${server.url}/v1/streams/person-ned`, { events: [event] })).status).toBe(201);
    await page.goto(server.url);
    await page.fill('#stream-search', 'person-');
    await page.click('#streams li[data-stream="person-ned"]', { timeout: UI_TIMEOUT });
    await page.locator('.event .badge.personal').waitFor({ timeout: UI_TIMEOUT });
    await page.click('.event .badge.personal', { timeout: UI_TIMEOUT });
    await expect
      .poll(() => page.locator('#subject-status').textContent(), { timeout: UI_TIMEOUT })
      .toMatch(/^ned: personal data since .+, not forgotten$/);

    expect((await fetch(`${server.url}/v1/subjects/ned`, { method: 'DELETE' })).status).toBe(200);
    await page.reload();
    await page.fill('#stream-search', 'person-');
    await page.click('#streams li[data-stream="person-ned"]', { timeout: UI_TIMEOUT });
    await page.locator('.event .badge.forgotten').waitFor({ timeout: UI_TIMEOUT });
    expect(await page.locator('#stream-events').textContent()).not.toContain('flanders@example.com');
    await page.fill('#subject-input', 'ned');
    await page.click('#subject-form button');
    await expect.poll(() => page.locator('#subject-status').textContent(), { timeout: UI_TIMEOUT }).toMatch(/^ned: forgotten at \d{4}-/);
    await page.fill('#subject-input', 'nobody');
    await page.click('#subject-form button');
    await expect.poll(() => page.locator('#subject-status').textContent(), { timeout: UI_TIMEOUT }).toMatch(/^nobody: unknown/);
    expect(errors).toEqual([]);
  });
});
