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
const FORGETTER = 'forgetter-key-0123456789';
const KEYS = {
  keys: [
    { name: 'admin', key: ADMIN, read: ['*'], write: ['*'] },
    { name: 'orders', key: ORDERS, read: ['order-'], write: ['order-'] },
    { name: 'reader', key: READER, read: ['order-'], write: [] },
    { name: 'scraper', key: SCRAPER, metrics: true },
    { name: 'forgetter', key: FORGETTER, admin: true },
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
function send(base: string, method: Method, path: string, key?: string, body?: string, sseMs = 400): Promise<Answer> {
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

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
/** [key, method, path, statuses a correct server may answer]. */
type Case = [key: string, method: Method, path: string, allowed: number[]];

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
  // stream metadata: read on the stream; the list of every stream's: read on every stream
  [ORDERS, 'GET', '/v1/streams/secret-1/metadata', DENIED],
  [ORDERS, 'GET', '/v1/streams/%73ecret-1/metadata', DENIED],
  [ORDERS, 'GET', '/v1/streams/order-1%2F..%2Fsecret-1/metadata', MALFORMED],
  [ORDERS, 'GET', '/v1/streams/order-1/../secret-1/metadata', [403, 404]],
  [SCRAPER, 'GET', '/v1/streams/order-1/metadata', DENIED],
  [ORDERS, 'GET', '/v1/lifecycles', DENIED],
  [ORDERS, 'GET', '/v1/lifecycles?after=order-', DENIED],
  [ORDERS, 'GET', '/v1/lifecycles?prefix=order-', MALFORMED],
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
  // ingest: the same right as an append (write on the stream)
  [ORDERS, 'POST', '/v1/ingest/secret-2', DENIED],
  [ORDERS, 'POST', '/v1/ingest/%73ecret-2', DENIED],
  [ORDERS, 'POST', '/v1/ingest/SECRET-2', DENIED],
  [ORDERS, 'POST', '/v1/ingest/Order-2', DENIED],
  [ORDERS, 'POST', '/v1/ingest/order-2%2F..%2Fsecret-2', MALFORMED],
  [ORDERS, 'POST', '/v1/ingest/order-2%252F..%252Fsecret-2', MALFORMED],
  [ORDERS, 'POST', '/v1/ingest/order-2/../secret-2', [403, 404]],
  [ORDERS, 'POST', `/v1/ingest/secret-2?api_key=${ADMIN}`, DENIED],
  [ORDERS, 'POST', '/v1/ingest/order-2?stream=secret-2', MALFORMED],
  [ORDERS, 'POST', '/V1/INGEST/secret-2', [404]],
  [READER, 'POST', '/v1/ingest/order-2', DENIED],
  [SCRAPER, 'POST', '/v1/ingest/order-2', DENIED],
];

/** A write's body: an append, or an ingest (each event with a producer id). */
const writeBody = (path: string, marker: string) =>
  path.toLowerCase().startsWith('/v1/ingest/')
    ? JSON.stringify({ events: [{ id: `p-${marker}`, type: 'Seeded', data: { marker } }] })
    : event(marker);

// Forgetting a subject (and looking one up) needs the admin right: no stream right implies it.
const adminCases: Case[] = [
  ...(['DELETE', 'GET'] as const).flatMap((method): Case[] => [
    [ADMIN, method, '/v1/subjects/person-1', DENIED],
    [ORDERS, method, '/v1/subjects/person-1', DENIED],
    [READER, method, '/v1/subjects/person-1', DENIED],
    [SCRAPER, method, '/v1/subjects/person-1', DENIED],
    [ADMIN, method, `/v1/subjects/person-1?api_key=${FORGETTER}`, DENIED],
    [ADMIN, method, `/v1/subjects/person-1?subject=x`, MALFORMED],
    [FORGETTER, method, `/v1/subjects/person-1?api_key=${FORGETTER}&api_key=${ADMIN}`, MALFORMED],
  ]),
  // The admin right opens nothing else.
  [FORGETTER, 'GET', '/v1/all', DENIED],
  [FORGETTER, 'GET', '/v1/streams/secret-1', DENIED],
  [FORGETTER, 'POST', '/v1/streams/secret-2', DENIED],
  // metadata and deletes: write on the stream; a scavenge: write on every stream
  [ORDERS, 'PUT', '/v1/streams/secret-1/metadata', DENIED],
  [ORDERS, 'PUT', '/v1/streams/%73ecret-1/metadata', DENIED],
  [ORDERS, 'PUT', '/v1/streams/order-1%2F..%2Fsecret-1/metadata', MALFORMED],
  [READER, 'PUT', '/v1/streams/order-1/metadata', DENIED],
  // a restored stream start: write on the stream
  [ORDERS, 'PUT', '/v1/streams/secret-1/start', DENIED],
  [ORDERS, 'PUT', '/v1/streams/%73ecret-1/start', DENIED],
  [READER, 'PUT', '/v1/streams/order-1/start', DENIED],
  [ORDERS, 'PUT', '/v1/streams/order-1/start?version=3', MALFORMED],
  [ORDERS, 'DELETE', '/v1/streams/secret-1', DENIED],
  [ORDERS, 'DELETE', '/v1/streams/SECRET-1?hard=true', DENIED],
  [ORDERS, 'DELETE', '/v1/streams/%73ecret-1?hard=true', DENIED],
  [ORDERS, 'DELETE', '/v1/streams/order-1%2F..%2Fsecret-1', MALFORMED],
  [ORDERS, 'DELETE', '/v1/streams/order-1/../secret-1', [403, 404]],
  [ORDERS, 'DELETE', `/v1/streams/secret-1?api_key=${ADMIN}`, DENIED],
  [ORDERS, 'DELETE', '/v1/streams/order-1?hard=true&hard=false', MALFORMED],
  [READER, 'DELETE', '/v1/streams/order-1', DENIED],
  [SCRAPER, 'DELETE', '/v1/streams/order-1?hard=true', DENIED],
  [ORDERS, 'POST', '/v1/scavenge', DENIED],
  [READER, 'POST', '/v1/scavenge', DENIED],
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
    const answer = await send(base, method, path, key, method === 'DELETE' ? undefined : writeBody(path, SECRET));
    expect(allowed, `${path}: ${answer.text.slice(0, 200)}`).toContain(answer.status);
  });

  it.each(adminCases)('%#: admin %s %s %s', async (key, method, path, allowed) => {
    const answer = await send(base, method, path, key, method === 'POST' ? event(SECRET) : undefined);
    expect(allowed, `${path}: ${answer.text.slice(0, 200)}`).toContain(answer.status);
    expect(answer.text).not.toContain(SECRET);
  });

  it('nothing the refused writes sent was stored; the permitted reads still work', async () => {
    const all = await send(base, 'GET', '/v1/all?limit=1000', ADMIN);
    const events = (JSON.parse(all.text) as { events: Array<{ streamId: string }> }).events;
    expect(events.map((e) => e.streamId)).toEqual(['order-1', 'secret-1', 'SECRET-1', 'Order-1']);
    // No refused metadata change or delete took effect.
    expect(JSON.parse((await send(base, 'GET', '/v1/lifecycles', ADMIN)).text)).toEqual({ streams: [] });

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

  // Last: it stores an event the counts above do not expect.
  it('a key with write on the stream may ingest; the event is stored once under its producer id', async () => {
    for (let attempt = 0; attempt < 2; attempt++) {
      const answer = await send(base, 'POST', '/v1/ingest/order-9', ORDERS, writeBody('/v1/ingest/order-9', 'ingested'));
      expect(answer.status, answer.text).toBe(201);
    }
    const page = JSON.parse((await send(base, 'GET', '/v1/streams/order-9', ORDERS)).text) as { events: Array<{ metadata: unknown }> };
    expect(page.events.map((e) => e.metadata)).toEqual([{ ingestId: 'p-ingested' }]);
  });

  // Also after the counts: it adds events they do not expect.
  it('only the admin right forgets a subject; refused requests forget nothing', async () => {
    const signedUp = { type: 'SignedUp', data: { email: SECRET, plan: 'pro' }, metadata: { subject: 'person-1', personal: ['email'] } };
    expect((await send(base, 'POST', '/v1/streams/order-person', ADMIN, JSON.stringify({ events: [signedUp] }))).status).toBe(201);
    for (const key of [ADMIN, ORDERS, READER, SCRAPER]) {
      expect((await send(base, 'DELETE', '/v1/subjects/person-1', key)).status).toBe(403);
    }
    expect((await send(base, 'GET', '/v1/streams/order-person', ORDERS)).text).toContain(SECRET);

    const forgot = await send(base, 'DELETE', '/v1/subjects/person-1', FORGETTER);
    expect(forgot.status).toBe(200);
    expect(JSON.parse(forgot.text)).toMatchObject({ subject: 'person-1', alreadyForgotten: false });
    const read = await send(base, 'GET', '/v1/streams/order-person', ORDERS);
    expect(read.text).not.toContain(SECRET);
    expect(JSON.parse(read.text).events[0].metadata).toMatchObject({ subject: 'person-1', forgotten: true });
    const again = await send(base, 'DELETE', '/v1/subjects/person-1', FORGETTER);
    expect([again.status, JSON.parse(again.text).alreadyForgotten]).toEqual([200, true]);
    expect(JSON.parse((await send(base, 'GET', '/v1/subjects/person-1', FORGETTER)).text)).toMatchObject({
      forgottenAt: expect.any(String),
    });
    const unknown = await send(base, 'DELETE', '/v1/subjects/nobody', FORGETTER);
    expect([unknown.status, JSON.parse(unknown.text).error]).toEqual([404, 'UnknownSubject']);
  });

  it('a key manages metadata and deletes of its own streams only', async () => {
    const metadata = JSON.stringify({ maxCount: 1 });
    expect((await send(base, 'POST', '/v1/streams/order-7', ORDERS, event('a'))).status).toBe(201);
    expect((await send(base, 'POST', '/v1/streams/order-7', ORDERS, event('b'))).status).toBe(201);
    expect((await send(base, 'PUT', '/v1/streams/order-7/metadata', ORDERS, metadata)).status).toBe(200);
    const read = await send(base, 'GET', '/v1/streams/order-7/metadata', READER);
    expect(JSON.parse(read.text)).toEqual({ streamId: 'order-7', version: 2, maxCount: 1 });
    expect((await send(base, 'DELETE', '/v1/streams/order-7?hard=true', ORDERS)).status).toBe(200);
    expect((await send(base, 'GET', '/v1/streams/order-7', READER)).status).toBe(410);
    expect((await send(base, 'POST', '/v1/streams/order-7', ORDERS, event('c'))).status).toBe(410);
    expect((await send(base, 'POST', '/v1/scavenge', ADMIN)).status).toBe(200);
  });
});
