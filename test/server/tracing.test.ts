/**
 * OpenTelemetry traces with the SDK's in-memory exporter: one trace from an HTTP append (whose
 * caller sent a `traceparent`) through the append and its coalesced commit to the projection,
 * durable subscription and consumer group that handle the event; several traces in one batch
 * become links. Without an SDK nothing is recorded and events are stored as given.
 */
import { join } from 'node:path';
import { context, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Database } from 'better-sqlite3';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/index.js';
import { defineProjection, joinGroup, startProjection, startSubscription, waitForPosition } from '../../src/projections.js';
import { startServer } from '../../src/server/serve.js';
import type { SqliteEventStore } from '../../src/sqlite.js';
import { collect } from '../helpers/collect.js';
import { tempDir } from './process.js';

const dir = tempDir('logline-tracing-');
afterAll(() => dir.remove());

const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';

/** Sums deposits per account into its own table. */
const totals = (name: string) =>
  defineProjection<Database>({
    name,
    tables: [name],
    setup: ({ tx, table }) => tx.exec(`CREATE TABLE ${table(name)} (account TEXT PRIMARY KEY, amount INTEGER NOT NULL)`),
    handlers: {
      Deposited: (event, { tx, table }) => {
        tx.prepare(
          `INSERT INTO ${table(name)} (account, amount) VALUES (?, ?) ON CONFLICT (account) DO UPDATE SET amount = amount + excluded.amount`,
        ).run(event.streamId, (event.data as { amount: number }).amount);
      },
    },
  });

const byName = (spans: ReadableSpan[], name: string) => spans.filter((span) => span.name === name);

describe('traces', () => {
  it('without an SDK registered, nothing is added to the events', async () => {
    const store = await openStore('memory:');
    await store.append('plain-1', [{ type: 'A', data: {}, metadata: { by: 'test' } }]);
    for await (const event of store.read('plain-1')) expect(event.metadata).toEqual({ by: 'test' });
    await store.close();
  });

  it('one trace from the HTTP append to the projection, subscription and group that handle the event', async () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(provider);
    const server = await startServer({ store: `sqlite:${join(dir.path, 'traced.db')}`, port: 0, logger: pino({ level: 'silent' }) });
    const store = server.store as SqliteEventStore;
    const handledBySubscription: string[] = [];
    const handledByGroup: string[] = [];
    const consumers = [
      await startProjection(store, totals('totals')),
      await startSubscription(store, { name: 'mailer', handler: (event) => void handledBySubscription.push(event.id) }),
    ];
    const group = await joinGroup(store, {
      group: 'audit',
      partitions: 2,
      leaseMs: 3000,
      handler: (event) => void handledByGroup.push(event.id),
    });
    try {
      const response = await fetch(`${server.url}/v1/streams/account-1`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01` },
        body: JSON.stringify({ events: [{ id: '3a1c2f0e-0000-4000-8000-000000000001', type: 'Deposited', data: { amount: 5 } }] }),
      });
      expect(response.status).toBe(201);
      const { position } = (await response.json()) as { position: string };
      for (const consumer of consumers) await waitForPosition(consumer, BigInt(position));
      await expect.poll(() => handledByGroup.length, { timeout: 10_000 }).toBe(1);

      const spans = exporter.getFinishedSpans();
      const [http] = byName(spans, 'POST /v1/streams/:stream');
      expect(http?.kind).toBe(SpanKind.SERVER);
      expect(http?.spanContext().traceId).toBe(CALLER_TRACE);
      expect(http?.parentSpanContext?.spanId).toBe(CALLER_SPAN);
      expect(http?.attributes['http.response.status_code']).toBe(201);
      const [append] = byName(spans, 'logline.append');
      expect(append?.parentSpanContext?.spanId).toBe(http?.spanContext().spanId);
      expect(append?.attributes).toMatchObject({
        'db.system.name': 'sqlite',
        'logline.stream': 'account-1',
        'logline.append.events': 1,
        'logline.commit.appends': 1,
        'logline.commit.events': 1,
        'logline.position': position,
      });

      // The event carries the append's trace context…
      const [stored] = await collect(store.read('account-1'));
      expect(stored?.metadata.traceparent).toBe(`00-${CALLER_TRACE}-${append?.spanContext().spanId}-01`);
      // …and each consumer continues that trace, as a child of the append.
      const handling = [
        ...byName(spans, 'logline.consumer.batch').filter((span) => span.attributes['logline.events'] === 1),
        ...byName(spans, 'logline.subscription.handle'),
        ...byName(spans, 'logline.group.handle'),
      ];
      expect(handling.map((span) => span.attributes['logline.consumer'])).toEqual(expect.arrayContaining(['totals@v1', 'mailer']));
      expect(handling.some((span) => String(span.attributes['logline.consumer']).startsWith('audit#'))).toBe(true);
      for (const span of handling) {
        expect(span.spanContext().traceId).toBe(CALLER_TRACE);
        expect(span.parentSpanContext?.spanId).toBe(append?.spanContext().spanId);
        expect(span.kind).toBe(SpanKind.CONSUMER);
      }

      // An SSE client that receives the event continues the trace too.
      const sse = new AbortController();
      const stream = await fetch(`${server.url}/v1/streams/account-1/subscribe?from=0`, { signal: sse.signal });
      const reader = (stream.body as ReadableStream<Uint8Array>).getReader();
      let received = '';
      while (!received.includes('data: ')) received += new TextDecoder().decode((await reader.read()).value);
      sse.abort();
      await expect.poll(() => byName(exporter.getFinishedSpans(), 'logline.sse.deliver').length).toBe(1);
      const [delivery] = byName(exporter.getFinishedSpans(), 'logline.sse.deliver');
      expect(delivery?.spanContext().traceId).toBe(CALLER_TRACE);
      expect(delivery?.parentSpanContext?.spanId).toBe(append?.spanContext().spanId);

      // A client's retry (same event id) comes in another trace: still recognised as the same append.
      const retry = await fetch(`${server.url}/v1/streams/account-1`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01` },
        body: JSON.stringify({ events: [{ id: '3a1c2f0e-0000-4000-8000-000000000001', type: 'Deposited', data: { amount: 5 } }] }),
      });
      expect(retry.status).toBe(201);
      expect(((await retry.json()) as { position: string }).position).toBe(position);

      // A read is a span too.
      exporter.reset();
      expect((await fetch(`${server.url}/v1/streams/account-1`)).status).toBe(200);
      expect(byName(exporter.getFinishedSpans(), 'logline.read')[0]?.attributes).toMatchObject({
        'logline.stream': 'account-1',
        'logline.read.events': 1,
      });

      // A batch that holds events of several traces links to each of them.
      // (This one from the active context of application code, not from HTTP.)
      await trace.getTracer('test').startActiveSpan('job', async (span) => {
        await store.append('account-2', [{ type: 'Deposited', data: { amount: 1 } }]);
        span.end();
      });
      exporter.reset();
      const late = await startProjection(store, totals('late_totals'));
      await waitForPosition(late, await store.headPosition());
      await late.stop();
      const [batch] = byName(exporter.getFinishedSpans(), 'logline.consumer.batch').filter(
        (span) => span.attributes['logline.consumer'] === 'late_totals@v1',
      );
      expect(batch?.attributes['logline.events']).toBe(2);
      expect(batch?.links.map((link) => link.context.traceId)).toEqual(expect.arrayContaining([CALLER_TRACE]));
      expect(batch?.links).toHaveLength(2);
      expect(new Set(batch?.links.map((link) => link.context.traceId)).size).toBe(2);
    } finally {
      await group.stop();
      for (const consumer of consumers) await consumer.stop();
      await server.close();
      trace.disable();
      context.disable();
      await provider.shutdown();
    }
  }, 30_000);
});
