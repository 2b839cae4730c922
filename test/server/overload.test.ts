/**
 * Bounded memory under hostile load (issue 10, item 3): 200 concurrent 16 MiB appends against a
 * real server process, under Node's default heap sizing and under a set heap limit. It stays up,
 * its peak RSS stays under the configured budget plus the documented baseline, every answer is
 * 201, 413 or 503 (with Retry-After), and the store holds exactly the acknowledged events.
 */

import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get, type ServerProcess, startServerProcess, tempDir } from './process.js';

const MiB = 1024 * 1024;
/** The budget the server runs with here. */
const MAX_INFLIGHT_BYTES = 128 * MiB;
/**
 * RSS beyond the budget (docs/http.md, "Limits"): an idle server, allocator slack, and the garbage
 * V8 lets build up before it collects. With Node's default heap sizing V8 lets its heap reach
 * 256 MiB before its first full collection, garbage or not; with `--max-old-space-size=256` it
 * collects far earlier. Measured peaks here: 350–430 MiB and 320–330 MiB.
 */
const HEAP_SETTINGS = [
  { name: "Node's default heap sizing", nodeOptions: '', baseline: 384 * MiB },
  { name: '--max-old-space-size=256', nodeOptions: '--max-old-space-size=256', baseline: 256 * MiB },
];
const CONCURRENT = 200;
/** Requests start this far apart, so appends are admitted all through the storm, not only the first two. */
const STAGGER_MS = 10;
const EVENTS_PER_APPEND = 16;

/** Peak resident set size of a process so far (Linux). */
const peakRss = (pid: number) => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024;

interface Answer {
  status: number;
  retryAfter?: string;
  error?: string;
}

/** POSTs `body` (shared, never copied) over its own connection; a dropped connection rejects. */
function postRaw(base: string, path: string, body: Buffer): Promise<Answer> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: hostname,
        port,
        method: 'POST',
        path,
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': body.byteLength },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => {
          const retryAfter = res.headers['retry-after'];
          resolve({ status: res.statusCode ?? 0, retryAfter, error: text ? (JSON.parse(text) as { error?: string }).error : undefined });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe.each(HEAP_SETTINGS)('bounded memory under concurrent maximum-size appends ($name)', ({ nodeOptions, baseline }) => {
  const dir = tempDir();
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServerProcess(
      ['--store', `sqlite:${join(dir.path, 'overload.db')}`, '--max-inflight-bytes', String(MAX_INFLIGHT_BYTES)],
      { NODE_OPTIONS: nodeOptions },
    );
    // The server logs a line per refused append: drain its stdout and keep nothing.
    server.child.stdout?.on('data', () => {
      server.logs.length = 0;
    });
  });
  afterAll(async () => {
    await server?.stop();
    dir.remove();
  });

  it(`${CONCURRENT} concurrent 16 MiB appends: the server stays up, RSS stays bounded, stored = acknowledged`, async () => {
    // 16 events of just under 1 MiB each: one append as large as the store accepts.
    const data = 'x'.repeat(MiB - 4096);
    const body = Buffer.from(
      JSON.stringify({ events: Array.from({ length: EVENTS_PER_APPEND }, (_, i) => ({ type: 'Big', data: { i, data } })) }),
    );
    expect(body.byteLength).toBeGreaterThan(15.9 * MiB);

    const answers = await Promise.all(
      Array.from({ length: CONCURRENT }, async (_, i) => {
        await new Promise((resolve) => setTimeout(resolve, i * STAGGER_MS));
        return postRaw(server.url, `/v1/streams/big-${i}`, body);
      }),
    );

    const statuses = new Map<number, number>();
    for (const answer of answers) statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
    expect(
      [...statuses.keys()].every((status) => [201, 413, 503].includes(status)),
      JSON.stringify([...statuses]),
    ).toBe(true);
    const acknowledged = statuses.get(201) ?? 0;
    expect(acknowledged).toBeGreaterThan(0);
    expect(statuses.get(503) ?? 0).toBeGreaterThan(0);
    for (const answer of answers.filter((a) => a.status === 503)) {
      expect(answer).toMatchObject({ error: 'Overloaded', retryAfter: '1' });
    }

    const health = await get(`${server.url}/v1/health`);
    expect(health.status).toBe(200);
    expect((await get(`${server.url}/v1/stats`)).body.events).toBe(acknowledged * EVENTS_PER_APPEND);
    const peak = peakRss(server.child.pid as number);
    expect(peak, `peak RSS ${(peak / MiB).toFixed(0)} MiB, ${JSON.stringify([...statuses])}`).toBeLessThan(MAX_INFLIGHT_BYTES + baseline);
  }, 120_000);
});

describe('bounded append queue', () => {
  const dir = tempDir();
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServerProcess(['--store', `sqlite:${join(dir.path, 'queue.db')}`, '--max-queued-appends', '2']);
  });
  afterAll(async () => {
    await server?.stop();
    dir.remove();
  });

  it('appends beyond --max-queued-appends are refused with 503 Overloaded; stored = acknowledged', async () => {
    const body = Buffer.from(JSON.stringify({ events: [{ type: 'Small', data: { note: 'x'.repeat(1000) } }] }));
    // Another connection holds the write lock, so the server's appends wait (its busy timeout is
    // 5 s) and the queue fills however spread out the requests arrive on a busy machine.
    const blocker = new Database(join(dir.path, 'queue.db'));
    blocker.exec('BEGIN IMMEDIATE');
    let settled = 0;
    const pending = Array.from({ length: 100 }, (_, i) =>
      postRaw(server.url, `/v1/streams/small-${i % 10}`, body).finally(() => {
        settled += 1;
      }),
    );
    const until = performance.now() + 3000;
    while (settled < 90 && performance.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
    blocker.exec('ROLLBACK');
    blocker.close();
    const answers = await Promise.all(pending);
    const acknowledged = answers.filter((a) => a.status === 201).length;
    const refused = answers.filter((a) => a.status === 503);
    expect(acknowledged + refused.length).toBe(answers.length);
    expect(acknowledged).toBeGreaterThan(0);
    expect(refused.length).toBeGreaterThan(0);
    for (const answer of refused) expect(answer).toMatchObject({ error: 'Overloaded', retryAfter: '1' });
    expect((await get(`${server.url}/v1/stats`)).body.events).toBe(acknowledged);
  });
});

describe('the memory budget, request by request', () => {
  const dir = tempDir();
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServerProcess(['--store', `sqlite:${join(dir.path, 'budget.db')}`, '--max-inflight-bytes', String(64 * MiB)]);
  });
  afterAll(async () => {
    await server?.stop();
    dir.remove();
  });

  /** Starts a POST and returns a handle to send the rest of its body and read its answer. */
  const open = (path: string, headers: Record<string, string | number>) => {
    const { hostname, port } = new URL(server.url);
    const req = request({
      host: hostname,
      port,
      method: 'POST',
      path,
      agent: false,
      headers: { 'content-type': 'application/json', ...headers },
    });
    const answer = new Promise<Answer>((resolve, reject) => {
      req.on('error', reject);
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            retryAfter: res.headers['retry-after'],
            error: (JSON.parse(text) as { error?: string }).error,
          }),
        );
      });
    });
    return { req, answer };
  };
  const inflight = async () => Number(/^logline_append_inflight_bytes (\d+)$/m.exec((await get(`${server.url}/metrics`)).text)?.[1]);

  it('while one append holds the budget, a chunked one is refused after its body; the first still commits', async () => {
    // A: 15 MiB declared up front, so charged 60 of the 64 MiB as soon as its headers arrive.
    const big = Buffer.from(
      JSON.stringify({ events: Array.from({ length: 15 }, (_, i) => ({ type: 'Big', data: { i, d: 'x'.repeat(MiB - 4096) } })) }),
    );
    const a = open('/v1/streams/held-1', { 'content-length': big.byteLength });
    a.req.write(big.subarray(0, MiB));
    const deadline = Date.now() + 10_000;
    while ((await inflight()) === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await inflight()).toBe(big.byteLength * 4);

    // B: no Content-Length (chunked), charged as it arrives: past the remaining ~4 MiB after about 1 MiB.
    const small = JSON.stringify({ events: [0, 1].map((i) => ({ type: 'Chunked', data: { i, d: 'y'.repeat(MiB - 4096) } })) });
    const b = open('/v1/streams/chunked-1', { 'transfer-encoding': 'chunked' });
    b.req.write(small.slice(0, 1000));
    b.req.end(small.slice(1000));
    expect(await b.answer).toMatchObject({ status: 503, error: 'Overloaded', retryAfter: '1' });

    a.req.end(big.subarray(MiB));
    expect((await a.answer).status).toBe(201);
    expect(await inflight()).toBe(0);
    const streams = (await get(`${server.url}/v1/streams`)).body.streams as Array<{ streamId: string; version: number }>;
    expect(streams.map((s) => [s.streamId, s.version])).toEqual([['held-1', 15]]);
  });
});
