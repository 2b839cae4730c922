/**
 * Black-box tests of every endpoint of docs/http.md over real HTTP against a real server
 * process. Runs once per backend (sqlite.test.ts, postgres.test.ts).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSse } from '../../src/cli/sse-client.js';
import { get, post, type ServerProcess, startServerProcess } from './process.js';

export interface Backend {
  /** A fresh store URL and how to remove it afterwards. */
  open(): Promise<{ url: string; cleanup(): Promise<void> | void }>;
}

const ev = (type = 'Happened', data: unknown = { n: 1 }) => ({ type, data });

interface Wire {
  id: string;
  type: string;
  streamId: string;
  streamVersion: number;
  position: string;
  data: unknown;
}

/** Reads SSE messages until `count` events arrived (or the timeout); then aborts. */
async function collectSse(url: string, count: number, headers: Record<string, string> = {}, timeoutMs = 10_000) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  const events: Array<{ id: string | undefined; event: Wire }> = [];
  try {
    const response = await fetch(url, { headers, signal: abort.signal });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    for await (const message of readSse(response.body as ReadableStream<Uint8Array>)) {
      if (message.event !== 'message') continue;
      events.push({ id: message.id, event: JSON.parse(message.data) as Wire });
      if (events.length >= count) break;
    }
  } catch (error) {
    if (!abort.signal.aborted) throw error;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return events;
}

export function describeHttpApi(name: string, backend: Backend): void {
  describe(`HTTP API on ${name}`, () => {
    let server: ServerProcess;
    let cleanup: () => Promise<void> | void;
    let base: string;
    const stream = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;

    beforeAll(async () => {
      const store = await backend.open();
      cleanup = store.cleanup;
      server = await startServerProcess(['--store', store.url, '--heartbeat-ms', '200']);
      base = server.url;
    });
    afterAll(async () => {
      expect(await server?.stop()).toBe(0);
      await cleanup?.();
    });

    it('appends: 201, {streamVersion, position}, ETag and Logline-Position', async () => {
      const s = stream('append');
      const first = await post(`${base}/v1/streams/${s}`, { events: [ev(), ev()] });
      expect(first.status).toBe(201);
      expect(first.body).toEqual({ streamVersion: 2, position: expect.stringMatching(/^\d+$/) });
      expect(first.headers.get('etag')).toBe('"2"');
      expect(first.headers.get('logline-position')).toBe(first.body.position);
      const second = await post(`${base}/v1/streams/${s}`, { events: [ev('Other', [1, 'two', null])] });
      expect(second.body.streamVersion).toBe(3);
      expect(BigInt(second.body.position as string)).toBeGreaterThan(BigInt(first.body.position as string));
    });

    it('If-None-Match: * and If-Match: "n" are expected versions; a mismatch is 409 WrongExpectedVersion', async () => {
      const s = stream('occ');
      expect((await post(`${base}/v1/streams/${s}`, { events: [ev()] }, { 'if-match': '*' })).body).toMatchObject({
        error: 'WrongExpectedVersion',
        expected: 'exists',
        actual: 0,
      });
      expect((await post(`${base}/v1/streams/${s}`, { events: [ev()] }, { 'if-none-match': '*' })).status).toBe(201);
      const again = await post(`${base}/v1/streams/${s}`, { events: [ev()] }, { 'if-none-match': '*' });
      expect(again.status).toBe(409);
      expect(again.body).toMatchObject({ error: 'WrongExpectedVersion', expected: 'no_stream', actual: 1 });
      expect(again.headers.get('logline-position')).toMatch(/^\d+$/);
      expect((await post(`${base}/v1/streams/${s}`, { events: [ev()] }, { 'if-match': '"1"' })).status).toBe(201);
      const stale = await post(`${base}/v1/streams/${s}`, { events: [ev()] }, { 'if-match': '"1"' });
      expect(stale.status).toBe(409);
      expect(stale.body).toMatchObject({ error: 'WrongExpectedVersion', expected: 1, actual: 2, message: expect.any(String) });
      expect((await post(`${base}/v1/streams/${s}`, { events: [ev()] }, { 'if-match': '*' })).status).toBe(201);
      expect((await get(`${base}/v1/streams/${s}`)).body.streamVersion).toBe(3);
    });

    it('64 concurrent appends with the same If-Match: exactly one 201, 63 conflicts', async () => {
      const s = stream('race');
      await post(`${base}/v1/streams/${s}`, { events: [ev()] });
      const results = await Promise.all(
        Array.from({ length: 64 }, (_, i) => post(`${base}/v1/streams/${s}`, { events: [ev('Raced', { i })] }, { 'if-match': '"1"' })),
      );
      const statuses = results.map((r) => r.status);
      expect(statuses.filter((x) => x === 201)).toHaveLength(1);
      expect(statuses.filter((x) => x === 409)).toHaveLength(63);
      const page = await get(`${base}/v1/streams/${s}`);
      expect(page.body.streamVersion).toBe(2);
      const winner = results.find((r) => r.status === 201);
      const stored = (page.body.events as Wire[])[1] as Wire;
      expect(winner?.body.position).toBe(stored.position);
    });

    it('an exact retry (same ids, same If-Match) returns the original result; changed content is 409 IdempotencyConflict', async () => {
      const s = stream('retry');
      const events = [
        { id: randomUUID(), type: 'A', data: { x: 1 } },
        { id: randomUUID(), type: 'B', data: { y: 2 } },
      ];
      const first = await post(`${base}/v1/streams/${s}`, { events }, { 'if-none-match': '*' });
      const retry = await post(`${base}/v1/streams/${s}`, { events }, { 'if-none-match': '*' });
      expect(retry.status).toBe(201);
      expect(retry.body).toEqual(first.body);
      const changed = await post(
        `${base}/v1/streams/${s}`,
        { events: [{ ...events[0], data: { x: 9 } }, events[1]] },
        { 'if-none-match': '*' },
      );
      expect(changed.status).toBe(409);
      expect(changed.body.error).toBe('IdempotencyConflict');
      expect((await get(`${base}/v1/streams/${s}`)).body.streamVersion).toBe(2);
    });

    it('bad input is a 4xx with a typed error and stores nothing', async () => {
      const s = stream('bad');
      const url = `${base}/v1/streams/${s}`;
      const cases: Array<[string, Promise<{ status: number; body: Record<string, unknown>; headers: Headers }>, number, string]> = [
        ['malformed JSON', post(url, '{"events":[{"type":'), 400, 'InvalidArgument'],
        ['not an object', post(url, '[1,2]'), 400, 'InvalidArgument'],
        ['no events field', post(url, { event: [] }), 400, 'InvalidArgument'],
        ['unknown field', post(url, { events: [ev()], extra: 1 }), 400, 'InvalidArgument'],
        ['event without type', post(url, { events: [{ data: 1 }] }), 400, 'InvalidEvent'],
        ['bad event id', post(url, { events: [{ id: 'nope', type: 'A', data: 1 }] }), 400, 'InvalidEvent'],
        ['bad occurredAt', post(url, { events: [{ type: 'A', data: 1, occurredAt: 'yesterday' }] }), 400, 'InvalidEvent'],
        ['bad If-Match', post(url, { events: [ev()] }, { 'if-match': 'W/"1"' }), 400, 'InvalidArgument'],
        ['both preconditions', post(url, { events: [ev()] }, { 'if-match': '"1"', 'if-none-match': '*' }), 400, 'InvalidArgument'],
        ['reserved stream id', post(`${base}/v1/streams/$all`, { events: [ev()] }), 400, 'InvalidStreamId'],
        ['stream id too long', post(`${base}/v1/streams/${'x'.repeat(201)}`, { events: [ev()] }), 400, 'InvalidStreamId'],
        ['bad character', post(`${base}/v1/streams/a%20b`, { events: [ev()] }), 400, 'InvalidStreamId'],
        ['text/plain', post(url, { events: [ev()] }, { 'content-type': 'text/plain' }), 415, 'UnsupportedMediaType'],
        ['event over 1 MiB', post(url, { events: [ev('Big', 'x'.repeat(1024 * 1024 + 10))] }), 413, 'EventTooLarge'],
        ['over 10,000 events', post(url, { events: Array.from({ length: 10_001 }, () => ev()) }), 413, 'AppendTooLarge'],
        [
          'body over the byte limit',
          post(url, `{"events":[${Array.from({ length: 18 }, () => JSON.stringify(ev('Big', 'x'.repeat(1000 * 1000)))).join(',')}]}`),
          413,
          'AppendTooLarge',
        ],
      ];
      for (const [label, pending, status, code] of cases) {
        const response = await pending;
        expect({ label, status: response.status, error: response.body.error }).toEqual({ label, status, error: code });
        expect(response.body.message, label).toEqual(expect.any(String));
        expect(response.headers.get('logline-position'), label).toMatch(/^\d+$/);
      }
      expect((await get(url)).status).toBe(404);
    });

    it('reads a stream: pages forward and backward, ETag, 304, 404, 400', async () => {
      const s = stream('read');
      await post(`${base}/v1/streams/${s}`, { events: Array.from({ length: 7 }, (_, i) => ev('N', { i })) });
      const all = await get(`${base}/v1/streams/${s}`);
      expect(all.status).toBe(200);
      expect(all.headers.get('etag')).toBe('"7"');
      expect(all.body).toMatchObject({ streamVersion: 7, next: null });
      const events = all.body.events as Wire[];
      expect(events.map((e) => e.streamVersion)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      expect(events[0]).toMatchObject({ streamId: s, type: 'N', data: { i: 0 }, metadata: {}, position: expect.stringMatching(/^\d+$/) });
      const page1 = await get(`${base}/v1/streams/${s}?limit=3`);
      expect((page1.body.events as Wire[]).map((e) => e.streamVersion)).toEqual([1, 2, 3]);
      expect(page1.body.next).toBe(4);
      const page2 = await get(`${base}/v1/streams/${s}?from=4&limit=3`);
      expect((page2.body.events as Wire[]).map((e) => e.streamVersion)).toEqual([4, 5, 6]);
      const back = await get(`${base}/v1/streams/${s}?direction=backward&limit=3`);
      expect((back.body.events as Wire[]).map((e) => e.streamVersion)).toEqual([7, 6, 5]);
      expect(back.body.next).toBe(4);
      const notModified = await fetch(`${base}/v1/streams/${s}`, { headers: { 'if-none-match': '"7"' } });
      expect(notModified.status).toBe(304);
      expect(notModified.headers.get('etag')).toBe('"7"');
      expect((await get(`${base}/v1/streams/${s}`, { 'if-none-match': '"6"' })).status).toBe(200);
      const missing = await get(`${base}/v1/streams/${stream('missing')}`);
      expect(missing.status).toBe(404);
      expect(missing.body.error).toBe('NotFound');
      for (const q of ['limit=0', 'limit=abc', 'from=-1', 'direction=sideways']) {
        const bad = await get(`${base}/v1/streams/${s}?${q}`);
        expect({ q, status: bad.status, error: bad.body.error }).toEqual({ q, status: 400, error: 'InvalidArgument' });
      }
      expect((await get(`${base}/v1/streams/$bad`)).status).toBe(400);
    });

    it('a page stops at about 4 MiB of JSON, below its limit, and next carries on', async () => {
      const s = stream('heavy');
      const big = 'y'.repeat(900_000);
      const written = await post(`${base}/v1/streams/${s}`, { events: Array.from({ length: 7 }, (_, i) => ev('Heavy', { i, big })) });
      expect(written.status).toBe(201);
      const first = await get(`${base}/v1/streams/${s}?limit=100`);
      const firstEvents = first.body.events as Wire[];
      expect(firstEvents.length).toBe(4);
      expect(first.body.next).toBe(5);
      const second = await get(`${base}/v1/streams/${s}?from=5&limit=100`);
      expect((second.body.events as Wire[]).map((e) => e.streamVersion)).toEqual([5, 6, 7]);
      expect(second.body.next).toBeNull();
      const from = (BigInt(written.body.position as string) - 7n).toString();
      const all = await get(`${base}/v1/all?from=${from}&limit=100`);
      expect((all.body.events as Wire[]).length).toBe(4);
      const rest = await get(`${base}/v1/all?from=${all.body.next}&limit=100`);
      expect((rest.body.events as Wire[]).map((e) => (e.data as { i: number }).i)).toEqual([4, 5, 6]);
    });

    it('stream metadata, soft and hard delete, scavenge: 200, 404 for a soft-deleted stream, 410 for a tombstoned one', async () => {
      const s = stream('life');
      const send = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
        fetch(`${base}${path}`, {
          method,
          headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
          body: body === undefined ? undefined : JSON.stringify(body),
        }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }));
      await post(`${base}/v1/streams/${s}`, { events: [ev(), ev(), ev()] });
      expect((await get(`${base}/v1/streams/${s}/metadata`)).body).toEqual({ streamId: s, version: 3 });
      expect(await send('PUT', `/v1/streams/${s}/metadata`, { maxCount: 2 })).toEqual({
        status: 200,
        body: { streamId: s, version: 3, maxCount: 2 },
      });
      const page = await get(`${base}/v1/streams/${s}`);
      expect((page.body.events as Wire[]).map((e) => e.streamVersion)).toEqual([2, 3]);
      const bad = await send('PUT', `/v1/streams/${s}/metadata`, { maxCount: 0 });
      expect([bad.status, bad.body.error]).toEqual([400, 'InvalidArgument']);
      const stale = await send('DELETE', `/v1/streams/${s}`, undefined, { 'if-match': '"2"' });
      expect([stale.status, stale.body.error]).toEqual([409, 'WrongExpectedVersion']);
      expect(await send('DELETE', `/v1/streams/${s}`, undefined, { 'if-match': '"3"' })).toEqual({
        status: 200,
        body: { streamId: s, streamVersion: 3, deleted: 'soft' },
      });
      const gone = await get(`${base}/v1/streams/${s}`);
      expect([gone.status, gone.body.error, gone.body.deleted]).toEqual([404, 'NotFound', 'soft']);
      // Its version did not change, yet a cached page is no longer right: no 304.
      expect((await get(`${base}/v1/streams/${s}`, { 'if-none-match': '"3"' })).status).toBe(404);
      const listed = await get(`${base}/v1/lifecycles?after=${s.slice(0, -1)}`);
      expect((listed.body.streams as unknown[])[0]).toEqual({ streamId: s, version: 3, maxCount: 2, deleted: 'soft' });
      expect((await post(`${base}/v1/streams/${s}`, { events: [ev()] }, { 'if-match': '"3"' })).body.streamVersion).toBe(4);
      expect(((await get(`${base}/v1/streams/${s}`)).body.events as Wire[]).map((e) => e.streamVersion)).toEqual([4]);
      expect((await send('DELETE', `/v1/streams/${s}?hard=true`)).status).toBe(200);
      const late = await post(`${base}/v1/streams/${s}`, { events: [ev()] });
      expect([late.status, late.body.error]).toEqual([410, 'StreamDeleted']);
      expect((await get(`${base}/v1/streams/${s}`)).status).toBe(410);
      expect((await send('PUT', `/v1/streams/${s}/metadata`, {})).status).toBe(410);
      const scavenged = await send('POST', '/v1/scavenge');
      expect(scavenged.status).toBe(200);
      expect(scavenged.body.removed).toEqual(expect.any(Number));
      const openapi = await get(`${base}/v1/openapi.json`);
      const paths = openapi.body.paths as Record<string, Record<string, unknown>>;
      expect(Object.keys(paths['/v1/streams/{stream}'] ?? {})).toEqual(['post', 'get', 'delete']);
      expect(Object.keys(paths['/v1/streams/{stream}/metadata'] ?? {})).toEqual(['get', 'put']);
      expect(Object.keys(paths)).toEqual(expect.arrayContaining(['/v1/lifecycles', '/v1/scavenge']));
    });

    it('PUT …/start: a new stream starts at a version (for restores); the same version again is a no-op', async () => {
      const s = stream('start');
      const send = (method: string, path: string, body?: unknown) =>
        fetch(`${base}${path}`, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(
          async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }),
        );
      expect(await send('PUT', `/v1/streams/${s}/start`, { version: 4 })).toEqual({ status: 200, body: { streamId: s, version: 4 } });
      expect((await send('PUT', `/v1/streams/${s}/start`, { version: 4 })).status).toBe(200);
      for (const bad of [{}, { version: 0 }, { version: '4' }, { version: 4, extra: 1 }, [4]]) {
        const refused = await send('PUT', `/v1/streams/${s}/start`, bad);
        expect([refused.status, refused.body.error], JSON.stringify(bad)).toEqual([400, 'InvalidArgument']);
      }
      expect((await post(`${base}/v1/streams/${s}`, { events: [ev()] }, { 'if-match': '"4"' })).body.streamVersion).toBe(5);
      expect(((await get(`${base}/v1/streams/${s}`)).body.events as Wire[]).map((e) => e.streamVersion)).toEqual([5]);
      const exists = await send('PUT', `/v1/streams/${s}/start`, { version: 4 });
      expect([exists.status, exists.body.error, exists.body.actual]).toEqual([409, 'WrongExpectedVersion', 5]);
      await send('DELETE', `/v1/streams/${s}-gone?hard=true`);
      expect((await send('PUT', `/v1/streams/${s}-gone/start`, { version: 2 })).status).toBe(410);
    });

    it('reads $all after a position in pages; next carries on; positions strictly increase', async () => {
      const s = stream('all');
      const first = await post(`${base}/v1/streams/${s}`, { events: [ev('A')] });
      await post(`${base}/v1/streams/${s}`, { events: [ev('B'), ev('C')] });
      const from = (BigInt(first.body.position as string) - 1n).toString();
      const page = await get(`${base}/v1/all?from=${from}&limit=2`);
      expect(page.status).toBe(200);
      const events = page.body.events as Wire[];
      expect(events.map((e) => e.type)).toEqual(['A', 'B']);
      expect(page.body.next).toBe(events[1]?.position);
      const rest = await get(`${base}/v1/all?from=${page.body.next}&limit=100&streamPrefix=${s}`);
      expect((rest.body.events as Wire[]).map((e) => e.type)).toEqual(['C']);
      const typed = await get(`${base}/v1/all?from=${from}&types=C,Nope`);
      expect((typed.body.events as Wire[]).map((e) => e.type)).toEqual(['C']);
      const everything = await get(`${base}/v1/all?limit=1000`);
      const positions = (everything.body.events as Wire[]).map((e) => BigInt(e.position));
      expect(positions.every((p, i) => i === 0 || p > (positions[i - 1] as bigint))).toBe(true);
      const head = (await get(`${base}/v1/health`)).body.headPosition as string;
      const atEnd = await get(`${base}/v1/all?from=${head}`);
      expect(atEnd.body).toEqual({ events: [], next: head });
      for (const q of ['from=abc', 'from=-5', 'limit=0']) expect((await get(`${base}/v1/all?${q}`)).status).toBe(400);
    });

    it('lists streams by prefix', async () => {
      const prefix = stream('list');
      await post(`${base}/v1/streams/${prefix}-a`, { events: [ev()] });
      await post(`${base}/v1/streams/${prefix}-b`, { events: [ev(), ev()] });
      const listed = await get(`${base}/v1/streams?prefix=${prefix}`);
      expect(listed.body.streams).toEqual([
        expect.objectContaining({ streamId: `${prefix}-a`, version: 1 }),
        expect.objectContaining({ streamId: `${prefix}-b`, version: 2 }),
      ]);
    });

    it('SSE on $all: catch-up then live, id = position, Last-Event-ID resumes', async () => {
      const s = stream('sse');
      const first = await post(`${base}/v1/streams/${s}`, { events: [ev('One'), ev('Two')] });
      const start = (BigInt(first.body.position as string) - 2n).toString();
      const collecting = collectSse(`${base}/v1/all/subscribe?from=${start}&streamPrefix=${s}`, 3);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const live = await post(`${base}/v1/streams/${s}`, { events: [ev('Three')] });
      const got = await collecting;
      expect(got.map((m) => m.event.type)).toEqual(['One', 'Two', 'Three']);
      expect(got.map((m) => m.id)).toEqual(got.map((m) => m.event.position));
      expect(got[2]?.event.position).toBe(live.body.position);
      const resumed = await collectSse(`${base}/v1/all/subscribe?streamPrefix=${s}`, 1, { 'last-event-id': got[1]?.id as string });
      expect(resumed.map((m) => m.event.type)).toEqual(['Three']);
      expect((await get(`${base}/v1/all/subscribe?from=nope`)).status).toBe(400);
    });

    it('reads and follows a category of $all, with types; a bad category is a 400', async () => {
      const category = `cat${randomUUID().slice(0, 8)}`;
      await post(`${base}/v1/streams/${category}-1`, { events: [ev('Opened'), ev('Noted')] });
      await post(`${base}/v1/streams/${category}x-1`, { events: [ev('Opened')] });
      await post(`${base}/v1/streams/${category}`, { events: [ev('Opened')] });
      await post(`${base}/v1/streams/${category}-2-a`, { events: [ev('Opened')] });
      const page = await get(`${base}/v1/all?category=${category}`);
      expect(page.status).toBe(200);
      expect((page.body.events as Wire[]).map((e) => `${e.streamId}:${e.type}`)).toEqual([
        `${category}-1:Opened`,
        `${category}-1:Noted`,
        `${category}-2-a:Opened`,
      ]);
      const typed = await get(`${base}/v1/all?category=${category}&types=Opened&limit=1`);
      expect((typed.body.events as Wire[]).map((e) => e.streamId)).toEqual([`${category}-1`]);
      const rest = await get(`${base}/v1/all?category=${category}&types=Opened&from=${typed.body.next}`);
      expect((rest.body.events as Wire[]).map((e) => e.streamId)).toEqual([`${category}-2-a`]);
      const collecting = collectSse(`${base}/v1/all/subscribe?category=${category}&types=Noted,Closed`, 2);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await post(`${base}/v1/streams/${category}x-1`, { events: [ev('Closed')] });
      await post(`${base}/v1/streams/${category}-2-a`, { events: [ev('Closed')] });
      expect((await collecting).map((m) => `${m.event.streamId}:${m.event.type}`)).toEqual([
        `${category}-1:Noted`,
        `${category}-2-a:Closed`,
      ]);
      for (const bad of ['', `${category}-1`, 'a%20b', '%24all']) {
        for (const path of ['/v1/all', '/v1/all/subscribe']) {
          const answer = await get(`${base}${path}?category=${bad}`);
          expect(answer.status, `${path}?category=${bad}`).toBe(400);
          expect(JSON.stringify(answer.body)).toContain('category');
        }
      }
    });

    it('SSE on one stream: only its events, catch-up then live, heartbeats while idle', async () => {
      const s = stream('one');
      await post(`${base}/v1/streams/${s}`, { events: [ev('Mine')] });
      await post(`${base}/v1/streams/${s}x`, { events: [ev('NotMine')] });
      const collecting = collectSse(`${base}/v1/streams/${s}/subscribe`, 2);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await post(`${base}/v1/streams/${s}x`, { events: [ev('NotMineEither')] });
      await post(`${base}/v1/streams/${s}`, { events: [ev('MineToo')] });
      expect((await collecting).map((m) => [m.event.streamId, m.event.type])).toEqual([
        [s, 'Mine'],
        [s, 'MineToo'],
      ]);
      // Raw stream: heartbeat comments arrive while nothing happens (server runs with --heartbeat-ms 200).
      const abort = new AbortController();
      const response = await fetch(`${base}/v1/streams/${stream('idle')}/subscribe`, { signal: abort.signal });
      let text = '';
      const decoder = new TextDecoder();
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        text += decoder.decode(chunk);
        if (text.includes(': heartbeat')) break;
      }
      abort.abort();
      expect(text).toContain(': heartbeat');
      expect((await get(`${base}/v1/streams/$x/subscribe`)).status).toBe(400);
    });

    it('personal data: plain over REST and SSE, sealed with ?sealed=true, forgotten after DELETE /v1/subjects/{subject}', async () => {
      const s = stream('person');
      const subject = `subject-${s}`;
      const email = `${s}@example.com`;
      const signedUp = { type: 'SignedUp', data: { email, plan: 'pro' }, metadata: { subject, personal: ['email'] } };
      const appended = await post(`${base}/v1/streams/${s}`, { events: [signedUp] });
      expect(appended.status).toBe(201);
      const position = BigInt(appended.body.position as string);
      const plain = await get(`${base}/v1/streams/${s}`);
      expect(plain.body.events).toMatchObject([{ data: { email, plan: 'pro' } }]);
      // Forget changes the page but not the version (the ETag): no HTTP cache may keep it.
      expect(plain.headers.get('cache-control')).toBe('no-store');
      const plainStream = stream('plain');
      await post(`${base}/v1/streams/${plainStream}`, { events: [ev()] });
      const withoutPersonal = await get(`${base}/v1/streams/${plainStream}`);
      expect([withoutPersonal.status, withoutPersonal.headers.get('cache-control')]).toEqual([200, null]);
      const [live] = await collectSse(`${base}/v1/streams/${s}/subscribe`, 1);
      expect(live?.event.data).toEqual({ email, plan: 'pro' });
      const sealed = await get(`${base}/v1/all?from=${position - 1n}&limit=1&sealed=true`);
      expect(JSON.stringify(sealed.body)).not.toContain(email);
      expect((await get(`${base}/v1/all?sealed=yes`)).status).toBe(400);
      const bad = await post(`${base}/v1/streams/${s}`, { events: [{ ...signedUp, metadata: { subject, personal: ['phone'] } }] });
      expect([bad.status, bad.body.error]).toEqual([400, 'InvalidEvent']);

      const forgot = await fetch(`${base}/v1/subjects/${subject}`, { method: 'DELETE' });
      expect(forgot.status).toBe(200);
      expect(await forgot.json()).toMatchObject({ subject, alreadyForgotten: false });
      const [after] = await collectSse(`${base}/v1/streams/${s}/subscribe`, 1);
      expect(after?.event.data).toEqual({ plan: 'pro' });
      expect((await get(`${base}/v1/subjects/${subject}`)).body).toMatchObject({ subject, forgottenAt: expect.any(String) });
      expect((await get(`${base}/v1/subjects/nobody-${s}`)).status).toBe(404);
    });

    it('health, stats, subscriptions, metrics and the OpenAPI document', async () => {
      const health = await get(`${base}/v1/health`);
      expect(health.status).toBe(200);
      expect(health.body).toMatchObject({ status: 'ok', backend: name, headPosition: expect.stringMatching(/^\d+$/) });
      const stats = await get(`${base}/v1/stats`);
      expect(stats.body).toMatchObject({ events: expect.any(Number), streams: expect.any(Number), backend: name });
      const subs = await get(`${base}/v1/subscriptions`);
      expect(subs.body).toMatchObject({ subscriptions: expect.any(Array) });
      const metrics = await get(`${base}/metrics`);
      expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
      const value = (metric: string) => Number(new RegExp(`^${metric} (\\S+)$`, 'm').exec(metrics.text)?.[1]);
      expect(value('logline_events_stored')).toBe(stats.body.events);
      expect(value('logline_append_duration_seconds_count')).toBeGreaterThan(0);
      expect(metrics.text).toMatch(/^logline_appends_total\{outcome="ok"\} \d+$/m);
      expect(metrics.text).toMatch(/^logline_appends_total\{outcome="WrongExpectedVersion"\} \d+$/m);
      expect(metrics.text).toMatch(/^logline_sse_clients \d+$/m);
      expect(metrics.text).toContain('# TYPE logline_subscription_lag gauge');
      const openapi = await get(`${base}/v1/openapi.json`);
      expect(openapi.body.openapi).toBe('3.1.0');
      const schemas = (openapi.body.components as { schemas: Record<string, { properties?: Record<string, unknown> }> }).schemas;
      expect(Object.keys(schemas.AppendRequest?.properties ?? {})).toEqual(['events']);
      expect(Object.keys(openapi.body.paths as object)).toEqual(
        expect.arrayContaining([
          '/v1/streams/{stream}',
          '/v1/all',
          '/v1/all/subscribe',
          '/v1/streams/{stream}/subscribe',
          '/v1/health',
          '/metrics',
          '/v1/subjects/{subject}',
        ]),
      );
      const unknown = await get(`${base}/v1/nope`);
      expect(unknown.status).toBe(404);
      expect(unknown.body.error).toBe('NotFound');
    });
  });
}
