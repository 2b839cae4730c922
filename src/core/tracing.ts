/**
 * OpenTelemetry tracing, optional: `@opentelemetry/api` is an optional peer, loaded on first use.
 * Without it, or without an SDK registered, every helper here runs the work directly after one
 * cheap check, so the append hot path pays nothing for tracing nobody records.
 *
 * The trace context of an append (W3C `traceparent`) is stored in each event's metadata, and the
 * consumers that handle the event later (subscriptions, consumer groups, projections) continue
 * that trace: one trace from the HTTP request that appended to the read-model update.
 */
import { createRequire } from 'node:module';
import type * as OTel from '@opentelemetry/api';

type Api = typeof OTel;
export type Span = OTel.Span;

/** The metadata key that carries an event's trace context (W3C Trace Context, version 00). */
export const TRACEPARENT = 'traceparent';

let api: Api | null | undefined;

function loadApi(): Api | null {
  if (api === undefined) {
    try {
      // Synchronous and only once: the first append decides; the peer is shared through globalThis
      // with whatever copy of the API the application's SDK registered itself with.
      api = createRequire(import.meta.url)('@opentelemetry/api') as Api;
    } catch {
      api = null;
    }
  }
  return api;
}

/** The API and a tracer when an SDK is registered; undefined otherwise (the no-op path). */
function recording(): { otel: Api; tracer: OTel.Tracer } | undefined {
  const otel = loadApi();
  if (!otel) return undefined;
  // Before an SDK registers, the global provider delegates to the API's no-op provider.
  const provider = otel.trace.getTracerProvider() as { getDelegate?: () => object };
  if (provider.getDelegate?.().constructor.name === 'NoopTracerProvider') return undefined;
  return { otel, tracer: otel.trace.getTracer('logline') };
}

const TRACEPARENT_PATTERN = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** A remote span context from a `traceparent` value; undefined when it is not a valid one. */
export function parseTraceparent(value: unknown): OTel.SpanContext | undefined {
  if (typeof value !== 'string') return undefined;
  const match = TRACEPARENT_PATTERN.exec(value);
  if (!match) return undefined;
  const [, traceId, spanId, flags] = match as unknown as [string, string, string, string];
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined;
  return { traceId, spanId, traceFlags: Number.parseInt(flags, 16) & 1, isRemote: true };
}

function formatTraceparent(context: OTel.SpanContext): string {
  return `00-${context.traceId}-${context.spanId}-${(context.traceFlags & 1).toString(16).padStart(2, '0')}`;
}

/** The active span's `traceparent` when tracing records, else undefined (stored in appended events' metadata). */
export function currentTraceparent(): string | undefined {
  const on = recording();
  if (!on) return undefined;
  const context = on.otel.trace.getSpan(on.otel.context.active())?.spanContext();
  return context && on.otel.trace.isSpanContextValid(context) ? formatTraceparent(context) : undefined;
}

function ended<T>(span: Span, work: Promise<T>, onSuccess?: (value: T) => void): Promise<T> {
  return work.then(
    (value) => {
      onSuccess?.(value);
      span.end();
      return value;
    },
    (error: unknown) => {
      failed(span, error);
      span.end();
      throw error;
    },
  );
}

function failed(span: Span, error: unknown): void {
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: 2 /* SpanStatusCode.ERROR */, message: (error as Error)?.message ?? String(error) });
}

/**
 * Runs an append inside a `logline.append` span (the active span while the events are prepared,
 * so their `traceparent` points at it). `run` gets the span to record the coalesced batch on.
 */
export function traceAppend<T extends { position: bigint; streamVersion: number }>(
  backend: string,
  stream: string,
  events: unknown,
  run: (span: Span | undefined) => Promise<T>,
): Promise<T> {
  const on = recording();
  if (!on) return run(undefined);
  const attributes = {
    'db.system.name': backend,
    'logline.stream': stream,
    'logline.append.events': Array.isArray(events) ? events.length : 0,
  };
  return on.tracer.startActiveSpan('logline.append', { kind: on.otel.SpanKind.INTERNAL, attributes }, (span) =>
    ended(span, run(span), (result) => {
      span.setAttribute('logline.position', String(result.position));
      span.setAttribute('logline.stream_version', result.streamVersion);
    }),
  );
}

/** Records on an append's span the commit it joined: how many appends and events it carried. */
export function recordCommit(span: Span | undefined, appends: number, events: number): void {
  if (!span) return;
  span.setAttribute('logline.commit.appends', appends);
  span.setAttribute('logline.commit.events', events);
}

/** Wraps a read (an async iterable) in a span that lasts until the reader stops. */
export async function* traceRead<T>(name: string, attributes: OTel.Attributes, read: () => AsyncIterable<T>): AsyncGenerator<T> {
  const on = recording();
  if (!on) {
    yield* read();
    return;
  }
  const span = on.tracer.startSpan(name, { kind: on.otel.SpanKind.INTERNAL, attributes });
  let count = 0;
  try {
    for await (const item of on.otel.context.with(on.otel.trace.setSpan(on.otel.context.active(), span), read)) {
      count++;
      yield item;
    }
  } catch (error) {
    failed(span, error);
    throw error;
  } finally {
    span.setAttribute('logline.read.events', count);
    span.end();
  }
}

interface WithMetadata {
  metadata?: Record<string, unknown>;
  position?: bigint;
}

/**
 * Runs the handling of stored events in a span that continues their append's trace: the parent
 * when they all come from one trace context, links to each of them otherwise.
 */
export function traceHandling<T>(
  name: string,
  attributes: OTel.Attributes,
  events: WithMetadata[],
  work: () => Promise<T> | T,
): Promise<T> | T {
  const on = recording();
  if (!on) return work();
  const contexts = new Map<string, OTel.SpanContext>();
  for (const event of events) {
    const value = event.metadata?.[TRACEPARENT];
    const parsed = parseTraceparent(value);
    if (parsed && contexts.size < 128) contexts.set(value as string, parsed);
  }
  const { otel, tracer } = on;
  const [only] = contexts.values();
  const parent = contexts.size === 1 && only ? otel.trace.setSpanContext(otel.ROOT_CONTEXT, only) : otel.context.active();
  const links = contexts.size > 1 ? [...contexts.values()].map((context) => ({ context })) : [];
  const span = tracer.startSpan(
    name,
    { kind: otel.SpanKind.CONSUMER, attributes: { ...attributes, 'logline.events': events.length }, links },
    parent,
  );
  let result: Promise<T> | T;
  try {
    result = otel.context.with(otel.trace.setSpan(parent, span), work);
  } catch (error) {
    failed(span, error);
    span.end();
    throw error;
  }
  return ended(span, Promise.resolve(result));
}

/**
 * Runs an incoming request in a SERVER span, child of the caller's `traceparent` when it sent a
 * valid one, so the appends it makes (and the events' stored trace context) join the caller's trace.
 */
export function traceIncoming<T>(
  name: string,
  attributes: OTel.Attributes,
  traceparent: string | undefined,
  work: (span: Span | undefined) => Promise<T>,
): Promise<T> {
  const on = recording();
  if (!on) return work(undefined);
  const { otel, tracer } = on;
  const remote = parseTraceparent(traceparent);
  const parent = remote ? otel.trace.setSpanContext(otel.ROOT_CONTEXT, remote) : otel.context.active();
  return tracer.startActiveSpan(name, { kind: otel.SpanKind.SERVER, attributes }, parent, (span) => ended(span, work(span)));
}
