/**
 * Idempotency by event id (guarantee 3). When some ids of an append are already stored, the
 * append is either an exact retry of the original (same stream, same place, same content:
 * return the original result, store nothing) or a conflict.
 */
import { IdempotencyConflictError } from './errors.js';
import { TRACEPARENT } from './tracing.js';
import type { AppendResult, ExpectedVersion, JsonObject, JsonValue, RecordedEvent } from './types.js';
import type { PreparedEvent } from './validation.js';

export function jsonEqual(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => jsonEqual(item, b[i]));
  }
  if (Array.isArray(b)) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((key) => Object.hasOwn(b, key) && jsonEqual(a[key], b[key]));
}

/**
 * `stored` holds the already-stored events among `events`' ids (any order, may be partial).
 * Returns the original append's result, or throws IdempotencyConflictError.
 */
export function resolveRetry(stream: string, expected: ExpectedVersion, events: PreparedEvent[], stored: RecordedEvent[]): AppendResult {
  const byId = new Map(stored.map((event) => [event.id, event]));
  const first = byId.get(events[0]?.id ?? '');
  for (let i = 0; i < events.length; i++) {
    const event = events[i] as PreparedEvent;
    const original = byId.get(event.id);
    if (!original) {
      const known = stored[0] as RecordedEvent;
      throw new IdempotencyConflictError(stream, known.id, 'this append mixes stored and new event ids');
    }
    if (original.streamId !== stream) {
      throw new IdempotencyConflictError(stream, event.id, `it belongs to stream '${original.streamId}'`);
    }
    if (!first || original.streamVersion !== first.streamVersion + i) {
      throw new IdempotencyConflictError(
        stream,
        event.id,
        `it is at version ${original.streamVersion}, not in the same place as in the original append`,
      );
    }
    const sameContent =
      original.type === event.type &&
      jsonEqual(original.data, event.data) &&
      jsonEqual(withoutTraceContext(original.metadata), withoutTraceContext(event.metadata)) &&
      (event.occurredAt === undefined || event.occurredAt === original.occurredAt);
    if (!sameContent) throw new IdempotencyConflictError(stream, event.id, 'the stored event has different content');
  }
  const firstVersion = (first as RecordedEvent).streamVersion;
  const expectedMatchesOriginal =
    expected === 'any' ||
    (expected === 'no_stream' && firstVersion === 1) ||
    (expected === 'exists' && firstVersion > 1) ||
    expected === firstVersion - 1;
  if (!expectedMatchesOriginal) {
    throw new IdempotencyConflictError(
      stream,
      (first as RecordedEvent).id,
      `the original append started at version ${firstVersion}, which does not match expectedVersion ${JSON.stringify(expected)}`,
    );
  }
  const last = byId.get((events[events.length - 1] as PreparedEvent).id) as RecordedEvent;
  return { streamVersion: last.streamVersion, position: last.position };
}

/** A retry runs in another trace (a new request): its trace context is not part of the event's content. */
function withoutTraceContext(metadata: JsonObject): JsonObject {
  if (!Object.hasOwn(metadata, TRACEPARENT)) return metadata;
  const { [TRACEPARENT]: _trace, ...rest } = metadata;
  return rest;
}
