/**
 * Validation of everything a writer or reader hands in. Stores call these before touching
 * storage, so bad input fails with a typed error and nothing is stored.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { AppendTooLargeError, EventTooLargeError, InvalidArgumentError, InvalidEventError, InvalidStreamIdError } from './errors.js';
import type { ExpectedVersion, JsonObject, JsonValue, NewEvent, ReadAllOptions, ReadOptions, StoreLimits } from './types.js';

export const STREAM_ID_PATTERN = /^[A-Za-z0-9_.:@-]{1,200}$/;
export const EVENT_TYPE_PATTERN = /^[A-Za-z0-9_.:@/-]{1,200}$/;

export function assertStreamId(stream: unknown): asserts stream is string {
  if (typeof stream !== 'string') throw new InvalidStreamIdError(stream, `it is a ${typeof stream}, not a string`);
  if (STREAM_ID_PATTERN.test(stream)) return;
  if (stream.length === 0) throw new InvalidStreamIdError(stream, 'it is empty');
  if (stream.length > 200) throw new InvalidStreamIdError(stream, `it is ${stream.length} characters long`);
  if (stream.startsWith('$')) throw new InvalidStreamIdError(stream, "names starting with '$' are reserved for system streams");
  const bad = [...stream].find((ch) => !/[A-Za-z0-9_.:@-]/.test(ch)) ?? '?';
  throw new InvalidStreamIdError(stream, `it contains the character ${JSON.stringify(bad)}`);
}

/** The schema of one NewEvent. The HTTP server reuses it (and its JSON Schema) for request bodies. */
export const newEventSchema = z.strictObject({
  id: z.uuid({ error: 'id must be a UUID' }).optional(),
  type: z.string().regex(EVENT_TYPE_PATTERN, { error: 'type must be 1 to 200 characters of [A-Za-z0-9_.:@/-]' }),
  data: z.json({ error: 'data must be a JSON value' }),
  metadata: z.record(z.string(), z.json()).optional(),
  occurredAt: z.iso.datetime({ offset: true, error: 'occurredAt must be an ISO-8601 date-time' }).optional(),
});

export const expectedVersionSchema = z.union([z.literal(['any', 'no_stream', 'exists']), z.int().min(0).max(Number.MAX_SAFE_INTEGER)]);

/** An event ready for storage: validated, with its id and its JSON text. */
export interface PreparedEvent {
  id: string;
  type: string;
  data: JsonValue;
  metadata: JsonObject;
  dataJson: string;
  /** '{}' when there is no metadata. */
  metadataJson: string;
  /** Normalised to UTC ISO-8601; undefined means "use recordedAt". */
  occurredAt: string | undefined;
}

function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    const path = issue.path.length ? issue.path.join('.') : 'event';
    if (issue.code === 'unrecognized_keys')
      return `unknown field(s) ${issue.keys.join(', ')}; allowed: id, type, data, metadata, occurredAt`;
    if (issue.code === 'invalid_type' && issue.input === undefined) return `${path} is required`;
    return `${path}: ${issue.message}`;
  });
}

export function prepareEvents(events: unknown, limits: StoreLimits): PreparedEvent[] {
  if (!Array.isArray(events)) throw new InvalidArgumentError('events', `got ${typeof events}`, 'an array of events');
  if (events.length > limits.maxAppendEvents) throw new AppendTooLargeError('events', events.length, limits.maxAppendEvents);
  const prepared: PreparedEvent[] = new Array(events.length);
  const seen = new Set<string>();
  let totalBytes = 0;
  for (let i = 0; i < events.length; i++) {
    const parsed = newEventSchema.safeParse(events[i]);
    if (!parsed.success) throw new InvalidEventError(i, describeIssues(parsed.error));
    const event = parsed.data as NewEvent;
    const id = event.id ?? randomUUID();
    if (seen.has(id)) throw new InvalidEventError(i, [`id ${id} appears twice in this append`]);
    seen.add(id);
    const dataJson = JSON.stringify(event.data);
    const metadata = event.metadata ?? {};
    const metadataJson = event.metadata ? JSON.stringify(metadata) : '{}';
    const bytes = Buffer.byteLength(dataJson) + Buffer.byteLength(metadataJson) + event.type.length + 100;
    if (bytes > limits.maxEventBytes) throw new EventTooLargeError(i, bytes, limits.maxEventBytes);
    totalBytes += bytes;
    if (totalBytes > limits.maxAppendBytes) throw new AppendTooLargeError('bytes', totalBytes, limits.maxAppendBytes);
    const occurredAt = event.occurredAt === undefined ? undefined : new Date(event.occurredAt).toISOString();
    prepared[i] = { id, type: event.type, data: event.data, metadata, dataJson, metadataJson, occurredAt };
  }
  return prepared;
}

export function assertExpectedVersion(expected: unknown): asserts expected is ExpectedVersion {
  if (!expectedVersionSchema.safeParse(expected).success) {
    throw new InvalidArgumentError(
      'expectedVersion',
      `got ${JSON.stringify(expected)}`,
      "'any', 'no_stream', 'exists' or a non-negative integer stream version",
    );
  }
}

/** Whether a stream at `actual` satisfies `expected`. */
export function versionMatches(expected: ExpectedVersion, actual: number): boolean {
  if (expected === 'any') return true;
  if (expected === 'no_stream') return actual === 0;
  if (expected === 'exists') return actual > 0;
  return expected === actual;
}

const isPositiveInt = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n > 0;

export interface NormalizedRead {
  from: number | undefined;
  backward: boolean;
  limit: number;
}

export function normalizeReadOptions(opts: ReadOptions | undefined): NormalizedRead {
  const { from, direction = 'forward', limit } = opts ?? {};
  if (direction !== 'forward' && direction !== 'backward') {
    throw new InvalidArgumentError('direction', `got ${JSON.stringify(direction)}`, "'forward' or 'backward'");
  }
  if (from !== undefined && !(typeof from === 'number' && Number.isSafeInteger(from) && from >= 0)) {
    throw new InvalidArgumentError('from', `got ${JSON.stringify(from)}`, 'a stream version (integer ≥ 0)');
  }
  if (limit !== undefined && !isPositiveInt(limit)) {
    throw new InvalidArgumentError('limit', `got ${JSON.stringify(limit)}`, 'a positive integer');
  }
  return { from, backward: direction === 'backward', limit: limit ?? Number.POSITIVE_INFINITY };
}

export interface NormalizedReadAll {
  from: bigint;
  limit: number;
  types: string[] | undefined;
  streamPrefix: string | undefined;
}

export function normalizeReadAllOptions(opts: ReadAllOptions | undefined): NormalizedReadAll {
  const { from = 0n, limit, types, streamPrefix } = opts ?? {};
  if (typeof from !== 'bigint' || from < 0n) {
    throw new InvalidArgumentError('from', `got ${String(from)}`, 'a position as a bigint ≥ 0n (exclusive)');
  }
  if (limit !== undefined && !isPositiveInt(limit)) {
    throw new InvalidArgumentError('limit', `got ${JSON.stringify(limit)}`, 'a positive integer');
  }
  if (types !== undefined && !(Array.isArray(types) && types.every((t) => typeof t === 'string'))) {
    throw new InvalidArgumentError('types', `got ${JSON.stringify(types)}`, 'an array of event type names');
  }
  if (streamPrefix !== undefined && typeof streamPrefix !== 'string') {
    throw new InvalidArgumentError('streamPrefix', `got ${typeof streamPrefix}`, 'a string');
  }
  return {
    from,
    limit: limit ?? Number.POSITIVE_INFINITY,
    types: types?.length ? types : undefined,
    streamPrefix: streamPrefix || undefined,
  };
}

/** Whether a recorded event passes a readAll/subscribe filter (for backends that filter in memory). */
export function matchesFilter(event: { type: string; streamId: string }, filter: { types?: string[]; streamPrefix?: string }): boolean {
  if (filter.types && !filter.types.includes(event.type)) return false;
  if (filter.streamPrefix && !event.streamId.startsWith(filter.streamPrefix)) return false;
  return true;
}
