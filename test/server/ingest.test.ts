/**
 * POST /v1/ingest/{stream} against a real server process: producer ids become event ids (UUID v5
 * of stream and id), so retries, also concurrent ones, store nothing twice; bad input is a typed
 * 400 naming the field and stores nothing.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestEventId } from '../../src/server/ingest.js';
import { get, post, type ServerProcess, startServerProcess, tempDir } from './process.js';

describe('POST /v1/ingest/{stream}', () => {
  const dir = tempDir();
  let server: ServerProcess;
  let base: string;
  beforeAll(async () => {
    server = await startServerProcess(['--store', `sqlite:${join(dir.path, 'ingest.db')}`]);
    base = server.url;
  });
  afterAll(async () => {
    await server?.stop();
    dir.remove();
  });

  const head = async () => BigInt((await get(`${base}/v1/stats`)).body.headPosition as string);
  const streamEvents = async (stream: string) =>
    ((await get(`${base}/v1/streams/${stream}`)).body.events ?? []) as Array<{
      id: string;
      data: unknown;
      metadata: Record<string, unknown>;
    }>;

  it('stores the events under ids derived from the producer ids; a retry returns the original result and stores nothing', async () => {
    const body = {
      events: [
        { id: 'shop-42/order-placed', type: 'OrderPlaced', data: { total: 12 } },
        { id: 'shop-42/order-paid', type: 'OrderPaid', data: { amount: 12 }, metadata: { source: 'shop' } },
      ],
    };
    const first = await post(`${base}/v1/ingest/order-42`, body);
    expect(first.status).toBe(201);
    expect(first.body).toEqual({ streamVersion: 2, position: expect.stringMatching(/^\d+$/) });
    const stored = await streamEvents('order-42');
    expect(stored.map((e) => e.id)).toEqual([
      ingestEventId('order-42', 'shop-42/order-placed'),
      ingestEventId('order-42', 'shop-42/order-paid'),
    ]);
    expect(stored[0]?.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(stored.map((e) => e.metadata)).toEqual([
      { ingestId: 'shop-42/order-placed' },
      { source: 'shop', ingestId: 'shop-42/order-paid' },
    ]);

    const headBefore = await head();
    // A retry after a lost answer, and a burst of concurrent retries: one result, nothing new.
    const retries = await Promise.all(Array.from({ length: 8 }, () => post(`${base}/v1/ingest/order-42`, body)));
    for (const retry of [await post(`${base}/v1/ingest/order-42`, body), ...retries]) {
      expect(retry.status).toBe(201);
      expect(retry.body).toEqual(first.body);
    }
    expect(await head()).toBe(headBefore);
    expect(await streamEvents('order-42')).toHaveLength(2);
  });

  it('de-duplicates concurrent first deliveries of the same events', async () => {
    const body = { events: [{ id: 'evt-1', type: 'Happened', data: { n: 1 } }] };
    const answers = await Promise.all(Array.from({ length: 6 }, () => post(`${base}/v1/ingest/race-1`, body)));
    for (const answer of answers) expect(answer.status).toBe(201);
    expect(new Set(answers.map((a) => a.body.position)).size).toBe(1);
    expect(await streamEvents('race-1')).toHaveLength(1);
  });

  it('scopes producer ids by stream; the same id with other content, or mixed into a new request, is a 409', async () => {
    const one = { id: 'same-id', type: 'Happened', data: { n: 1 } };
    expect((await post(`${base}/v1/ingest/scope-a`, { events: [one] })).status).toBe(201);
    expect((await post(`${base}/v1/ingest/scope-b`, { events: [one] })).status).toBe(201);
    const headBefore = await head();
    const changed = await post(`${base}/v1/ingest/scope-a`, { events: [{ ...one, data: { n: 2 } }] });
    expect(changed.status).toBe(409);
    expect(changed.body).toMatchObject({ error: 'IdempotencyConflict' });
    const mixed = await post(`${base}/v1/ingest/scope-a`, { events: [one, { id: 'new-id', type: 'Happened', data: {} }] });
    expect(mixed.status).toBe(409);
    expect(mixed.body).toMatchObject({ error: 'IdempotencyConflict' });
    expect(await head()).toBe(headBefore);
  });

  it('refuses bad input with a typed 400 naming the field, and stores nothing', async () => {
    const headBefore = await head();
    const cases: Array<[unknown, Record<string, string>, RegExp]> = [
      [{ events: [{ type: 'T', data: {} }] }, {}, /id is required/],
      [{ events: [{ id: 'has space', type: 'T', data: {} }] }, {}, /id is required: the producer's id, 1 to 200 visible ASCII/],
      [{ events: [{ id: 'x'.repeat(201), type: 'T', data: {} }] }, {}, /id is required: the producer's id, 1 to 200 visible ASCII/],
      [{ events: [{ id: 7, type: 'T', data: {} }] }, {}, /id is required/],
      [
        {
          events: [
            { id: 'twice', type: 'T', data: {} },
            { id: 'twice', type: 'T', data: {} },
          ],
        },
        {},
        /events\[1\]\.id.*appears twice/,
      ],
      [{ events: [{ id: 'a', type: 'T', data: {}, metadata: { ingestId: 'b' } }] }, {}, /metadata\.ingestId/],
      [{ events: [{ id: 'a', type: 'T', data: {} }] }, { 'if-match': '"0"' }, /If-Match.*ingest takes no precondition/],
      [{ events: [{ id: 'a', type: 'T', data: {} }] }, { 'if-none-match': '*' }, /If-None-Match/],
      [{ events: [{ id: 'a', type: 'T', data: {}, extra: 1 }] }, {}, /extra/],
    ];
    for (const [body, headers, message] of cases) {
      const answer = await post(`${base}/v1/ingest/bad-1`, body, headers);
      expect(answer.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(answer.body.message, JSON.stringify(answer.body)).toMatch(message);
    }
    expect((await post(`${base}/v1/ingest/bad%2F1`, { events: [{ id: 'a', type: 'T', data: {} }] })).status).toBe(400);
    expect((await post(`${base}/v1/ingest/bad-1?from=1`, { events: [{ id: 'a', type: 'T', data: {} }] })).status).toBe(400);
    expect(await head()).toBe(headBefore);
    expect((await get(`${base}/v1/streams/bad-1`)).status).toBe(404);
  });
});
