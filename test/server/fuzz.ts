/**
 * Random append requests for the HTTP fuzz (test suite: a few hundred cases; bench: 10k+).
 * Bodies, headers and stream ids range from valid to hostile. The invariants: never a 5xx,
 * every 4xx is a typed JSON error, and the store holds exactly the events of the 201s.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';

export interface FuzzRequest {
  stream: string;
  headers: Record<string, string>;
  body: string;
  /** Events the body would store if accepted (for the count invariant). */
  events: number;
}

const validStream = fc.stringMatching(/^[A-Za-z0-9_.:@-]{1,40}$/).filter((s) => s !== '.' && s !== '..');
const streamId = fc.oneof(
  { weight: 6, arbitrary: validStream },
  { weight: 1, arbitrary: fc.string({ minLength: 0, maxLength: 30, unit: 'binary' }) },
  { weight: 1, arbitrary: fc.constantFrom('$all', '$x', 'a b', 'a/b', '%', 'é', 'x'.repeat(201), '.', '..', '') },
);

const headerText = fc.string({ maxLength: 24, unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) });
const contentType = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('application/json', 'application/json; charset=utf-8') },
  {
    weight: 2,
    arbitrary: fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/vnd.x+json', '', 'application/jsonx'),
  },
  { weight: 1, arbitrary: headerText },
);
const ifMatch = fc.oneof(
  { weight: 6, arbitrary: fc.constant(undefined) },
  { weight: 2, arbitrary: fc.constantFrom('"0"', '"1"', '*', '"2"') },
  { weight: 1, arbitrary: fc.constantFrom('W/"1"', '"-1"', '"1", "2"', '"99999999999999999999"', '1', '""') },
  { weight: 1, arbitrary: headerText },
);
const ifNoneMatch = fc.oneof(
  { weight: 8, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.constant('*') },
  { weight: 1, arbitrary: headerText },
);

const validEvent = fc.record(
  {
    type: fc.stringMatching(/^[A-Za-z][A-Za-z0-9]{0,15}$/),
    data: fc.jsonValue({ maxDepth: 3 }),
    metadata: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
    occurredAt: fc.date({ min: new Date(0), max: new Date('2100-01-01'), noInvalidDate: true }).map((d) => d.toISOString()),
  },
  { requiredKeys: ['type', 'data'] },
);
const hostileEvent = fc.oneof(
  fc.anything(),
  fc.record({ type: fc.string(), data: fc.anything() }),
  fc.record({ id: fc.string(), type: fc.constant('A'), data: fc.constant(1) }),
  fc.record({ type: fc.constant('A'), data: fc.constant(1), occurredAt: fc.string() }),
  fc.record({ type: fc.constant('A'), data: fc.constant(1), extra: fc.jsonValue() }),
  fc.record({ type: fc.constant('A'), data: fc.constant(1), metadata: fc.oneof(fc.array(fc.integer()), fc.string(), fc.constant(null)) }),
);

type Body = { text: string; events: number };
const body: fc.Arbitrary<Body> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.array(validEvent, { minLength: 0, maxLength: 5 }).map((events) => ({
      // Fresh ids: a 201 always stores new events, so the count invariant is exact.
      text: JSON.stringify({ events: events.map((e) => ({ id: randomUUID(), ...e })) }),
      events: events.length,
    })),
  },
  {
    weight: 3,
    arbitrary: fc.tuple(fc.array(validEvent, { maxLength: 3 }), hostileEvent, fc.nat(3)).map(([events, bad, at]) => {
      const list: unknown[] = [...events];
      list.splice(Math.min(at, list.length), 0, bad);
      return { text: JSON.stringify({ events: list }), events: list.length };
    }),
  },
  { weight: 1, arbitrary: fc.jsonValue().map((v) => ({ text: JSON.stringify(v) ?? 'null', events: 0 })) },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.array(validEvent, { minLength: 1, maxLength: 3 }), fc.nat()).map(([events, cut]) => {
      const text = JSON.stringify({ events });
      return { text: text.slice(0, cut % text.length), events: 0 };
    }),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 200, unit: 'binary' }).map((text) => ({ text, events: 0 })) },
);

export const fuzzRequest: fc.Arbitrary<FuzzRequest> = fc
  .record({ stream: streamId, contentType, ifMatch, ifNoneMatch, body })
  .map(({ stream, contentType: type, ifMatch: match, ifNoneMatch: noneMatch, body: b }) => {
    const headers: Record<string, string> = { 'content-type': type };
    if (match !== undefined) headers['if-match'] = match;
    if (noneMatch !== undefined) headers['if-none-match'] = noneMatch;
    return { stream, headers, body: b.text, events: b.events };
  });

export interface FuzzOutcome {
  status: number;
  /** Events acknowledged by a 201 (0 otherwise). */
  stored: number;
  /** What is wrong with the answer, if anything. */
  problem?: string;
}

/** Sends one request and checks the answer on its own (the count invariant is the caller's). */
export async function sendFuzz(base: string, request: FuzzRequest): Promise<FuzzOutcome> {
  const response = await fetch(`${base}/v1/streams/${encodeURIComponent(request.stream)}`, {
    method: 'POST',
    headers: request.headers,
    body: request.body,
  });
  const text = await response.text();
  const { status } = response;
  if (status >= 500) return { status, stored: 0, problem: `status ${status}: ${text.slice(0, 300)}` };
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return { status, stored: 0, problem: `not JSON: ${text.slice(0, 200)}` };
  }
  if (status === 201) return { status, stored: request.events };
  if (status < 400) return { status, stored: 0, problem: `unexpected status ${status}` };
  if (typeof parsed.error !== 'string' || typeof parsed.message !== 'string') {
    return { status, stored: 0, problem: `error body without error/message: ${text.slice(0, 200)}` };
  }
  return { status, stored: 0 };
}

const queryValue = fc.oneof(
  fc.constantFrom('0', '1', '5', '100', '1000', '1001', '-1', 'abc', '', '1e3', '99999999999999999999', '9223372036854775808', ' 1'),
  fc.string({ maxLength: 12 }),
);
const query = fc.dictionary(
  fc.constantFrom('from', 'limit', 'direction', 'types', 'streamPrefix', 'category', 'prefix', 'after', 'x'),
  queryValue,
  {
    maxKeys: 4,
  },
);

/** A random read: a stream page, the $all page or the stream list, with random query parameters and conditional headers. */
export const fuzzRead: fc.Arbitrary<{ path: string; headers: Record<string, string> }> = fc
  .record({
    kind: fc.constantFrom('stream', 'all', 'list'),
    stream: streamId,
    query,
    ifNoneMatch: fc.option(fc.oneof(fc.constantFrom('"1"', '*', 'W/"1"', '"1", "2"'), headerText), { nil: undefined }),
  })
  .map(({ kind, stream, query: q, ifNoneMatch: inm }) => {
    const search = new URLSearchParams(q).toString();
    const path = kind === 'stream' ? `/v1/streams/${encodeURIComponent(stream)}` : kind === 'all' ? '/v1/all' : '/v1/streams';
    const headers: Record<string, string> = inm === undefined ? {} : { 'if-none-match': inm };
    return { path: search ? `${path}?${search}` : path, headers };
  });

/** Sends one random read; a problem is a 5xx or an answer that is neither JSON nor a 304. */
export async function sendFuzzRead(base: string, request: { path: string; headers: Record<string, string> }): Promise<FuzzOutcome> {
  const response = await fetch(`${base}${request.path}`, { headers: request.headers });
  const text = await response.text();
  const { status } = response;
  if (status >= 500) return { status, stored: 0, problem: `status ${status} for ${request.path}: ${text.slice(0, 300)}` };
  if (status === 304) return { status, stored: 0 };
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    if (status >= 400 && (typeof body.error !== 'string' || typeof body.message !== 'string')) {
      return { status, stored: 0, problem: `error body without error/message for ${request.path}` };
    }
  } catch {
    return { status, stored: 0, problem: `not JSON for ${request.path}: ${text.slice(0, 200)}` };
  }
  return { status, stored: 0 };
}
