/** The open-loop client of the benches (bench/paced.ts): framing, statuses, rate and latency from the schedule. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pacedLoad, responseEnd } from '../../bench/paced.js';

const reply = (head: string, body = '') => Buffer.from(`${head}\r\n\r\n${body}`);

describe('responseEnd', () => {
  it('frames a response by Content-Length, by chunks, or as bodiless 204/304; undefined until all of it is there', () => {
    const sized = reply('HTTP/1.1 200 OK\r\nContent-Length: 5', 'hello');
    expect(responseEnd(sized)).toEqual({ status: 200, end: sized.length });
    expect(responseEnd(sized.subarray(0, sized.length - 1))).toBeUndefined();
    const chunked = reply('HTTP/1.1 503 Unavailable\r\ntransfer-encoding: chunked', '3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n');
    expect(responseEnd(chunked)).toEqual({ status: 503, end: chunked.length });
    expect(responseEnd(chunked.subarray(0, chunked.length - 2))).toBeUndefined();
    const notModified = reply('HTTP/1.1 304 Not Modified\r\netag: "3"');
    expect(responseEnd(notModified)).toEqual({ status: 304, end: notModified.length });
    expect(responseEnd(Buffer.from('HTTP/1.1 200 OK\r\nContent-Le'))).toBeUndefined();
    expect(() => responseEnd(reply('HTTP/1.1 200 OK\r\nconnection: close'))).toThrow(/without a body length/);
  });
});

describe('pacedLoad', () => {
  let url = '';
  let sockets = 0;
  const seen: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      seen.push(`${req.method} ${req.url} ${body}`);
      const n = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('n'));
      // Every 10th fails; every 7th answers chunked; the 50th answers 300 ms late.
      const send = () => {
        if (n % 10 === 9) res.writeHead(500, { 'content-length': '4' }).end('fail');
        else if (n % 7 === 0) res.writeHead(200).end(`{"n":${n}}`);
        else res.writeHead(200, { 'content-length': String(Buffer.byteLength(`{"n":${n}}`)) }).end(`{"n":${n}}`);
      };
      if (n === 50) setTimeout(send, 300);
      else send();
    });
  });
  server.on('connection', () => (sockets += 1));
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('sends `rate` requests a second on at most `connections` sockets and counts every answer once', async () => {
    let n = 0;
    const result = await pacedLoad({
      url,
      rate: 200,
      seconds: 1,
      connections: 4,
      next: () => (n % 2 ? { method: 'GET', path: `/u?n=${n++}` } : { method: 'PATCH', path: `/u?n=${n++}`, body: `{"name":"é${n}"}` }),
    });
    expect(result.ok + result.failed).toBe(200);
    expect(result.failed).toBe(20);
    expect(result.latencies).toHaveLength(180);
    // Sent on the schedule: 200 over about a second, not as fast as answered.
    expect(result.seconds).toBeGreaterThan(0.9);
    // The late answer counts from its scheduled time, and requests behind it on its socket wait too.
    expect(result.latencies[result.latencies.length - 1]).toBeGreaterThanOrEqual(290);
    expect(seen).toContain('PATCH /u?n=0 {"name":"é1"}');
    expect(seen).toContain('GET /u?n=1 ');
    expect(sockets).toBeGreaterThan(0);
    expect(sockets).toBeLessThanOrEqual(4);
  });

  it('does not time the warm-up: the late answer falls in it; its failures still count', async () => {
    let n = 0;
    // 300 requests over 1.5 s; the first 100 (0.5 s, request 50's late answer among them) are the warm-up.
    const result = await pacedLoad({
      url,
      rate: 200,
      seconds: 1.5,
      warmupSeconds: 0.5,
      connections: 4,
      next: () => ({ method: 'GET', path: `/u?n=${n++}` }),
    });
    expect(result.failed).toBe(30);
    expect(result.ok).toBe(180);
    expect(result.latencies[result.latencies.length - 1]).toBeLessThan(250);
    expect(result.seconds).toBeGreaterThan(0.9);
    expect(result.seconds).toBeLessThan(1.4);
  });

  it('fails every request when nothing listens, and returns', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const result = await pacedLoad({
      url: `http://127.0.0.1:${port}`,
      rate: 100,
      seconds: 0.5,
      connections: 4,
      next: () => ({ method: 'GET', path: '/' }),
    });
    expect(result).toMatchObject({ ok: 0, failed: 50 });
  });
});
