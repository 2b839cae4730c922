/**
 * A position the server's store has not reached (a client resuming against a store restored
 * from an older backup) is `409 PositionBeyondHead`, before any stream starts; an SSE client whose
 * store is restored behind it mid-stream gets an `event: error` with that code. Never a silent
 * skip of the events written after the restore.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSse } from '../../src/cli/sse-client.js';
import { get, post, type ServerProcess, startServerProcess, tempDir } from './process.js';

describe('HTTP: a position beyond the head', () => {
  const dir = tempDir();
  const file = join(dir.path, 'restored.db');
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServerProcess(['--store', `sqlite:${file}`, '--heartbeat-ms', '200']);
    const events = ['A', 'B', 'C'].map((type) => ({ type, data: {} }));
    expect((await post(`${server.url}/v1/streams/order-1`, { events })).status).toBe(201);
  });
  afterAll(async () => {
    await server?.stop();
    dir.remove();
  });

  it('is 409 for Last-Event-ID, ?from= on SSE and ?from= on /v1/all; the head itself is fine', async () => {
    const answers = await Promise.all([
      get(`${server.url}/v1/all/subscribe`, { 'last-event-id': '9' }),
      get(`${server.url}/v1/streams/order-1/subscribe?from=9`),
      get(`${server.url}/v1/all?from=9`),
    ]);
    for (const answer of answers) {
      expect(answer.status).toBe(409);
      expect(answer.body).toMatchObject({ error: 'PositionBeyondHead', position: '9', head: '3' });
    }
    const atHead = await get(`${server.url}/v1/all?from=3`);
    expect(atHead.status).toBe(200);
    expect(atHead.body).toMatchObject({ events: [], next: '3' });
  });

  it('ends a live SSE stream with an error event when the store is restored behind it', async () => {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), 10_000);
    const response = await fetch(`${server.url}/v1/all/subscribe`, { signal: abort.signal });
    expect(response.status).toBe(200);
    const messages: Array<{ event: string; data: string }> = [];
    try {
      for await (const message of readSse(response.body as ReadableStream<Uint8Array>)) {
        messages.push(message);
        if (messages.length === 3) {
          // Another process restores an older state of the file: positions 2 and 3 are gone,
          // and the next append reuses position 2.
          const db = new Database(file);
          db.prepare('DELETE FROM events WHERE position > 1').run();
          db.close();
          expect((await post(`${server.url}/v1/streams/order-2`, { events: [{ type: 'AfterRestore', data: {} }] })).status).toBe(201);
        }
        if (message.event === 'error') break;
      }
    } finally {
      clearTimeout(timer);
      abort.abort();
    }
    expect(messages.map((m) => m.event)).toEqual(['message', 'message', 'message', 'error']);
    const failure = JSON.parse(messages[3]?.data ?? '{}') as { error: string; position: string; head: string };
    expect(failure).toMatchObject({ error: 'PositionBeyondHead', position: '3' });
    // Before or after the append that reuses position 2, depending on when the stream looked.
    expect(['1', '2']).toContain(failure.head);
  });
});
