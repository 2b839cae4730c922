/**
 * Bench child: the HTTP stack alone, as a baseline for `logline serve`. The same Hono app type
 * and Node adapter, the append route parsing the same JSON body and answering 201 with a result
 * of the same shape; no store, no validation, no logging. /v1/stats counts the events it was
 * sent, so the bench's stored = acknowledged check runs unchanged. Prints the same "listening" line.
 */
import type { AddressInfo } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import { Hono } from 'hono';

const app = new Hono();
let position = 0;
app.post('/v1/streams/:stream', async (c) => {
  const body = JSON.parse(await c.req.text()) as { events: unknown[] };
  position += body.events.length;
  return new Response(JSON.stringify({ streamVersion: position, position: String(position) }), {
    status: 201,
    headers: { 'content-type': 'application/json; charset=utf-8', etag: `"${position}"`, 'logline-position': String(position) },
  });
});
app.get('/v1/stats', (c) => c.json({ events: position }));
const server = createAdaptorServer({ fetch: app.fetch, hostname: '127.0.0.1' });
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  console.log(JSON.stringify({ msg: 'listening', url: `http://127.0.0.1:${port}` }));
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
