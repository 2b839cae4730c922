/**
 * The admin page's operator panels in headless Chromium, against a real server with API keys and
 * a durable subscription running in its process: the page asks for a key (kept for the tab),
 * shows a consumer group whose row expands to its partitions and their lease owners,
 * lists the parked events with their error, replays one from the page (through the
 * subscription's handler) and skips the other; time travel shows a stream as of a recorded or an
 * occurred time, with late and correction events marked.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EventStore, openStore } from '../../src/index.js';
import { type ConsumerHandle, defineProjection, joinGroup, startProjection, startSubscription } from '../../src/projections.js';
import { type RunningServer, startServer } from '../../src/server/serve.js';
import { CHROMIUM, CHROMIUM_ARGS, ensureChromium } from '../helpers/chromium.js';
import { collect, sleep } from '../helpers/collect.js';
import { ROOT, tempDir } from './process.js';

const OPERATOR_KEY = 'operator-key-0123456789';

/** docs/<name> when it is missing or on request (LOGLINE_UPDATE_SCREENSHOT=1), so test runs leave the tree clean. */
const screenshotPath = (name: string) => {
  const docs = join(ROOT, 'docs', name);
  return !existsSync(docs) || process.env.LOGLINE_UPDATE_SCREENSHOT === '1' ? docs : join(tmpdir(), `logline-${process.pid}-${name}`);
};

describe('admin page: consumers, parked events and time travel in headless Chromium', () => {
  const dir = tempDir('logline-admin-parked-');
  let available = false;
  let server: RunningServer;
  let subscription: ConsumerHandle;
  let closeStore: () => Promise<void>;
  let store: EventStore;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];
  let failing = true;
  const mailed: string[] = [];

  beforeAll(async () => {
    available = ensureChromium();
    const file = join(dir.path, 'admin-parked.db');
    store = await openStore(`sqlite:${file}`);
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
    // Charts sample every 200 ms here (5 s by default), so the test sees several samples quickly.
    process.env.LOGLINE_HISTORY_INTERVAL_MS = '200';
    server = await startServer({
      store: `sqlite:${file}`,
      port: 0,
      keysFile,
      consumers: [subscription],
      logger: pino({ level: 'silent' }),
    });
    if (!available) return;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    // One tab for every test: it keeps the API key (sessionStorage) as a person's tab would.
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (error) => pageErrors.push(String(error)));
    await page.goto(server.url);
    await page.locator('#key-form:not([hidden])').waitFor();
    await page.fill('#key-input', OPERATOR_KEY);
    await page.keyboard.press('Enter');
    await page.locator('#live-status.live').waitFor({ timeout: 10_000 });
  }, 660_000);

  afterAll(async () => {
    delete process.env.LOGLINE_HISTORY_INTERVAL_MS;
    expect(pageErrors).toEqual([]);
    await page?.close();
    await browser?.close();
    await subscription?.stop();
    await server?.close();
    await closeStore?.();
    dir.remove();
  });

  it('asked for a key (kept for the tab); lists parked events, replays one and skips the other from the page', async (ctx) => {
    if (!available) ctx.skip();
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

    await page.screenshot({ path: screenshotPath('admin-parked.png') });

    failing = false;
    await first.getByRole('button', { name: 'Replay' }).click();
    await expect.poll(() => page.locator('#parked-status').textContent()).toMatch(/replayed 1, still failing 0/);
    expect(mailed).toEqual(['OrderPlaced']);
    await expect.poll(() => page.locator('#parked li[data-parked]').count()).toBe(1);

    await page.locator('#parked li[data-parked]').first().getByRole('button', { name: 'Skip' }).click();
    await expect.poll(() => page.locator('#parked-count').textContent()).toBe('0');
    expect(mailed).toEqual(['OrderPlaced']);
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it('a consumer group row expands to its partitions and the workers holding their leases', async (ctx) => {
    if (!available) ctx.skip();
    // Two workers of one group in this process, on the file the server reads its leases from.
    const joinAs = (member: string) =>
      joinGroup(store, { group: 'shipping', member, partitions: 4, leaseMs: 2000, heartbeatMs: 50, handler: () => {} });
    const workers = [await joinAs('worker-a'), await joinAs('worker-b')];
    try {
      const row = page.locator('#subscriptions tr.group[data-name="shipping"]');
      await expect.poll(() => row.textContent(), { timeout: 10_000 }).toMatch(/group of 4 partitions, 2 workers/);
      const partitions = page.locator('#subscriptions tr.partition[data-group="shipping"]');
      expect(await partitions.count()).toBe(0);
      // Keyboard: focus the group's button and press Enter.
      await row.getByRole('button').focus();
      await page.keyboard.press('Enter');
      await expect.poll(() => partitions.count()).toBe(4);
      expect(await row.getByRole('button').getAttribute('aria-expanded')).toBe('true');
      const owners = await page.locator('#subscriptions tr.partition[data-group="shipping"] td.owner').allTextContents();
      expect(owners.sort()).toEqual(['owner worker-a', 'owner worker-a', 'owner worker-b', 'owner worker-b']);
      for (const worker of workers) {
        for (const partition of worker.partitions) {
          expect(await page.locator(`#subscriptions tr.partition[data-partition="shipping#${partition}"] td.owner`).textContent()).toBe(
            `owner ${worker.member}`,
          );
        }
      }
      // Still open after the next refresh (every 2 s).
      await sleep(2200);
      expect(await partitions.count()).toBe(4);
      await page.screenshot({ path: screenshotPath('admin-groups.png') });
    } finally {
      await Promise.all(workers.map((worker) => worker.stop()));
    }
  }, 30_000);

  it('time travel: the stream as of a recorded time and as of an occurred time; late and correction events marked', async (ctx) => {
    if (!available) ctx.skip();
    const day = 24 * 3600 * 1000;
    const late = await store.append('account-9', [
      { type: 'Deposited', data: { amount: 100 }, occurredAt: new Date(Date.now() - 10 * day).toISOString() },
    ]);
    const [deposit] = await collect(store.read('account-9'));
    await sleep(50);
    const between = new Date().toISOString();
    await sleep(50);
    await store.append('account-9', [
      { type: 'InterestPaid', data: { amount: 1 } },
      { type: 'InterestCorrected', data: { amount: 2 }, metadata: { correctionOf: [deposit?.id ?? ''] } },
    ]);
    expect(late.streamVersion).toBe(1);

    await page.fill('#stream-search', 'account-');
    await page.locator('#streams li[data-stream="account-9"]').click();
    await expect
      .poll(() => page.locator('#stream-events .event .type').allTextContents())
      .toEqual(['InterestCorrected', 'InterestPaid', 'Deposited']);
    const depositCard = page.locator('#stream-events .event').nth(2);
    expect(await depositCard.locator('.badge.late').count()).toBe(1);
    expect(await depositCard.locator('.meta').textContent()).toMatch(/occurred .* · recorded /);
    expect(await page.locator('#stream-events .event').first().locator('.badge.correction').count()).toBe(1);

    // As of a recorded time: what the store knew then (only the late deposit).
    await page.fill('#as-of', between);
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#stream-events .event .type').allTextContents()).toEqual(['Deposited']);
    expect(await page.locator('#as-of-status').textContent()).toMatch(/^1 of 3 events as of recorded time/);
    await page.screenshot({ path: screenshotPath('admin-time-travel.png') });
    // As of an occurred time five days ago: what had happened by then; corrections are not events that happened.
    await page.selectOption('#as-of-kind', 'occurred');
    await page.fill('#as-of', new Date(Date.now() - 5 * day).toISOString());
    await page.click('#as-of-form button[type="submit"]');
    await expect.poll(() => page.locator('#as-of-status').textContent()).toMatch(/^1 of 3 events as of occurred time/);
    await page.fill('#as-of', new Date(Date.now() + day).toISOString());
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#stream-events .event .type').allTextContents()).toEqual(['InterestPaid', 'Deposited']);
    await page.fill('#as-of', 'last tuesday');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#as-of-status').textContent()).toMatch(/not a time/);
    await page.click('#as-of-clear');
    await expect.poll(() => page.locator('#stream-events .event').count()).toBe(3);
  }, 60_000);

  it("charts throughput and consumer lag over time from the server's own counters", async (ctx) => {
    if (!available) ctx.skip();
    const auth = { authorization: `Bearer ${OPERATOR_KEY}`, 'content-type': 'application/json' };
    for (let i = 0; i < 5; i++) {
      const appended = await fetch(`${server.url}/v1/streams/load-1`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ events: [{ type: 'Tick', data: { i } }] }),
      });
      expect(appended.status).toBe(201);
      expect((await fetch(`${server.url}/v1/streams/load-1`, { headers: auth })).status).toBe(200);
    }
    await expect
      .poll(
        async () => {
          const history = (await (await fetch(`${server.url}/v1/history`, { headers: auth })).json()) as {
            samples: Array<{ appendsPerSec: number; readsPerSec: number; lag: Record<string, number> }>;
          };
          return {
            appended: history.samples.some((s) => s.appendsPerSec > 0),
            read: history.samples.some((s) => s.readsPerSec > 0),
            lagOfMailer: history.samples.some((s) => 'mailer' in s.lag),
          };
        },
        { timeout: 10_000 },
      )
      .toEqual({ appended: true, read: true, lagOfMailer: true });
    // The page redraws from the history: one line per series, several points each.
    const points = (selector: string) =>
      page
        .locator(selector)
        .getAttribute('points')
        .then((p) => (p ?? '').split(' ').filter(Boolean).length);
    await expect.poll(() => points('#throughput polyline[data-series="appends/s"]'), { timeout: 10_000 }).toBeGreaterThan(2);
    await expect.poll(() => points('#lag-chart polyline[data-series="mailer"]'), { timeout: 10_000 }).toBeGreaterThan(1);
    expect(await page.locator('#throughput figcaption').textContent()).toMatch(/appends\/s .* reads\/s .* SSE clients 1/);
    await page.screenshot({ path: screenshotPath('admin-charts.png') });
  }, 60_000);

  it('keyboard navigable, readable at phone width, a near-1 MiB event without freezing, projection versions marked', async (ctx) => {
    if (!available) ctx.skip();
    // An event just under the 1 MiB limit with many small values (the worst case for a DOM tree).
    const items = Array.from({ length: 16_500 }, (_, i) => ({ sku: `SKU-${i}`, qty: i % 7, note: 'x'.repeat(20) }));
    const big = await store.append('big-1', [{ type: 'BulkImported', data: { items } }]);
    expect(JSON.stringify(items).length).toBeGreaterThan(900 * 1024);
    const projection = await startProjection(store, defineProjection({ name: 'bulk', handlers: { BulkImported: () => {} } }));
    await projection.waitForPosition(big.position, { timeout: 10_000 });

    await page.setViewportSize({ width: 1280, height: 800 });
    await page.fill('#stream-search', 'big-');
    const item = page.locator('#streams li[data-stream="big-1"]');
    await item.waitFor();
    // Keyboard only: focus the stream and press Enter.
    await item.focus();
    const started = Date.now();
    await page.keyboard.press('Enter');
    await page.locator('#stream-events .event .type', { hasText: 'BulkImported' }).waitFor({ timeout: 10_000 });
    const showAll = page.getByRole('button', { name: /Show all \d+ KiB/ });
    await showAll.focus();
    await page.keyboard.press('Enter');
    await expect
      .poll(() => page.locator('#stream-events .large pre').evaluate((pre) => pre.textContent?.length ?? 0))
      .toBeGreaterThan(900 * 1024);
    // The page answered within seconds and still answers (no frozen main thread).
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await page.evaluate('1 + 1')).toBe(2);

    await expect.poll(() => page.locator('#subscriptions tr[data-name="bulk@v1"]').textContent()).toMatch(/live version/);

    // Phone width: one column, nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.fill('#stream-search', 'account-');
    await expect.poll(() => page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    await page.screenshot({ path: screenshotPath('admin-phone.png') });
    await page.setViewportSize({ width: 1280, height: 800 });
    await projection.stop();
  }, 60_000);

  it('searches streams by prefix or by category', async (ctx) => {
    if (!available) ctx.skip();
    await store.append('accounting-1', [{ type: 'Booked', data: {} }]);
    await store.append('account-42', [{ type: 'Opened', data: {} }]);
    await page.selectOption('#search-mode', 'prefix');
    await page.fill('#stream-search', 'account');
    await expect
      .poll(() => page.locator('#streams li').evaluateAll((items) => items.map((li) => li.getAttribute('data-stream'))))
      .toEqual(['account-42', 'account-9', 'accounting-1']);
    await page.selectOption('#search-mode', 'category');
    await expect
      .poll(() => page.locator('#streams li').evaluateAll((items) => items.map((li) => li.getAttribute('data-stream'))))
      .toEqual(['account-42', 'account-9']);
  }, 30_000);
});
