/**
 * The HTTP API's schemas. The same zod objects validate requests and generate /v1/openapi.json,
 * so the published document cannot drift from what the server accepts.
 */
import { z } from 'zod';
import { InvalidArgumentError, InvalidEventError, type LoglineError } from '../core/errors.js';
import type { ExpectedVersion, NewEvent } from '../core/types.js';
import { CATEGORY_PATTERN, EVENT_TYPE_PATTERN, isValidEventFast, newEventSchema, STREAM_ID_PATTERN } from '../core/validation.js';

export const MAX_PAGE = 1000;
export const DEFAULT_PAGE = 100;

export const appendRequestSchema = z.strictObject({ events: z.array(newEventSchema) }).meta({
  id: 'AppendRequest',
  description: 'Events to append to one stream, atomically.',
});

const INGEST_ID_RULE = "id is required: the producer's id, 1 to 200 visible ASCII characters (no spaces)";

export const ingestRequestSchema = z
  .strictObject({
    events: z.array(
      newEventSchema.extend({
        id: z
          .string({ error: INGEST_ID_RULE })
          .regex(/^[\x21-\x7e]{1,200}$/, { error: INGEST_ID_RULE })
          .meta({
            description: "The producer's id of the event: a retry with the same id (in the same stream) stores nothing.",
          }),
      }),
    ),
  })
  .meta({
    id: 'IngestRequest',
    description: 'Events from an outside producer, each with its own id; appended to one stream atomically.',
  });

const position = z.string().regex(/^\d+$/).meta({ description: 'A global position, as a decimal string.' });

export const recordedEventSchema = z
  .object({
    id: z.uuid(),
    type: z.string().regex(EVENT_TYPE_PATTERN),
    data: z.json(),
    metadata: z.record(z.string(), z.json()),
    occurredAt: z.iso.datetime({ offset: true }),
    streamId: z.string().regex(STREAM_ID_PATTERN),
    streamVersion: z.int().min(1),
    position,
    recordedAt: z.iso.datetime({ offset: true }),
  })
  .meta({ id: 'RecordedEvent' });

export const appendResponseSchema = z.object({ streamVersion: z.int().min(0), position }).meta({ id: 'AppendResult' });

export const streamPageSchema = z
  .object({
    events: z.array(recordedEventSchema),
    streamVersion: z.int().min(0),
    next: z.int().min(1).nullable().meta({ description: "The 'from' of the next page, null at the end." }),
  })
  .meta({ id: 'StreamPage' });

export const allPageSchema = z
  .object({ events: z.array(recordedEventSchema), next: position.meta({ description: "The 'from' of the next page." }) })
  .meta({ id: 'AllPage' });

export const errorSchema = z
  .looseObject({ error: z.string(), message: z.string() })
  .meta({ id: 'Error', description: 'A typed error: `error` is a stable code from src/core/errors.ts; more fields give details.' });

const intParam = (name: string, min: number) =>
  z
    .string()
    .regex(/^\d{1,15}$/, { error: `${name} must be a non-negative integer` })
    .transform(Number)
    .pipe(z.int().min(min, { error: `${name} must be at least ${min}` }));

const limitParam = intParam('limit', 1).transform((n) => Math.min(n, MAX_PAGE));
const positionParam = z
  .string()
  .regex(/^\d{1,19}$/, { error: 'from must be a position (a non-negative integer)' })
  .transform((s) => BigInt(s))
  .refine((n) => n <= 9_223_372_036_854_775_807n, { error: 'from is too large' });
const typesParam = z.string().transform((s) => s.split(',').filter(Boolean));
/** A stream-id prefix (or a stream id to page after): only stream-id characters, compared byte for byte. */
const prefixParam = (name: string) =>
  z.string().regex(/^[A-Za-z0-9_.:@-]{0,200}$/, { error: `${name} must be at most 200 characters of [A-Za-z0-9_.:@-]` });

const categoryParam = z.string().regex(CATEGORY_PATTERN, {
  error: "category must be 1 to 200 characters of [A-Za-z0-9_.:@] (a stream id's part before its first '-')",
});

// Every query schema is strict: an unknown parameter is a 400, never silently ignored. `api_key`
// (the key for EventSource, which cannot send headers) is allowed everywhere; the auth middleware reads it.
const apiKeyParam = { api_key: z.string().optional() };

export const streamReadQuery = z.strictObject({
  from: intParam('from', 0).optional(),
  limit: limitParam.optional(),
  direction: z.enum(['forward', 'backward']).optional(),
  ...apiKeyParam,
});

export const allReadQuery = z.strictObject({
  from: positionParam.optional(),
  limit: limitParam.optional(),
  types: typesParam.optional(),
  streamPrefix: prefixParam('streamPrefix').optional(),
  // Events as stored, personal fields sealed (what `logline export` writes).
  sealed: z.enum(['true', 'false'], { error: "sealed must be 'true' or 'false'" }).optional(),
  category: categoryParam.optional(),
  ...apiKeyParam,
});

export const subscribeQuery = z.strictObject({
  from: positionParam.optional(),
  types: typesParam.optional(),
  streamPrefix: prefixParam('streamPrefix').optional(),
  category: categoryParam.optional(),
  ...apiKeyParam,
});

/** One stream's SSE: the stream is in the path, so no streamPrefix or category. */
export const streamSubscribeQuery = z.strictObject({
  from: positionParam.optional(),
  types: typesParam.optional(),
  ...apiKeyParam,
});

export const listStreamsQuery = z.strictObject({
  prefix: prefixParam('prefix').optional(),
  after: prefixParam('after').optional(),
  limit: limitParam.optional(),
  ...apiKeyParam,
});

/** `"n"` → n, `*` → 'exists'; If-None-Match `*` → 'no_stream'. Anything else is a 400. */
export function expectedVersionFrom(ifMatch: string | undefined, ifNoneMatch: string | undefined): ExpectedVersion {
  if (ifMatch !== undefined && ifNoneMatch !== undefined) {
    throw new InvalidArgumentError('precondition headers', 'both If-Match and If-None-Match were sent', 'at most one of them');
  }
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch.trim() === '*') return 'no_stream';
    throw new InvalidArgumentError('If-None-Match', `got ${JSON.stringify(ifNoneMatch.slice(0, 100))}`, "'*' (the stream must not exist)");
  }
  if (ifMatch === undefined) return 'any';
  const value = ifMatch.trim();
  if (value === '*') return 'exists';
  const match = /^"(\d{1,15})"$/.exec(value);
  if (!match) {
    throw new InvalidArgumentError(
      'If-Match',
      `got ${JSON.stringify(ifMatch.slice(0, 100))}`,
      'one strong ETag "n" (a stream version) or *',
    );
  }
  return Number(match[1]);
}

/** Routes that take no parameters (stats, subscriptions, metrics, health). */
export const noQuery = z.strictObject({ ...apiKeyParam });

/**
 * The query string as one object with one value per parameter. A repeated parameter is a 400:
 * two readers of the same URL (the rights check, the handler) must never see different values.
 */
export function singleValuedQuery(url: string): Record<string, string> {
  // No prototype: a parameter named __proto__ is just an unknown parameter.
  const query: Record<string, string> = Object.create(null);
  // Most requests (every append) have no query: no URL to parse.
  if (!url.includes('?')) return query;
  const params = new URL(url).searchParams;
  for (const [name, value] of params) {
    if (Object.hasOwn(query, name)) {
      throw new InvalidArgumentError('query', `the parameter '${name.slice(0, 100)}' is repeated`, 'each query parameter at most once');
    }
    query[name] = value;
  }
  return query;
}

/** Turns a failed parse into the typed error the store itself would have thrown. */
export function toTypedError(error: z.ZodError, what: string): LoglineError {
  const issue = error.issues[0];
  if (issue && issue.path[0] === 'events' && typeof issue.path[1] === 'number') {
    const index = issue.path[1];
    const problems = error.issues.filter((i) => i.path[1] === index).map((i) => `${i.path.slice(2).join('.') || 'event'}: ${i.message}`);
    return new InvalidEventError(index, problems);
  }
  const problem = error.issues.map((i) => `${i.path.join('.') || what}: ${i.message}`).join('; ');
  return new InvalidArgumentError(what, problem, what === 'body' ? 'a JSON object {"events":[…]}' : 'valid query parameters');
}

/**
 * The events of an append body `{"events":[…]}`. A well-formed body is checked by hand, by the
 * rules the store applies to every event anyway (zod costs more than the rest of the request's
 * validation); anything else goes through the schema, which says what is wrong.
 */
export function appendRequestEvents(body: unknown): NewEvent[] {
  if (typeof body === 'object' && body !== null && !Array.isArray(body) && Object.getPrototypeOf(body) === Object.prototype) {
    const keys = Object.keys(body);
    const { events } = body as { events?: unknown };
    if (keys.length === 1 && keys[0] === 'events' && Array.isArray(events) && events.every(isValidEventFast)) return events;
  }
  return parseWith(appendRequestSchema, body, 'body').events;
}

/** Parses with a schema, throwing a typed 400 error instead of a ZodError. */
export function parseWith<T extends z.ZodType>(schema: T, input: unknown, what: string): z.output<T> {
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw toTypedError(parsed.error, what);
  return parsed.data;
}

/**
 * The validated query of a request: parsed from the one single-valued object the app's middleware
 * made, so the rights check and the handler always read the same values. Every route uses it,
 * with `noQuery` when it takes no parameters (an unknown parameter is a 400).
 */
export const queryOf = <T extends z.ZodType>(c: { get(name: 'query'): Record<string, string> }, schema: T): z.output<T> =>
  parseWith(schema, c.get('query'), 'query');

const json = (schema: z.ZodType, description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: `#/components/schemas/${(schema.meta() as { id: string }).id}` } } },
});
const errorReply = (description: string) => json(errorSchema, description);
/** A JSON request body of `schema` (an OpenAPI schema object). */
const jsonBody = (schema: object, required = true) => ({ required, content: { 'application/json': { schema } } });
const param = (name: string, where: 'path' | 'query' | 'header', description: string, schema: object = { type: 'string' }) => ({
  name,
  in: where,
  required: where === 'path',
  description,
  schema,
});
const streamParam = param('stream', 'path', 'Stream id: 1–200 characters of [A-Za-z0-9_.:@-], not starting with $.');
const sse = { description: 'Server-sent events: id = position, data = one RecordedEvent as JSON.', content: { 'text/event-stream': {} } };
const beyondHead = errorReply('PositionBeyondHead: the position is beyond the store head (the store was restored or failed over)');

/** /v1/connectors…: served when the server runs with `--connectors` (404 for every name otherwise). */
function connectorPaths(): Record<string, unknown> {
  const name = param('name', 'path', 'The connector’s name from the connectors file.');
  const idsBody = jsonBody(
    {
      type: 'object',
      properties: { ids: { type: 'array', items: { type: 'integer', minimum: 1 } } },
      additionalProperties: false,
    },
    false,
  );
  const control = (summary: string, answer: string, body = false) => ({
    post: {
      summary: `${summary} (write on *)`,
      parameters: [name],
      ...(body ? { requestBody: idsBody } : {}),
      responses: {
        200: { description: answer },
        400: errorReply('Bad body'),
        403: errorReply('No write right on *'),
        404: errorReply('Unknown connector'),
      },
    },
  });
  const connector =
    '{name, sink:{type,target}, breaker, breakerOpened, status, delivered, failedDeliveries, lastError?, lastDeliveredAt?, checkpoint, head, lag, parked}';
  return {
    '/v1/connectors': {
      get: {
        summary: 'Connectors running in this server, with breaker state, lag and parked count (read on *)',
        responses: { 200: { description: `{"connectors":[${connector}]}` } },
      },
    },
    '/v1/connectors/{name}': {
      get: {
        summary: 'One connector (read on *)',
        parameters: [name],
        responses: { 200: { description: connector }, 404: errorReply('Unknown connector') },
      },
    },
    '/v1/connectors/{name}/parked': {
      get: {
        summary: 'A connector’s parked events (read on *)',
        parameters: [name],
        responses: {
          200: { description: '{"parked":[{id, consumer, position, event, error, stack, attempts, parkedAt}]}' },
          404: errorReply('Unknown connector'),
        },
      },
    },
    '/v1/connectors/{name}/parked/replay': control(
      'Deliver parked events again (all, or these ids)',
      '{"replayed":n,"failed":[{id,error}]}',
      true,
    ),
    '/v1/connectors/{name}/parked/skip': control('Drop parked events undelivered (all, or these ids)', '{"skipped":n}', true),
    '/v1/connectors/{name}/pause': control('Hold deliveries (the breaker is isolated); appends go on', 'The connector’s stats'),
    '/v1/connectors/{name}/resume': control('Let deliveries go again', 'The connector’s stats'),
  };
}

/** The OpenAPI 3.1 document served at /v1/openapi.json. */
export function openApiDocument(): Record<string, unknown> {
  const registry = z.registry<{ id: string }>();
  for (const schema of [
    appendRequestSchema,
    ingestRequestSchema,
    appendResponseSchema,
    recordedEventSchema,
    streamPageSchema,
    allPageSchema,
    errorSchema,
  ]) {
    registry.add(schema, { id: (schema.meta() as { id: string }).id });
  }
  const { schemas } = z.toJSONSchema(registry, { uri: (id) => `#/components/schemas/${id}`, io: 'input', unrepresentable: 'any' });
  for (const schema of Object.values(schemas)) {
    delete (schema as { $schema?: string }).$schema;
    delete (schema as { $id?: string }).$id;
  }
  const positionHeader = { 'Logline-Position': { description: 'Global position of the last event written.', schema: { type: 'string' } } };
  return {
    openapi: '3.1.0',
    info: { title: 'Logline HTTP API', version: '1', description: 'Event store over HTTP; see docs/http.md.' },
    components: {
      schemas,
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'Only when the server was started with API keys.' } },
    },
    security: [{}, { apiKey: [] }],
    paths: {
      '/v1/streams/{stream}': {
        post: {
          summary: 'Append events to a stream',
          parameters: [
            streamParam,
            param('If-Match', 'header', 'Expected version: `"n"` (the stream must be at version n) or `*` (it must exist).'),
            param('If-None-Match', 'header', '`*`: the stream must not exist yet.'),
          ],
          requestBody: jsonBody({ $ref: '#/components/schemas/AppendRequest' }),
          responses: {
            201: { ...json(appendResponseSchema, 'Appended'), headers: { ETag: { schema: { type: 'string' } }, ...positionHeader } },
            400: errorReply('Bad body, header or stream id'),
            401: errorReply('No valid API key'),
            403: errorReply('Outside the key’s rights'),
            409: errorReply('WrongExpectedVersion (If-Match / If-None-Match mismatch) or IdempotencyConflict'),
            410: errorReply('StreamDeleted: the stream was deleted for good (hard delete)'),
            413: errorReply('EventTooLarge or AppendTooLarge'),
            415: errorReply('Content-Type is not application/json'),
            503: errorReply('Overloaded: too many append bytes or appends in flight; retry after Retry-After seconds'),
          },
        },
        get: {
          summary: 'Read a stream',
          parameters: [
            streamParam,
            param('from', 'query', 'First stream version (inclusive).', { type: 'integer', minimum: 0 }),
            param('limit', 'query', `Page size, at most ${MAX_PAGE} (default ${DEFAULT_PAGE}).`, { type: 'integer', minimum: 1 }),
            param('direction', 'query', 'forward (default) or backward.', { enum: ['forward', 'backward'] }),
            param('If-None-Match', 'header', '`"n"`: answer 304 while the stream is still at version n.'),
          ],
          responses: {
            200: { ...json(streamPageSchema, 'A page of the stream'), headers: { ETag: { schema: { type: 'string' } } } },
            304: { description: 'Unchanged since the given ETag' },
            400: errorReply('Bad stream id or query'),
            404: errorReply('Unknown or soft-deleted stream (`deleted: "soft"`)'),
            410: errorReply('StreamDeleted: the stream was deleted for good (hard delete)'),
          },
        },
        delete: {
          summary: 'Delete a stream: soft (reads answer 404, a later append continues its versions) or hard (tombstone)',
          parameters: [
            streamParam,
            param('hard', 'query', '`true`: every later append answers 410 StreamDeleted.', { enum: ['true', 'false'] }),
            param('If-Match', 'header', 'Expected version: `"n"` or `*` (it must exist).'),
            param('If-None-Match', 'header', '`*`: the stream must not exist.'),
          ],
          responses: {
            200: { description: '{"streamId","streamVersion","deleted":"soft"|"hard"}' },
            400: errorReply('Bad stream id, query or header'),
            403: errorReply('Outside the key’s rights (write on the stream)'),
            409: errorReply('WrongExpectedVersion'),
            410: errorReply('StreamDeleted: a soft delete of a tombstoned stream'),
          },
        },
      },
      '/v1/streams/{stream}/metadata': {
        get: {
          summary: 'A stream’s retention settings, version and deletion (read on the stream)',
          parameters: [streamParam],
          responses: { 200: { description: '{"streamId","version","maxCount"?,"maxAgeSeconds"?,"truncateBefore"?,"deleted"?}' } },
        },
        put: {
          summary: 'Replace a stream’s retention settings; reads honour them at once (write on the stream)',
          parameters: [streamParam],
          requestBody: jsonBody({
            type: 'object',
            additionalProperties: false,
            properties: {
              maxCount: { type: 'integer', minimum: 1 },
              maxAgeSeconds: { type: 'integer', minimum: 1 },
              truncateBefore: { type: 'integer', minimum: 1 },
            },
          }),
          responses: {
            200: { description: 'The metadata now, as GET answers it' },
            400: errorReply('InvalidArgument: an unknown key or a value that is not an integer ≥ 1'),
            410: errorReply('StreamDeleted'),
          },
        },
      },
      '/v1/streams/{stream}/start': {
        put: {
          summary:
            'Restore where a stream starts: a stream that does not exist gets this version, the versions before it absent (write on the stream)',
          description:
            'For restores (`logline import`): the next append expects this version, so an export’s first kept event lands at its ' +
            'original version. The same version again changes nothing (an import resumed).',
          parameters: [streamParam],
          requestBody: jsonBody({
            type: 'object',
            additionalProperties: false,
            required: ['version'],
            properties: { version: { type: 'integer', minimum: 1 } },
          }),
          responses: {
            200: { description: '{"streamId","version"}' },
            400: errorReply('InvalidArgument: a body other than {"version": n}, n an integer ≥ 1'),
            403: errorReply('Outside the key’s rights (write on the stream)'),
            409: errorReply('WrongExpectedVersion: the stream exists at another version'),
            410: errorReply('StreamDeleted'),
          },
        },
      },
      '/v1/ingest/{stream}': {
        post: {
          summary: 'Ingest events from an outside producer, de-duplicated by the producer’s ids (write on the stream)',
          description:
            'Each event carries the producer’s own id; the stored event id is a UUID v5 of the stream and that id, and ' +
            '`metadata.ingestId` keeps it. Re-sending a request (same ids, same content) returns 201 with the original ' +
            'result and stores nothing. No precondition headers.',
          parameters: [streamParam],
          requestBody: jsonBody({ $ref: '#/components/schemas/IngestRequest' }),
          responses: {
            201: {
              ...json(appendResponseSchema, 'Appended, or the original result of an earlier identical request'),
              headers: { ETag: { schema: { type: 'string' } }, ...positionHeader },
            },
            400: errorReply('Bad body (an id missing, repeated or too long), a precondition header, or a bad stream id'),
            401: errorReply('No valid API key'),
            403: errorReply('Outside the key’s rights'),
            409: errorReply('IdempotencyConflict: an id already stored with other content, or as part of another request'),
            413: errorReply('EventTooLarge or AppendTooLarge'),
            415: errorReply('Content-Type is not application/json'),
            503: errorReply('Overloaded: too many append bytes or appends in flight; retry after Retry-After seconds'),
          },
        },
      },
      '/v1/lifecycles': {
        get: {
          summary: 'Streams with retention settings or deleted (read on *)',
          parameters: [param('after', 'query', 'Paging: ids after this one.')],
          responses: { 200: { description: '{"streams":[{streamId,version,maxCount?,maxAgeSeconds?,truncateBefore?,deleted?}]}' } },
        },
      },
      '/v1/scavenge': {
        post: {
          summary: 'Remove the events retention settings and deletes hide; versions and positions stay (write on *)',
          responses: { 200: { description: '{"removed":n}' } },
        },
      },
      '/v1/streams/{stream}/subscribe': {
        get: {
          summary: 'Follow one stream (SSE): catch-up, then live',
          parameters: [
            streamParam,
            param('from', 'query', 'Exclusive global position to start after.', { type: 'string' }),
            param('types', 'query', 'Comma-separated event types.'),
            param('Last-Event-ID', 'header', 'Resume after this position.'),
          ],
          responses: { 200: sse, 400: errorReply('Bad stream id or query'), 409: beyondHead },
        },
      },
      '/v1/streams': {
        get: {
          summary: 'List streams',
          parameters: [param('prefix', 'query', 'Only ids with this prefix.'), param('after', 'query', 'Paging: ids after this one.')],
          responses: { 200: { description: '{"streams":[{streamId,version,lastPosition,lastRecordedAt}]}' } },
        },
      },
      '/v1/all': {
        get: {
          summary: 'Read the global log after a position',
          parameters: [
            param('from', 'query', 'Exclusive position (default 0).'),
            param('limit', 'query', `Page size, at most ${MAX_PAGE}.`, { type: 'integer', minimum: 1 }),
            param('types', 'query', 'Comma-separated event types.'),
            param('streamPrefix', 'query', 'Only streams with this prefix.'),
            param('sealed', 'query', '`true`: events as stored, personal fields sealed in metadata.$sealed (for exports).', {
              enum: ['true', 'false'],
            }),
            param('category', 'query', "Only streams '<category>-…' (read through an index; needs read on '<category>-')."),
          ],
          responses: { 200: json(allPageSchema, 'A page of the log'), 400: errorReply('Bad query'), 409: beyondHead },
        },
      },
      '/v1/all/subscribe': {
        get: {
          summary: 'Follow the global log (SSE): catch-up, then live',
          parameters: [
            param('from', 'query', 'Exclusive position to start after.'),
            param('types', 'query', 'Comma-separated event types.'),
            param('streamPrefix', 'query', 'Only streams with this prefix.'),
            param('category', 'query', "Only streams '<category>-…' (needs read on '<category>-')."),
            param('Last-Event-ID', 'header', 'Resume after this position.'),
          ],
          responses: { 200: sse, 400: errorReply('Bad query'), 409: beyondHead },
        },
      },
      '/v1/stats': { get: { summary: 'Event and stream counts, head position', responses: { 200: { description: 'Stats' } } } },
      '/v1/subscriptions': { get: { summary: 'Live subscriptions and their lag', responses: { 200: { description: 'Subscriptions' } } } },
      '/v1/subscriptions/{name}': {
        get: {
          summary: 'One consumer’s checkpoint and lag (read on *)',
          parameters: [
            param('name', 'path', 'A subscription, projection@vN or consumer group.'),
            param('Logline-Min-Position', 'header', 'Wait until the consumer has processed this position.'),
          ],
          responses: {
            200: { description: 'The consumer' },
            404: errorReply('Unknown consumer'),
            503: errorReply('PositionTimeout: the consumer did not reach Logline-Min-Position in time'),
          },
        },
      },
      ...connectorPaths(),
      '/v1/history': {
        get: {
          summary: 'The last 15 minutes of appends/s, reads/s, SSE clients and consumer lag (read on *)',
          responses: { 200: { description: 'History' } },
        },
      },
      '/v1/parked': {
        get: {
          summary: 'Parked events with error and stack (read on *)',
          parameters: [param('consumer', 'query', 'Only this consumer’s (a subscription, projection@vN or group).')],
          responses: { 200: { description: '{"parked":[…],"replayable":[names]}' }, 400: errorReply('Bad query') },
        },
      },
      '/v1/parked/replay': {
        post: {
          summary: 'Replay parked events through a consumer running in this server (write on *)',
          responses: {
            200: { description: '{"replayed":n,"failed":[{id,error}]}' },
            400: errorReply('Bad body'),
            404: errorReply('Consumer not running here'),
          },
        },
      },
      '/v1/parked/skip': {
        post: {
          summary: 'Discard parked events without running them (write on *)',
          responses: { 200: { description: '{"skipped":n}' }, 400: errorReply('Bad body'), 404: errorReply('Unknown parked event id') },
        },
      },
      '/v1/subjects/{subject}': {
        get: {
          summary: 'Whether a data subject is known and forgotten (admin right)',
          parameters: [param('subject', 'path', 'The metadata.subject of personal data.')],
          responses: {
            200: { description: '{"subject","createdAt","forgottenAt"?}' },
            403: errorReply('The key lacks the admin right'),
            404: errorReply('UnknownSubject'),
          },
        },
        delete: {
          summary: 'Forget a person: destroy the subject key (crypto-shredding; admin right). Idempotent.',
          parameters: [param('subject', 'path', 'The metadata.subject of personal data.')],
          responses: {
            200: { description: '{"subject","forgottenAt","alreadyForgotten"}: alreadyForgotten is true on every call after the first' },
            400: errorReply('Bad subject'),
            403: errorReply('The key lacks the admin right'),
            404: errorReply('UnknownSubject: no event declared personal data for it'),
          },
        },
      },
      '/v1/health': {
        get: { summary: 'Liveness and store reachability', responses: { 200: { description: 'OK' }, 503: errorReply('Store down') } },
      },
      '/metrics': { get: { summary: 'Prometheus metrics', responses: { 200: { description: 'text/plain; version=0.0.4' } } } },
      '/v1/openapi.json': { get: { summary: 'This document', responses: { 200: { description: 'OpenAPI 3.1' } } } },
    },
  };
}
