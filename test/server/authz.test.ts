/**
 * Authorization matrix (issue 10, items 1 and 2): every read and write endpoint, asked by keys
 * with partial rights, with the tricks that once split the rights check from the handler:
 * repeated parameters, percent-encoding, empty prefixes, letter case, path segments that decode
 * to '/'. Every such request is refused (403, or 400 for a malformed one) and carries no data.
 * Requests go out through node:http with the path exactly as written (fetch would normalize it).
 */
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get, post, type ServerProcess, startServerProcess, tempDir } from './process.js';

const ADMIN = 'admin-key-0123456789';
const ORDERS = 'orders-key-0123456789';
const READER = 'reader-key-0123456789';
const SCRAPER = 'scraper-key-0123456789';
const KEYS = {
  keys: [
    { name: 'admin', key: ADMIN, read: ['*'], write: ['*'] },
    { name: 'orders', key: ORDERS, read: ['order-'], write: ['order-'] },
    { name: 'reader', key: READER, read: ['order-'], write: [] },
    { name: 'scraper', key: SCRAPER, metrics: true },
  ],
};
/** In every event outside the `order-` streams: no refused request may carry it. */
const SECRET = 'TOP-SECRET-PAYLOAD';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/**
 * Sends a request with this exact path and reads the answer; an SSE answer is read for
 * `sseMs` and then cut, which is long enough for the catch-up of a few events.
 */
function send(base: string, method: 'GET' | 'POST', path: string, key?: string, body?: string, sseMs = 400): Promise<Answer> {
  const { hostname, port } = new URL(base);
  const headers: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      const done = () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text });
      res.on('end', done);
      if (String(res.headers['content-type']).startsWith('text/event-stream')) {
        setTimeout(() => {
          res.destroy();
          done();
        }, sseMs);
      }
    });
    req.on('error', reject);
    req.end(body);
  });
}

const event = (marker: string) => JSON.stringify({ events: [{ type: 'Seeded', data: { marker } }] });

/** [key, method, path, statuses a correct server may answer]. */
type Case = [key: string, method: 'GET' | 'POST', path: string, allowed: number[]];

const DENIED = [403];
const MALFORMED = [400];

// Read endpoints: the `orders` key may read only `order-` streams.
const readCases: Case[] = [
  // $all, page and SSE alike
  ...['/v1/all', '/v1/all/subscribe'].flatMap((path): Case[] => [
    [ORDERS, 'GET', path, DENIED],
    [ORDERS, 'GET', `${path}?streamPrefix=`, DENIED],
    [ORDERS, 'GET', `${path}?streamPrefix=order-&streamPrefix=`, MALFORMED],
    [ORDERS, 'GET', `${path}?streamPrefix=&streamPrefix=order-`, MALFORMED],
    [ORDERS, 'GET', `${path}?stream%50refix=order-&streamPrefix=`, MALFORMED],
    [ORDERS, 'GET', `${path}?streamPrefix=order-&streamprefix=`, MALFORMED],
    [ORDERS, 'GET', `${path}?StreamPrefix=order-`, MALFORMED],
    [ORDERS, 'GET', `${path}?streamPrefix=ORDER-`, DENIED],
    [ORDERS, 'GET', `${path}?streamPrefix=secret`, DENIED],
    [ORDERS, 'GET', `${path}?streamPrefix=%73ecret-`, DENIED],
    [ORDERS, 'GET', `${path}?streamPrefix=order-%2F..%2Fsecret`, MALFORMED],
    [ORDERS, 'GET', `${path}?streamPrefix[]=order-`, MALFORMED],
    // A category `c` is the streams `c-…`: it needs read on that prefix, and cannot hold a '-'.
    [ORDERS, 'GET', `${path}?category=secret`, DENIED],
    [ORDERS, 'GET', `${path}?category=SECRET`, DENIED],
    [ORDERS, 'GET', `${path}?category=%73ecret`, DENIED],
    [ORDERS, 'GET', `${path}?category=ord`, DENIED],
    [ORDERS, 'GET', `${path}?category=Order`, DENIED],
    [ORDERS, 'GET', `${path}?category=secret&streamPrefix=order-`, DENIED],
    [ORDERS, 'GET', `${path}?category=order&streamPrefix=secret`, DENIED],
    [ORDERS, 'GET', `${path}?category=order&streamPrefix=`, [200]],
    [ORDERS, 'GET', `${path}?category=`, MALFORMED],
    [ORDERS, 'GET', `${path}?category=order-`, MALFORMED],
    [ORDERS, 'GET', `${path}?category=order%2D1`, MALFORMED],
    [ORDERS, 'GET', `${path}?category=order&category=secret`, MALFORMED],
    [ORDERS, 'GET', `${path}?category=order&Category=secret`, MALFORMED],
    [ORDERS, 'GET', `${path}?category=order%2F..%2Fsecret`, MALFORMED],
    // A second key in the query does not widen the one in the header.
    [ORDERS, 'GET', `${path}?api_key=${ADMIN}`, DENIED],
    [ORDERS, 'GET', `${path}?streamPrefix=order-&api_key=${ADMIN}&api_key=${ORDERS}`, MALFORMED],
  ]),
  // one stream, page and SSE alike
  ...['', '/subscribe'].flatMap((suffix): Case[] => [
    [ORDERS, 'GET', `/v1/streams/secret-1${suffix}`, DENIED],
    [ORDERS, 'GET', `/v1/streams/%73ecret-1${suffix}`, DENIED],
    [ORDERS, 'GET', `/v1/streams/SECRET-1${suffix}`, DENIED],
    [ORDERS, 'GET', `/v1/streams/Order-1${suffix}`, DENIED],
    [ORDERS, 'GET', `/v1/streams/order-1%2F..%2Fsecret-1${suffix}`, MALFORMED],
    [ORDERS, 'GET', `/v1/streams/order-1%2f..%2fsecret-1${suffix}`, MALFORMED],
    [ORDERS, 'GET', `/v1/streams/order-1%252F..%252Fsecret-1${suffix}`, MALFORMED],
    [ORDERS, 'GET', `/v1/streams/secret-1${suffix}?from=1&from=1`, [400, 403]],
    // Dot segments sent as written: resolved before routing (then refused), or no route matches.
    [ORDERS, 'GET', `/v1/streams/order-1/../secret-1${suffix}`, [403, 404]],
    [ORDERS, 'GET', `/v1/streams/order-1/%2e%2e/secret-1${suffix}`, [403, 404]],
  ]),
  [ORDERS, 'GET', '/v1/streams/order-1/subscribe?streamPrefix=secret', MALFORMED],
  [ORDERS, 'GET', '/v1/streams/order-1/subscribe?streamPrefix=', MALFORMED],
  // the stream list
  [ORDERS, 'GET', '/v1/streams', DENIED],
  [ORDERS, 'GET', '/v1/streams?prefix=', DENIED],
  [ORDERS, 'GET', '/v1/streams?prefix=secret', DENIED],
  [ORDERS, 'GET', '/v1/streams?prefix=order-&prefix=', MALFORMED],
  [ORDERS, 'GET', '/v1/streams?prefix=&prefix=order-', MALFORMED],
  [ORDERS, 'GET', '/v1/streams?Prefix=order-', MALFORMED],
  [ORDERS, 'GET', '/v1/streams?prefix=order-&streamPrefix=', MALFORMED],
  // store-wide views
  [ORDERS, 'GET', '/v1/stats', DENIED],
  [ORDERS, 'GET', '/v1/stats?streamPrefix=order-', MALFORMED],
  [ORDERS, 'GET', '/v1/subscriptions', DENIED],
  [ORDERS, 'GET', '/v1/subscriptions?prefix=order-', MALFORMED],
  [ORDERS, 'GET', '/metrics', DENIED],
  [ORDERS, 'GET', '/metrics?streamPrefix=order-', MALFORMED],
  [READER, 'GET', '/metrics', DENIED],
  // letter case and encoding of the route itself
  [ORDERS, 'GET', '/V1/ALL', [404]],
  [ORDERS, 'GET', '/v1/All/subscribe', [404]],
  [ORDERS, 'GET', '/v1/all%2Fsubscribe', [404]],
  [ORDERS, 'GET', '/v1/%61ll', DENIED],
  [ORDERS, 'GET', '/v1/%61ll/subscribe?streamPrefix=order-&streamPrefix=', MALFORMED],
  // the metrics right is for /metrics only
  [SCRAPER, 'GET', '/v1/all', DENIED],
  [SCRAPER, 'GET', '/v1/stats', DENIED],
  [SCRAPER, 'GET', '/v1/streams', DENIED],
  [SCRAPER, 'GET', '/v1/streams/secret-1', DENIED],
];

// Write endpoints: `orders` may write only `order-` streams, `reader` and `scraper` nothing.
const writeCases: Case[] = [
  [ORDERS, 'POST', '/v1/streams/secret-2', DENIED],
  [ORDERS, 'POST', '/v1/streams/%73ecret-2', DENIED],
  [ORDERS, 'POST', '/v1/streams/SECRET-2', DENIED],
  [ORDERS, 'POST', '/v1/streams/Order-2', DENIED],
  [ORDERS, 'POST', '/v1/streams/order-2%2F..%2Fsecret-2', MALFORMED],
  [ORDERS, 'POST', '/v1/streams/order-2%252F..%252Fsecret-2', MALFORMED],
  [ORDERS, 'POST', '/v1/streams/order-2/../secret-2', [403, 404]],
  [ORDERS, 'POST', `/v1/streams/secret-2?api_key=${ADMIN}`, DENIED],
  [ORDERS, 'POST', '/v1/streams/order-2?stream=secret-2', MALFORMED],
  [ORDERS, 'POST', `/v1/streams/order-2?api_key=${ORDERS}&api_key=${ADMIN}`, MALFORMED],
  [READER, 'POST', '/v1/streams/order-2', DENIED],
  [SCRAPER, 'POST', '/v1/streams/order-2', DENIED],
];

describe('authorization matrix', () => {
  const dir = tempDir();
  let server: ServerProcess;
  let base: string;
  beforeAll(async () => {
    const keysFile = join(dir.path, 'keys.json');
    writeFileSync(keysFile, JSON.stringify(KEYS));
    server = await startServerProcess(['--store', `sqlite:${join(dir.path, 'authz.db')}`, '--keys', keysFile], { LOGLINE_API_KEYS: '' });
    base = server.url;
    for (const stream of ['order-1', 'secret-1', 'SECRET-1', 'Order-1']) {
      const marker = stream === 'order-1' ? 'visible' : SECRET;
      expect((await send(base, 'POST', `/v1/streams/${stream}`, ADMIN, event(marker))).status).toBe(201);
    }
  });
  afterAll(async () => {
    await server?.stop();
    dir.remove();
  });

  it.each(readCases)('%#: read %s %s %s', async (key, method, path, allowed) => {
    const answer = await send(base, method, path, key);
    expect(allowed, `${path}: ${answer.text.slice(0, 200)}`).toContain(answer.status);
    expect(answer.text).not.toContain(SECRET);
  });

  it.each(writeCases)('%#: write %s %s %s', async (key, method, path, allowed) => {
    const answer = await send(base, method, path, key, event(SECRET));
    expect(allowed, `${path}: ${answer.text.slice(0, 200)}`).toContain(answer.status);
  });

  it('nothing the refused writes sent was stored; the permitted reads still work', async () => {
    const all = await send(base, 'GET', '/v1/all?limit=1000', ADMIN);
    const events = (JSON.parse(all.text) as { events: Array<{ streamId: string }> }).events;
    expect(events.map((e) => e.streamId)).toEqual(['order-1', 'secret-1', 'SECRET-1', 'Order-1']);

    // Narrowed to the key's prefix (also percent-encoded), $all and its SSE answer with order- events only.
    for (const path of [
      '/v1/all?streamPrefix=order-',
      '/v1/all?streamPrefix=%6Frder-',
      '/v1/all/subscribe?streamPrefix=order-',
      '/v1/all?category=order',
      '/v1/all?category=%6Frder&types=Seeded',
      '/v1/all/subscribe?category=order',
    ]) {
      const answer = await send(base, 'GET', path, ORDERS);
      expect(answer.status).toBe(200);
      expect(answer.text).toContain('visible');
      expect(answer.text).not.toContain(SECRET);
    }
    expect((await send(base, 'GET', '/v1/streams?prefix=order-', ORDERS)).status).toBe(200);
    expect((await send(base, 'GET', '/v1/streams/%6Frder-1', ORDERS)).status).toBe(200);
  });

  it('/metrics needs read on every stream or the metrics right', async () => {
    expect((await send(base, 'GET', '/metrics', ADMIN)).status).toBe(200);
    const scraped = await send(base, 'GET', '/metrics', SCRAPER);
    expect(scraped.status).toBe(200);
    expect(scraped.text).toMatch(/^logline_events_stored 4$/m);
  });

  it('errors to requests without a valid key carry no store information', async () => {
    for (const key of [undefined, 'wrong-key-0123456789']) {
      const refused = await send(base, 'POST', '/v1/streams/order-1', key, event('x'));
      expect(refused.status).toBe(401);
      expect(refused.headers['logline-position']).toBeUndefined();
      expect(refused.text).not.toMatch(/position|head/i);
    }
    // A key refused by its rights still learns the head (as after any write of its own).
    const forbidden = await post(`${base}/v1/streams/secret-9`, JSON.parse(event('x')), { authorization: `Bearer ${ORDERS}` });
    expect(forbidden.status).toBe(403);
    expect(forbidden.headers.get('logline-position')).toMatch(/^\d+$/);
    expect((await get(`${base}/v1/stats`, { authorization: `Bearer ${ADMIN}` })).body.events).toBe(4);
  });

  it('/v1/health stays public but shows the backend and head only to a valid key', async () => {
    for (const key of [undefined, 'wrong-key-0123456789']) {
      const health = await send(base, 'GET', '/v1/health', key);
      expect(health.status).toBe(200);
      expect(JSON.parse(health.text)).toEqual({ status: 'ok' });
    }
    for (const key of [ORDERS, SCRAPER]) {
      const health = await send(base, 'GET', '/v1/health', key);
      expect(JSON.parse(health.text)).toEqual({ status: 'ok', backend: 'sqlite', headPosition: '4' });
    }
    expect(JSON.parse((await send(base, 'GET', `/v1/health?api_key=${READER}`)).text)).toMatchObject({ headPosition: '4' });
  });
});
