/** HTTP fuzz: random bodies, headers and stream ids never cause a 5xx, and a 4xx stores nothing. */
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fuzzRead, fuzzRequest, sendFuzz, sendFuzzRead } from './fuzz.js';
import { get, type ServerProcess, startServerProcess, tempDir } from './process.js';

describe('HTTP fuzz', () => {
  const dir = tempDir();
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServerProcess(['--store', `sqlite:${join(dir.path, 'fuzz.db')}`]);
  });
  afterAll(async () => {
    await server?.stop();
    dir.remove();
  });

  it('300 random append requests: no 5xx, typed 4xx errors, stored = acknowledged', async () => {
    const events = async () => (await get(`${server.url}/v1/stats`)).body.events as number;
    const before = await events();
    let acknowledged = 0;
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(fuzzRequest, async (request) => {
        const outcome = await sendFuzz(server.url, request);
        statuses.set(outcome.status, (statuses.get(outcome.status) ?? 0) + 1);
        acknowledged += outcome.stored;
        expect(outcome.problem).toBeUndefined();
      }),
      { numRuns: 300 },
    );
    expect(await events()).toBe(before + acknowledged);
    // The generator reaches both sides: accepted appends and rejected ones.
    expect(statuses.get(201)).toBeGreaterThan(0);
    expect([...statuses.keys()].filter((s) => s >= 400).length).toBeGreaterThan(2);
  });

  it('200 random reads (stream pages, $all, stream list; random query and If-None-Match): no 5xx, JSON answers', async () => {
    await fc.assert(
      fc.asyncProperty(fuzzRead, async (request) => {
        expect((await sendFuzzRead(server.url, request)).problem).toBeUndefined();
      }),
      { numRuns: 200 },
    );
  });
});
