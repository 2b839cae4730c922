/**
 * Logline-Min-Position over real HTTP: a projection-side subscription runs in this process on
 * the same SQLite file as the server process; the server waits for its stored checkpoint.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/core/open-store.js';
import type { EventStore } from '../../src/core/types.js';
import { type SubscriptionHandle, startSubscription } from '../../src/projections.js';
import { get, post, type ServerProcess, startServerProcess, tempDir } from './process.js';

describe('Logline-Min-Position (read-your-writes)', () => {
  const dir = tempDir();
  const storeUrl = `sqlite:${join(dir.path, 'ryw.db')}`;
  let server: ServerProcess;
  let store: EventStore;
  let subscription: SubscriptionHandle;
  let handled = 0;

  beforeAll(async () => {
    store = await openStore(storeUrl);
    subscription = await startSubscription(store, {
      name: 'slow-counter',
      batchSize: 1,
      // Slow on purpose: the server has to wait for it.
      handler: async () => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        handled++;
      },
    });
    server = await startServerProcess(['--store', storeUrl, '--min-position-timeout-ms', '3000']);
  });
  afterAll(async () => {
    await server?.stop();
    await subscription?.stop();
    await store?.close();
    dir.remove();
  });

  it('waits until the subscription has processed the position, then answers; 503 PositionTimeout when it cannot', async () => {
    const written = await post(`${server.url}/v1/streams/ryw-1`, {
      events: Array.from({ length: 5 }, (_, i) => ({ type: 'Counted', data: { i } })),
    });
    const position = written.headers.get('logline-position') as string;
    expect(position).toBe(written.body.position);
    const fresh = await get(`${server.url}/v1/subscriptions/slow-counter`, { 'logline-min-position': position });
    expect(fresh.status).toBe(200);
    expect(BigInt(fresh.body.checkpoint as string)).toBeGreaterThanOrEqual(BigInt(position));
    expect(handled).toBeGreaterThanOrEqual(5);
    expect(fresh.body).toMatchObject({ name: 'slow-counter', kind: 'subscription' });

    const beyond = (BigInt(position) + 1000n).toString();
    const timedOut = await get(`${server.url}/v1/subscriptions/slow-counter`, { 'logline-min-position': beyond });
    expect(timedOut.status).toBe(503);
    expect(timedOut.body).toMatchObject({ error: 'PositionTimeout', position: beyond });
    expect(timedOut.headers.get('retry-after')).toBe('1');

    expect((await get(`${server.url}/v1/subscriptions/slow-counter`, { 'logline-min-position': 'soon' })).status).toBe(400);
    expect((await get(`${server.url}/v1/subscriptions/nobody`)).status).toBe(404);
  });

  it('lists subscriptions with their lag, in JSON and in /metrics', async () => {
    const list = await get(`${server.url}/v1/subscriptions`);
    const entry = (list.body.subscriptions as Array<Record<string, unknown>>).find((s) => s.name === 'slow-counter');
    expect(entry).toMatchObject({ kind: 'subscription', position: expect.stringMatching(/^\d+$/), lag: expect.stringMatching(/^\d+$/) });
    const metrics = await get(`${server.url}/metrics`);
    expect(metrics.text).toMatch(/^logline_subscription_lag\{subscription="slow-counter"\} \d+$/m);
    expect(metrics.text).toMatch(/^logline_subscription_lag_seconds\{subscription="slow-counter"\} [\d.]+$/m);
  });
});
