/**
 * The webhook sink against a real local HTTP server: signatures and ids, poison events parked
 * after the retry budget (listed, replayed, skipped), and a target that fails half its requests
 * and sometimes hangs: the breaker opens, fails fast, half-opens and closes, while another
 * connector and appends go on at full speed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { loadDriver } from '../../src/connectors/sink.js';
import { httpSink, startConnector } from '../../src/connectors.js';
import type { EventStore } from '../../src/index.js';
import { createMemoryStore } from '../../src/memory.js';
import { type Behaviour, deduplicated, startWebhookTarget, versionsByStream, type WebhookTarget, waitFor } from './webhook-target.js';

const SECRET = 'a-shared-secret-of-enough-length';
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(behaviour?: Behaviour) {
  const store = createMemoryStore();
  const target = await startWebhookTarget(SECRET, behaviour);
  cleanups.push(
    () => store.close(),
    () => target.close(),
  );
  return { store, target };
}

async function connect(store: EventStore, target: WebhookTarget, name: string, extra: Partial<Parameters<typeof startConnector>[1]> = {}) {
  const connector = await startConnector(store, {
    name,
    sink: httpSink({ url: target.url, secret: SECRET, connector: name }),
    delivery: {
      timeoutMs: 150,
      retry: { maxAttempts: 2, initialDelayMs: 10, maxDelayMs: 100 },
      breaker: { failures: 3, halfOpenAfterMs: 300 },
    },
    ...extra,
  });
  cleanups.push(() => connector.stop());
  return connector;
}

const percentile = (values: number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))] as number;

describe('webhook connector', () => {
  it('delivers matching events signed, with their ids and positions, in order per stream', async () => {
    const { store, target } = await setup();
    await store.append('order-1', [
      { type: 'Placed', data: { n: 1 } },
      { type: 'Paid', data: { n: 2 } },
    ]);
    await store.append('invoice-1', [{ type: 'Issued', data: {} }]);
    await store.append('order-2', [{ type: 'Placed', data: { n: 3 } }]);
    const connector = await connect(store, target, 'orders', { source: { category: 'order' }, mapping: 'notification' });
    await waitFor(() => target.received.length === 3, 5000, 'three deliveries');
    expect(target.badSignatures).toBe(0);
    const positions: bigint[] = [];
    for await (const event of store.readAll({ streamPrefix: 'order-' })) positions.push(event.position);
    expect(target.received.map((m) => [m.streamId, m.type, m.position])).toEqual([
      ['order-1', 'Placed', String(positions[0])],
      ['order-1', 'Paid', String(positions[1])],
      ['order-2', 'Placed', String(positions[2])],
    ]);
    expect(target.received[0]?.payload).toMatchObject({ id: target.received[0]?.id, type: 'Placed', streamId: 'order-1' });
    await waitFor(() => connector.stats().delivered === 3, 1000, 'the deliveries to be counted');
    expect(connector.stats()).toMatchObject({ breaker: 'closed', status: 'running', failedDeliveries: 0 });
  });

  it('sends a large batch as one request (no per-id header that outgrows the receiver limit)', async () => {
    const { store, target } = await setup();
    await store.append(
      'order-1',
      Array.from({ length: 500 }, (_, i) => ({ type: 'Placed', data: { i } })),
    );
    const connector = await connect(store, target, 'big', { delivery: { batchSize: 500 } });
    await waitFor(() => connector.stats().delivered === 500, 5000, '500 deliveries');
    expect(target.requests).toBe(1);
    expect(connector.stats().failedDeliveries).toBe(0);
  });

  it('parks an event the target refuses (4xx) after the retry budget, then replays or skips it', async () => {
    let refuseBroken = true;
    const { store, target } = await setup((_, messages) => (refuseBroken && messages.some((m) => m.type === 'Broken') ? 422 : 200));
    await store.append('order-1', [{ type: 'Placed', data: {} }]);
    await store.append('order-2', [{ type: 'Broken', data: {} }]);
    await store.append('order-3', [
      { type: 'Placed', data: {} },
      { type: 'Broken', data: { again: true } },
    ]);
    const connector = await connect(store, target, 'parking');
    await waitFor(async () => (await connector.listParked()).length === 2, 5000, 'two parked events');
    await waitFor(async () => (await connector.progress()).lag === 0, 5000, 'the checkpoint at the head');
    // Only the refused events are missing: the connector isolated them and went on.
    expect(target.received.map((m) => `${m.streamId}:${m.type}`)).toEqual(['order-1:Placed', 'order-3:Placed']);
    const parked = await connector.listParked();
    expect(parked.map((p) => [p.event.streamId, p.attempts])).toEqual([
      ['order-2', 2],
      ['order-3', 2],
    ]);
    expect(parked[0]?.error).toMatch(/answered 422/);
    // A 4xx is the message's fault, not the sink's: the breaker stayed closed.
    expect(connector.stats().breaker).toBe('closed');

    refuseBroken = false;
    const replay = await connector.replayParked([parked[0]?.id as number]);
    expect(replay).toEqual({ replayed: 1, failed: [] });
    expect(target.received.at(-1)).toMatchObject({ streamId: 'order-2', type: 'Broken' });
    expect(await connector.skipParked()).toBe(1);
    expect(await connector.listParked()).toEqual([]);
    expect(target.received.filter((m) => m.streamId === 'order-3' && m.type === 'Broken')).toEqual([]);
  });

  it('a flaky, hanging target: the breaker opens, fails fast, half-opens and closes; another connector and appends are not slowed', async () => {
    let mode: 'flaky' | 'down' | 'up' = 'flaky';
    // Flaky: every other request fails, every fifth hangs past the timeout.
    const { store, target } = await setup((n) => (mode === 'up' ? 200 : mode === 'down' ? 503 : n % 5 === 4 ? 'hang' : n % 2 ? 500 : 200));
    const healthyTarget = await startWebhookTarget(SECRET);
    cleanups.push(() => healthyTarget.close());
    const flaky = await connect(store, target, 'flaky', {
      delivery: {
        batchSize: 10,
        timeoutMs: 150,
        quickRetries: 1,
        retry: { initialDelayMs: 10, maxDelayMs: 100 },
        breaker: { failures: 3, halfOpenAfterMs: 300 },
      },
    });
    const healthy = await connect(store, healthyTarget, 'healthy', { delivery: { batchSize: 10 } });

    // Baseline append latency, then the same appends while the flaky target struggles.
    const appendBurst = async (count: number, prefix: string) => {
      const latencies: number[] = [];
      for (let i = 0; i < count; i++) {
        const started = performance.now();
        await store.append(`${prefix}-${i % 5}`, [{ type: 'Happened', data: { i } }]);
        latencies.push(performance.now() - started);
        if (i % 20 === 19) await new Promise((resolve) => setTimeout(resolve, 5));
      }
      return latencies;
    };
    const first = await appendBurst(200, 'order');
    const healthyStarted = Date.now();
    await waitFor(() => healthyTarget.received.length === 200, 10_000, 'the healthy connector to deliver the first 200');
    const healthyMs = Date.now() - healthyStarted;

    mode = 'down';
    await waitFor(() => flaky.breaker === 'open', 10_000, 'the breaker to open');
    const openedAt = Date.now();
    const requestsWhenOpened = target.requests;
    const during = await appendBurst(200, 'invoice');
    // While open it fails fast: no request reaches the target until the cool-down is over.
    if (Date.now() - openedAt < 250) expect(target.requests).toBe(requestsWhenOpened);
    await waitFor(() => healthyTarget.received.length === 400, 10_000, 'the healthy connector to deliver all 400');
    const states = new Set<string>();
    const watch = setInterval(() => states.add(flaky.breaker), 5);
    await waitFor(() => states.has('half-open'), 5000, 'a half-open probe');
    mode = 'up';
    await waitFor(() => deduplicated(target.received).length === 400, 15_000, 'the flaky connector to deliver all 400');
    clearInterval(watch);
    expect(flaky.breaker).toBe('closed');
    expect(flaky.stats().breakerOpened).toBeGreaterThanOrEqual(1);

    // Every event at least once, each stream in order once repeats are dropped by id.
    const kept = deduplicated(target.received);
    for (const versions of versionsByStream(kept).values()) expect(versions).toEqual(versions.map((_, i) => i + 1));
    expect(healthy.stats()).toMatchObject({ breaker: 'closed', failedDeliveries: 0 });
    const p99Before = percentile(first, 0.99);
    const p99During = percentile(during, 0.99);
    console.log(
      `healthy connector: 200 events in ${healthyMs} ms; append p99 ${p99Before.toFixed(2)} ms before, ${p99During.toFixed(2)} ms with the breaker open`,
    );
    // Appends never wait on a connector: the same order of magnitude (memory store: well under 50 ms even on a loaded machine).
    expect(p99During).toBeLessThan(Math.max(50, p99Before * 5));
  }, 60_000);
});

describe('a sink whose broker client is not installed', () => {
  it('fails the connector start with DriverMissing naming the package', async () => {
    const store = createMemoryStore();
    cleanups.push(() => store.close());
    const missing = 'logline-no-such-broker-client';
    const sink = {
      ...httpSink({ url: 'http://127.0.0.1:1/', connector: 'x' }),
      prepare: async () => {
        await loadDriver('Example connector', missing, () => import(missing));
      },
    };
    const error = await startConnector(store, { name: 'x', sink }).catch((e) => e);
    expect(error).toMatchObject({ code: 'DriverMissing', details: { package: missing } });
    expect(error.message).toMatch(/npm install logline-no-such-broker-client/);
  });
});

describe('the webhook sink on its own (node:http, keep-alive)', () => {
  it('classifies answers: 2xx delivered, 3xx and 5xx/408/429 retry, other 4xx poison; credentials in the URL go as Basic auth, not into target', async () => {
    const { createServer } = await import('node:http');
    const seen: Array<{ authorization?: string; body: string; socket: number }> = [];
    const sockets = new Map<unknown, number>();
    let status = 204;
    const server = createServer((request, response) => {
      let body = '';
      request.setEncoding('utf8');
      request.on('data', (chunk: string) => {
        body += chunk;
      });
      request.on('end', () => {
        if (!sockets.has(request.socket)) sockets.set(request.socket, sockets.size);
        seen.push({ authorization: request.headers.authorization, body, socket: sockets.get(request.socket) as number });
        if (status === 302) response.writeHead(302, { location: 'http://127.0.0.1:1/' }).end();
        else if (status === 0)
          return; // hang: the caller's signal ends it
        else response.writeHead(status).end(status >= 400 ? `refused with ${status}` : undefined);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => server.close(() => resolve(server.closeAllConnections()))));
    const { port } = server.address() as { port: number };
    const sink = httpSink({ url: `http://hook:pa%3Ass@127.0.0.1:${port}/in`, connector: 'c' });
    cleanups.push(() => sink.close());
    expect(sink.target).toBe(`http://hook@127.0.0.1:${port}/in`);
    const message = { id: 'e-1', position: '1', streamId: 's-1', streamVersion: 1, type: 'T', category: 's', payload: {} };
    const deliver = () => sink.deliver([message], AbortSignal.timeout(500));

    await deliver();
    await deliver();
    expect(seen[0]?.authorization).toBe(`Basic ${Buffer.from('hook:pa:ss').toString('base64')}`);
    expect(JSON.parse(seen[0]?.body ?? '{}')).toEqual({ connector: 'c', messages: [message] });
    expect(seen[1]?.socket).toBe(0); // the connection was kept alive and reused
    for (const [answer, name] of [
      [302, 'SinkUnavailableError'],
      [503, 'SinkUnavailableError'],
      [408, 'SinkUnavailableError'],
      [429, 'SinkUnavailableError'],
      [0, 'SinkUnavailableError'],
      [410, 'PoisonMessageError'],
      [400, 'PoisonMessageError'],
    ] as const) {
      status = answer;
      const error = await deliver().catch((e) => e);
      expect(error?.name, `answer ${answer}`).toBe(name);
      if (answer === 410) expect(error.message).toMatch(/answered 410: refused with 410/);
      if (answer === 302) expect(error.message).toMatch(/redirects are not followed/);
    }
  });
});
