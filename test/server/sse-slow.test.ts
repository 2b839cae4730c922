/**
 * A client that stops reading gets a bounded buffer, then a clear goodbye (`event: overflow`
 * with its last event id) and the end of the stream; it can resume with Last-Event-ID.
 */
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get, post, type ServerProcess, startServerProcess, tempDir } from './process.js';

const BUFFER = 64 * 1024;

describe('SSE slow consumer', () => {
  const dir = tempDir();
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServerProcess([
      '--store',
      `sqlite:${join(dir.path, 'slow.db')}`,
      '--sse-buffer-bytes',
      String(BUFFER),
      '--sse-stall-ms',
      '300',
    ]);
  });
  afterAll(async () => {
    await server?.stop();
    dir.remove();
  });

  it('stalled client: bounded buffer, then overflow notice and close; Last-Event-ID picks up the rest', async () => {
    const payload = 'x'.repeat(100_000);
    const total = 160; // 16 MB: far more than socket buffers plus the 64 KiB queue
    for (let i = 0; i < total / 40; i++) {
      const response = await post(`${server.url}/v1/streams/big`, {
        events: Array.from({ length: 40 }, (_, j) => ({ type: 'Big', data: { n: i * 40 + j, payload } })),
      });
      expect(response.status).toBe(201);
    }
    const { port } = new URL(server.url);
    const socket = connect(Number(port), '127.0.0.1');
    socket.write(`GET /v1/streams/big/subscribe HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n\r\n`);
    // Do not read: the server fills its bounded queue, and gives up once it stays full for 300 ms.
    await expect.poll(() => server.logs.some((line) => line.includes('sse client too slow')), { timeout: 15_000, interval: 50 }).toBe(true);
    expect((await get(`${server.url}/metrics`)).text).toMatch(/^logline_sse_clients 0$/m);
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      // The response is chunked; the terminating chunk marks the end of the stream.
      if (text.endsWith('0\r\n\r\n')) socket.end();
    });
    await new Promise((resolve) => socket.on('close', resolve));
    const received = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => m[1] as string);
    expect(received.length).toBeGreaterThan(0);
    expect(received.length).toBeLessThan(total);
    const overflow = /event: overflow\ndata: (.*)\n/.exec(text)?.[1] ?? 'no overflow notice';
    const notice = JSON.parse(overflow) as { lastEventId: string; message: string };
    expect(notice.message).toMatch(/fell more than 65536 bytes behind/);
    expect(notice.lastEventId).toBe(received[received.length - 1]);
    // Resume where it stopped: the rest arrives, nothing twice.
    let rest = 0;
    for (let from = notice.lastEventId; ; ) {
      const page = await get(`${server.url}/v1/all?from=${from}&limit=1000`);
      const events = page.body.events as unknown[];
      if (events.length === 0) break;
      rest += events.length;
      from = page.body.next as string;
    }
    expect(rest).toBe(total - received.length);
  });
});
