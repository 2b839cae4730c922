/** The admin page's connectors panel in real headless Chromium: shown with --connectors, with the breaker state. */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { startServer } from '../../src/server/serve.js';
import { post, tempDir } from '../server/process.js';

const CHROMIUM = '/usr/bin/chromium';
const dir = tempDir('logline-conn-admin-');
afterAll(() => dir.remove());

describe('admin page: connectors panel', () => {
  it('lists each connector with its sink, breaker state, lag and parked count', async (ctx) => {
    if (!existsSync(CHROMIUM)) {
      // test/server/admin.test.ts installs it; under CI its absence is a failure, not a skip.
      if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing`);
      ctx.skip();
    }
    const file = join(dir.path, 'connectors.json');
    // Nothing listens on port 1: the breaker opens after two failed deliveries.
    writeFileSync(
      file,
      JSON.stringify({
        connectors: [
          {
            name: 'to-rabbit',
            sink: { type: 'rabbitmq', url: 'amqp://guest:guest@127.0.0.1:1', exchange: 'x' },
            delivery: { breaker: { failures: 2, halfOpenAfterMs: 60_000 }, quickRetries: 0, retry: { initialDelayMs: 10, maxDelayMs: 50 } },
          },
        ],
      }),
    );
    const logger = (await import('pino')).default({ level: 'silent' });
    const server = await startServer({ store: 'memory:', port: 0, connectorsFile: file, logger });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
    try {
      await post(`${server.url}/v1/streams/order-1`, { events: [{ type: 'Placed', data: {} }] });
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(String(error)));
      await page.goto(server.url);
      await page.locator('#connectors-panel').waitFor({ state: 'visible', timeout: 10_000 });
      await expect
        .poll(() => page.locator('#connectors tbody tr').allInnerTexts(), { timeout: 10_000 })
        .toEqual([expect.stringMatching(/to-rabbit\s+rabbitmq\s+open\s+1\s+0/)]);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
      await server.close();
    }
  }, 60_000);
});
