/**
 * Validation of everything a writer or reader hands in. Stores call these before touching
 * storage, so bad input fails with a typed error and nothing is stored.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { AppendTooLargeError, EventTooLargeError, InvalidArgumentError, InvalidEventError, InvalidStreamIdError } from './errors.js';
import { personalDataProblems } from './personal-data.js';
import { currentTraceparent, TRACEPARENT } from './tracing.js';
import type { ExpectedVersion, JsonObject, JsonValue, NewEvent, ReadAllOptions, ReadOptions, StoreLimits } from './types.js';

export const STREAM_ID_PATTERN = /^[A-Za-z0-9_.:@-]{1,200}$/;
export const EVENT_TYPE_PATTERN = /^[A-Za-z0-9_.:@/-]{1,200}$/;
/** A category: what a stream id may hold before its first '-'. */
export const CATEGORY_PATTERN = /^[A-Za-z0-9_.:@]{1,200}$/;

/**
 * The category of a stream: the part of its id before the first '-' (KurrentDB's default rule),
 * undefined for an id without '-'. So a category `c` is exactly the streams with prefix `c-`,
 * which is what reading it needs rights on.
 */
export function categoryOf(streamId: string): string | undefined {
  const dash = streamId.indexOf('-');
  return dash > 0 ? streamId.slice(0, dash) : undefined;
}

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
  id: z.guid({ error: 'id must be a UUID (8-4-4-4-12 hex digits)' }).optional(),
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

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;
const EVENT_KEYS = new Set(['id', 'type', 'data', 'metadata', 'occurredAt']);

const isPlainObject = (value: object): boolean => {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
};

function isJsonValue(value: unknown, depth = 0): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object': {
      if (value === null) return true;
      if (depth > 64) return false;
      if (Array.isArray(value)) return value.every((item) => isJsonValue(item, depth + 1));
      if (!isPlainObject(value)) return false;
      for (const key in value) if (!isJsonValue((value as Record<string, unknown>)[key], depth + 1)) return false;
      return true;
    }
    default:
      return false;
  }
}

/**
 * The hot path: the same rules as `newEventSchema`, checked by hand because appends validate every
 * event. When it says no, the zod schema runs to explain why.
 */
export function isValidEventFast(event: unknown): event is NewEvent {
  if (typeof event !== 'object' || event === null || Array.isArray(event) || !isPlainObject(event)) return false;
  const e = event as Record<string, unknown>;
  for (const key in e) if (!EVENT_KEYS.has(key)) return false;
  if (typeof e.type !== 'string' || !EVENT_TYPE_PATTERN.test(e.type)) return false;
  if (!('data' in e) || !isJsonValue(e.data)) return false;
  if (e.id !== undefined && !(typeof e.id === 'string' && UUID_PATTERN.test(e.id))) return false;
  if (e.metadata !== undefined) {
    const m = e.metadata;
    if (typeof m !== 'object' || m === null || Array.isArray(m) || !isJsonValue(m)) return false;
  }
  if (e.occurredAt !== undefined) {
    if (typeof e.occurredAt !== 'string' || !ISO_DATE_TIME.test(e.occurredAt) || Number.isNaN(Date.parse(e.occurredAt))) return false;
  }
  return true;
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
  const traceparent = currentTraceparent();
  for (let i = 0; i < events.length; i++) {
    const event = events[i];
    if (!isValidEventFast(event)) {
      const parsed = newEventSchema.safeParse(event);
      throw new InvalidEventError(i, parsed.success ? ['it is not a plain JSON object with JSON values'] : describeIssues(parsed.error));
    }
    const personal = personalDataProblems(event.data, event.metadata);
    if (personal.length) throw new InvalidEventError(i, personal);
    // Ids are UUIDs, which compare case-insensitively: one canonical spelling (lower case, as
    // PostgreSQL's uuid prints them) makes an upper-case retry match its original on every backend.
    const id = event.id === undefined ? randomUUID() : event.id.toLowerCase();
    if (seen.has(id)) throw new InvalidEventError(i, [`id ${id} appears twice in this append`]);
    seen.add(id);
    const dataJson = JSON.stringify(event.data);
    let metadata = event.metadata ?? {};
    // The append's trace context travels with the event to the consumers that handle it later.
    if (traceparent !== undefined && !Object.hasOwn(metadata, TRACEPARENT)) metadata = { ...metadata, [TRACEPARENT]: traceparent };
    const metadataJson = event.metadata || traceparent !== undefined ? JSON.stringify(metadata) : '{}';
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
  /** Events as stored (personal fields sealed), see ReadAllOptions.sealed. */
  sealed: boolean;
  category: string | undefined;
}

export function normalizeReadAllOptions(opts: ReadAllOptions | undefined): NormalizedReadAll {
  const { from = 0n, limit, types, streamPrefix, category, sealed = false } = opts ?? {};
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
  if (typeof sealed !== 'boolean') throw new InvalidArgumentError('sealed', `got ${JSON.stringify(sealed)}`, 'true or false');
  assertCategory(category);
  return {
    from,
    limit: limit ?? Number.POSITIVE_INFINITY,
    types: types?.length ? [...new Set(types)] : undefined,
    streamPrefix: streamPrefix || undefined,
    sealed,
    category,
  };
}

export function assertCategory(category: unknown): asserts category is string | undefined {
  if (category === undefined || (typeof category === 'string' && CATEGORY_PATTERN.test(category))) return;
  throw new InvalidArgumentError(
    'category',
    `got ${JSON.stringify(category)}`,
    "a stream category: 1 to 200 characters of [A-Za-z0-9_.:@] (the part of a stream id before its first '-')",
  );
}

/** The filters readAll, subscribe, subscriptions and projections share. */
export interface EventFilter {
  types?: string[];
  streamPrefix?: string;
  category?: string;
}

/** Whether a recorded event passes a readAll/subscribe filter (for backends that filter in memory). */
export function matchesFilter(event: { type: string; streamId: string }, filter: EventFilter): boolean {
  if (filter.types && !filter.types.includes(event.type)) return false;
  if (filter.streamPrefix && !event.streamId.startsWith(filter.streamPrefix)) return false;
  if (filter.category && !(event.streamId.startsWith(filter.category) && event.streamId[filter.category.length] === '-')) return false;
  return true;
}
