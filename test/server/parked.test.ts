/**
 * The parked-events API against a real server with API keys and a durable subscription running in
 * its process: list with error and stack, replay one through the subscription's handler, skip one;
 * a key without rights on every stream is refused; bad input is a typed 4xx and changes nothing.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/index.js';
import { type ConsumerHandle, startSubscription } from '../../src/projections.js';
import { type RunningServer, startServer } from '../../src/server/serve.js';
import { tempDir } from './process.js';

const KEYS = {
  keys: [
    { name: 'operator', key: 'operator-key-0123456789', read: ['*'], write: ['*'] },
    { name: 'viewer', key: 'viewer-key-0123456789', read: ['*'], write: [] },
    { name: 'orders', key: 'orders-key-0123456789', read: ['order-'], write: ['order-'] },
  ],
};
const as = (name: 'operator' | 'viewer' | 'orders') => ({ authorization: `Bearer ${name}-key-0123456789` });

describe('parked events over HTTP', () => {
  const dir = tempDir('logline-parked-');
  const file = join(dir.path, 'parked.db');
  let server: RunningServer;
  let subscription: ConsumerHandle;
  let closeStore: () => Promise<void>;
  let failing = true;
  const handled: string[] = [];

  const call = async (method: 'GET' | 'POST', path: string, key?: Record<string, string>, body?: unknown, type = 'application/json') => {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: { ...key, ...(body === undefined ? {} : { 'content-type': type }) },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    return {
      status: response.status,
      body: (await response.json()) as Record<string, unknown> & { parked: Array<Record<string, unknown>> },
    };
  };
  const parkedIds = async () => (await call('GET', '/v1/parked', as('operator'))).body.parked.map((p) => p.id as number);

  beforeAll(async () => {
    // The subscription runs in the server's process (on its own connection to the same file).
    const store = await openStore(`sqlite:${file}`);
    closeStore = () => store.close();
    await store.append('order-1', [
      { type: 'Poison', data: { n: 1 } },
      { type: 'Fine', data: {} },
      { type: 'Poison', data: { n: 2 } },
    ]);
    subscription = await startSubscription(store, {
      name: 'mailer',
      retry: { maxAttempts: 2, initialDelayMs: 1, maxDelayMs: 2 },
      onFailure: 'skip',
      handler: (event) => {
        if (event.type === 'Poison' && failing) throw new Error(`cannot mail ${JSON.stringify(event.data)}`);
        handled.push(event.id);
      },
    });
    await subscription.waitForPosition(3n, { timeout: 10_000 });
    const keysFile = join(dir.path, 'keys.json');
    writeFileSync(keysFile, JSON.stringify(KEYS));
    server = await startServer({
      store: `sqlite:${file}`,
      port: 0,
      keysFile,
      consumers: [subscription],
      logger: pino({ level: 'silent' }),
    });
  });
  afterAll(async () => {
    await subscription?.stop();
    await server?.close();
    await closeStore?.();
    dir.remove();
  });

  it('lists parked events with their error and stack, and which consumers can replay', async () => {
    const { status, body } = await call('GET', '/v1/parked', as('viewer'));
    expect(status).toBe(200);
    expect(body.replayable).toEqual(['mailer']);
    expect(body.parked).toHaveLength(2);
    expect(body.parked[0]).toMatchObject({
      consumer: 'mailer',
      position: '1',
      attempts: 2,
      error: 'cannot mail {"n":1}',
      stack: expect.stringContaining('Error: cannot mail'),
      event: { type: 'Poison', streamId: 'order-1', position: '1', data: { n: 1 } },
    });
    expect((await call('GET', '/v1/parked?consumer=nobody', as('viewer'))).body.parked).toEqual([]);
    const openapi = (await (await fetch(`${server.url}/v1/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(openapi.paths)).toEqual(
      expect.arrayContaining(['/v1/parked', '/v1/parked/replay', '/v1/parked/skip', '/v1/history']),
    );
  });

  it('needs read (listing) or write (replay, skip) on every stream', async () => {
    const ids = await parkedIds();
    expect((await call('GET', '/v1/parked')).status).toBe(401);
    const forbidden = [
      await call('GET', '/v1/parked', as('orders')),
      await call('POST', '/v1/parked/replay', as('orders'), { consumer: 'mailer' }),
      await call('POST', '/v1/parked/skip', as('orders'), { ids }),
      await call('POST', '/v1/parked/replay', as('viewer'), { consumer: 'mailer' }),
      await call('POST', '/v1/parked/skip', as('viewer'), { ids }),
    ];
    for (const response of forbidden) expect(response).toMatchObject({ status: 403, body: { error: 'Forbidden' } });
    expect(await parkedIds()).toEqual(ids);
  });

  it('bad input is a typed error and changes nothing', async () => {
    const ids = await parkedIds();
    const operator = as('operator');
    const cases = [
      [await call('POST', '/v1/parked/replay', operator, { consumer: 'mailer', ids: [-1] }), 400],
      [await call('POST', '/v1/parked/replay', operator, { consumer: 'bad name!' }), 400],
      [await call('POST', '/v1/parked/replay', operator, { consumer: 'mailer', extra: 1 }), 400],
      [await call('POST', '/v1/parked/replay', operator, '{"consumer":', 'application/json'), 400],
      [await call('POST', '/v1/parked/replay', operator, 'consumer=mailer', 'text/plain'), 415],
      [await call('POST', '/v1/parked/skip', operator, { ids: [] }), 400],
      [await call('POST', '/v1/parked/skip', operator, { ids: [...ids, 999_999] }), 404],
      [await call('POST', '/v1/parked/replay', operator, { consumer: 'elsewhere' }), 404],
      [await call('GET', '/v1/parked?consumer=a%20b', operator), 400],
    ] as const;
    for (const [response, status] of cases) {
      expect(response.status, JSON.stringify(response.body)).toBe(status);
      expect(typeof response.body.error).toBe('string');
    }
    expect(await parkedIds()).toEqual(ids);
  });

  it('replays one parked event through the handler, then skips the other', async () => {
    const [first, second] = await parkedIds();
    failing = false;
    const replay = await call('POST', '/v1/parked/replay', as('operator'), { consumer: 'mailer', ids: [first] });
    expect(replay).toMatchObject({ status: 200, body: { replayed: 1, failed: [] } });
    expect(handled).toHaveLength(2); // 'Fine' at first, the replayed 'Poison' now
    expect(await parkedIds()).toEqual([second]);
    const skip = await call('POST', '/v1/parked/skip', as('operator'), { ids: [second] });
    expect(skip).toMatchObject({ status: 200, body: { skipped: 1 } });
    expect(await parkedIds()).toEqual([]);
    expect(handled).toHaveLength(2);
  });
});
