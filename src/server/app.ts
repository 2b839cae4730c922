/**
 * The HTTP API of docs/http.md as a Hono app over one EventStore. A thin adapter: validation
 * uses the core's zod schemas, errors are the core's typed errors, the store does the work.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import type { Logger } from 'pino';
import { AppendTooLargeError, InvalidArgumentError, PositionBeyondHeadError, StreamDeletedError } from '../core/errors.js';
import { UnknownSubjectError } from '../core/personal-data.js';
import { traceRead } from '../core/tracing.js';
import type { EventStore, ExpectedVersion, NewEvent, RecordedEvent } from '../core/types.js';
import { assertStreamId } from '../core/validation.js';
import { PositionTimeoutError } from '../projections/errors.js';
import { type ConsumerInfo, getLag, listConsumers, summarizeGroups } from '../projections/observability.js';
import type { ConsumerHandle } from '../projections/subscription.js';
import { mountParkedApi } from './admin-api.js';
import { Admission, type AdmissionLimits, DEFAULT_ADMISSION, OverloadedError } from './admission.js';
import { type ApiKey, allows, type KeyRing, requireAdmin, requireRight } from './auth.js';
import { mountHistory } from './history.js';
import { errorResponse, ForbiddenError, NotFoundError, UnsupportedMediaTypeError } from './http-errors.js';
import { ingestEvents } from './ingest.js';
import { stringify, toWire } from './json.js';
import { mountLifecycleApi } from './lifecycle-api.js';
import { type Gauge, ServerMetrics } from './metrics.js';
import {
  allReadQuery,
  appendRequestEvents,
  DEFAULT_PAGE,
  expectedVersionFrom,
  listStreamsQuery,
  noQuery,
  openApiDocument,
  parseWith,
  queryOf,
  singleValuedQuery,
  streamReadQuery,
  streamSubscribeQuery,
  subscribeQuery,
} from './schemas.js';
import { DEFAULT_SSE, SseHub, type SseSettings, sseBody } from './sse.js';
import { traceRequests } from './tracing.js';

export interface AppOptions {
  store: EventStore;
  logger: Logger;
  keys?: KeyRing;
  /** Without keys, only requests whose Host is a loopback name are served (defeats DNS rebinding). */
  loopbackOnly?: boolean;
  sse?: Partial<SseSettings>;
  /** Consumers running in this process (waited on directly; others are polled through their checkpoints). */
  consumers?: ConsumerHandle[];
  /** Longest wait for Logline-Min-Position, ms (default 5000). */
  minPositionTimeoutMs?: number;
  /** Bounds on appends in flight (request-body memory, appends queued at the store); beyond them 503 Overloaded. */
  admission?: Partial<AdmissionLimits>;
  /** Adds application routes (e.g. read-model queries using readYourWrites()) before the fallback. */
  routes?: (app: Hono<ServerEnv>, store: EventStore) => void;
  /** More gauges for /metrics (connectors). */
  gauges?: () => Gauge[];
}

export interface LoglineApp {
  app: Hono<Env>;
  hub: SseHub;
  metrics: ServerMetrics;
  admission: Admission;
  /** Appends in progress: shutdown waits for these. */
  inFlight: Set<Promise<unknown>>;
}

export type ServerEnv = {
  Bindings: { incoming?: IncomingMessage; outgoing?: ServerResponse };
  Variables: {
    key: ApiKey | undefined;
    /** The request's query parameters, each exactly once (a repeated one was refused with a 400). */
    query: Record<string, string>;
    /** Whether the request got past the Host and API-key checks (errors before that reveal nothing about the store). */
    admitted: boolean;
  };
};
type Env = ServerEnv;

const LOOPBACK_HOST = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/i;
const PUBLIC = new Set(['/', '/v1/health', '/v1/openapi.json', '/favicon.ico']);
const ADMIN_TYPES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'admin.js': 'text/javascript; charset=utf-8',
  'admin.css': 'text/css; charset=utf-8',
};

function loadAdminAssets(): Map<string, string> {
  // Next to this module (src/ under tsx, dist/ after `npm run build` copies them), else the sources.
  const candidates = [new URL('./admin/', import.meta.url), new URL('../../src/server/admin/', import.meta.url)];
  const dir = candidates.find((url) => existsSync(new URL('index.html', url)));
  const assets = new Map<string, string>();
  if (dir) for (const name of Object.keys(ADMIN_TYPES)) assets.set(name, readFileSync(new URL(name, dir), 'utf8'));
  return assets;
}

/** Ingest appends wherever the stream stands: a precondition header is refused, never ignored. */
function noPreconditions(c: Context<ServerEnv>): ExpectedVersion {
  for (const header of ['If-Match', 'If-None-Match']) {
    if (c.req.header(header) !== undefined) {
      throw new InvalidArgumentError(
        header,
        'ingest takes no precondition',
        'no If-Match / If-None-Match (a retry is recognised by the event ids)',
      );
    }
  }
  return 'any';
}

/**
 * Reads a body of at most `maxBytes`, charging it to the admission budget as it arrives (all of
 * a declared Content-Length up front). `charge.bytes` is what the caller must release. When the
 * budget is full the rest of the body is read and dropped, and only then is the request refused:
 * a client still sending would otherwise see a reset connection instead of the 503.
 */
async function readBodyText(
  request: Request,
  incoming: IncomingMessage | undefined,
  maxBytes: number,
  admission: Admission,
  charge: { bytes: number },
): Promise<string> {
  const declared = Number(request.headers.get('content-length') ?? Number.NaN);
  if (declared > maxBytes) throw new AppendTooLargeError('bytes', declared, maxBytes);
  let overloaded = false;
  if (declared > 0) {
    if (admission.tryChargeBody(declared)) {
      charge.bytes = declared;
    } else if (incoming) {
      // Dropped at the socket, before any copy into a web stream: cheap even for many refusals.
      await discardIncoming(incoming);
      throw new OverloadedError('memory', admission.limits.maxInFlightBytes);
    } else {
      overloaded = true;
    }
  }
  // A declared length is read straight into one buffer of that size: each chunk is garbage as
  // soon as it is copied, and there is no second copy to join them (for 16 MiB bodies, ~2 × body
  // less memory at the peak than a list of chunks and a concatenation).
  let whole = declared > 0 && !overloaded ? Buffer.allocUnsafe(declared) : undefined;
  const chunks: Uint8Array[] = [];
  let total = 0;
  await eachChunk(request, incoming, (value) => {
    const offset = total;
    total += value.byteLength;
    if (total > maxBytes) throw new AppendTooLargeError('bytes', total, maxBytes);
    if (overloaded) return;
    if (total > charge.bytes) {
      if (admission.tryChargeBody(total - charge.bytes)) {
        charge.bytes = total;
      } else {
        overloaded = true;
        chunks.length = 0;
        return;
      }
    }
    if (whole && total > whole.byteLength) {
      chunks.push(whole.subarray(0, offset));
      whole = undefined;
    }
    if (whole) whole.set(value, offset);
    else chunks.push(value);
  });
  if (overloaded) throw new OverloadedError('memory', admission.limits.maxInFlightBytes);
  // A body longer than it declared (a web Request in tests can be) is joined from its chunks.
  const bytes = whole ? whole.subarray(0, total) : Buffer.concat(chunks);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new InvalidArgumentError('body', 'it is not valid UTF-8', 'a UTF-8 JSON object {"events":[…]}');
  }
}

/**
 * Hands each chunk of the body to `take`, in order, and resolves at its end; when `take` throws,
 * the rest is not read and the promise rejects with that error. Chunks come from Node's request
 * stream when served by Node, through its events: a web Request around it costs an AbortSignal,
 * a Headers copy and a web stream per request (~15% of the server's CPU on 1-event appends), and
 * an async iterator over it a few promises per chunk. Else from the web Request (app.request()
 * in tests, other runtimes).
 */
function eachChunk(request: Request, incoming: IncomingMessage | undefined, take: (chunk: Uint8Array) => void): Promise<void> {
  if (!incoming) return eachWebChunk(request, take);
  if (incoming.readableEnded) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const settle = (error?: unknown) => {
      incoming.off('data', onData).off('end', onEnd).off('error', settle).off('close', onClose);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onData = (chunk: Buffer) => {
      try {
        take(chunk);
      } catch (error) {
        incoming.destroy();
        settle(error);
      }
    };
    const onEnd = () => settle();
    const onClose = () => {
      if (!incoming.readableEnded) settle(new Error('the client closed the request before its body ended'));
    };
    incoming.on('data', onData).on('end', onEnd).on('error', settle).on('close', onClose);
  });
}

async function eachWebChunk(request: Request, take: (chunk: Uint8Array) => void): Promise<void> {
  const reader = request.body?.getReader();
  if (!reader) return;
  for (;;) {
    const read = await reader.read();
    if (read.done) return;
    try {
      take(read.value);
    } catch (error) {
      await reader.cancel().catch(() => {});
      throw error;
    }
  }
}

/** Reads a request body to its end and drops it (Node's HTTP parser already bounds it by its Content-Length). */
function discardIncoming(incoming: IncomingMessage): Promise<void> {
  if (incoming.readableEnded || incoming.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    incoming.once('end', resolve);
    incoming.once('close', resolve);
    incoming.once('error', resolve);
    incoming.resume();
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new InvalidArgumentError('body', `it is not valid JSON (${(error as Error).message})`, 'a JSON object {"events":[…]}');
  }
}

function parseMinPosition(header: string | undefined): bigint | undefined {
  if (header === undefined) return undefined;
  if (!/^\d{1,19}$/.test(header.trim())) {
    throw new InvalidArgumentError(
      'Logline-Min-Position',
      `got ${JSON.stringify(header.slice(0, 100))}`,
      'a position (a non-negative integer)',
    );
  }
  return BigInt(header.trim());
}

/** The key a credential names, or undefined for none or an unknown one (on public routes, which never answer 401). */
function tryAuthenticate(keys: KeyRing, header: string | undefined, queryKey: string | undefined): ApiKey | undefined {
  try {
    return keys.authenticate(header, queryKey);
  } catch {
    return undefined;
  }
}

/** Waits for a consumer that runs elsewhere by polling its stored checkpoint. */
/** One status for a group: the worst of its partitions' (failed, then retrying, …), 'unknown' when none runs here. */
function aggregateStatus(statuses: string[]): string {
  for (const status of ['failed', 'retrying', 'catching-up', 'starting', 'live', 'stopped']) if (statuses.includes(status)) return status;
  return statuses[0] ?? 'unknown';
}

async function pollCheckpoint(lag: () => Promise<ConsumerInfo>, name: string, position: bigint, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { checkpoint } = await lag();
    if (checkpoint >= position) return;
    const left = deadline - Date.now();
    if (left <= 0) throw new PositionTimeoutError(name, position, checkpoint, timeoutMs);
    await new Promise((resolve) => setTimeout(resolve, Math.min(25, left)));
  }
}

/**
 * Middleware for read-model query routes: honours `Logline-Min-Position: p` by waiting (at most
 * `timeout` ms) until `consumer` has processed p; 503 PositionTimeout otherwise.
 */
export function readYourWrites(consumer: ConsumerHandle, opts: { timeout?: number } = {}): MiddlewareHandler<ServerEnv> {
  return async (c, next) => {
    const position = parseMinPosition(c.req.header('logline-min-position'));
    if (position !== undefined) await consumer.waitForPosition(position, { timeout: opts.timeout ?? 5000 });
    await next();
  };
}

/** A page holds at most `limit` events and, past the first event, at most this many bytes of JSON. */
export const MAX_PAGE_BYTES = 4 * 1024 * 1024;

interface Page {
  /** Each event as wire JSON. */
  parts: string[];
  last: RecordedEvent | undefined;
  /** Whether the page ended on its limit or its byte budget (there may be more), not on the data. */
  more: boolean;
  /** Whether an event of the page declares personal data (docs/lifecycle.md#forget-a-person). */
  personal: boolean;
}

/** Reads a page, stopping at `limit` events, at MAX_PAGE_BYTES, or where `check` says stop. */
async function collectPage(
  events: AsyncIterable<RecordedEvent>,
  limit: number,
  check: (event: RecordedEvent) => 'take' | 'stop',
): Promise<Page> {
  const parts: string[] = [];
  let bytes = 0;
  let last: RecordedEvent | undefined;
  let personal = false;
  for await (const event of events) {
    if (check(event) === 'stop') return { parts, last, more: false, personal };
    const part = stringify(toWire(event));
    if (parts.length > 0 && bytes + part.length > MAX_PAGE_BYTES) return { parts, last, more: true, personal };
    parts.push(part);
    bytes += part.length;
    last = event;
    personal ||= event.metadata.personal !== undefined;
  }
  return { parts, last, more: parts.length === limit, personal };
}

/**
 * Personal data is kept out of HTTP caches: forget changes what a page says without changing the
 * stream's version (its ETag), so a cached copy would be revalidated as current.
 */
const noStore = (page: Page): Record<string, string> => (page.personal ? { 'cache-control': 'no-store' } : {});

const rawJson = (text: string, headers: Record<string, string> = {}) =>
  new Response(text, { status: 200, headers: { 'content-type': 'application/json; charset=utf-8', ...headers } });

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(stringify(body), { status, headers: { 'content-type': 'application/json; charset=utf-8', ...headers } });

export function createApp(options: AppOptions): LoglineApp {
  const { store, logger, keys } = options;
  const settings: SseSettings = { ...DEFAULT_SSE, ...options.sse };
  const hub = new SseHub();
  const metrics = new ServerMetrics();
  const inFlight = new Set<Promise<unknown>>();
  const admission = new Admission({ ...DEFAULT_ADMISSION, ...options.admission });
  const admin = loadAdminAssets();
  const openApi = JSON.stringify(openApiDocument());
  // Room for JSON punctuation and whitespace around the events the store counts.
  const maxBodyBytes = store.limits.maxAppendBytes + 1024 * 1024;
  const app = new Hono<Env>();

  app.onError(async (error, c) => {
    const { status, body } = errorResponse(error);
    if (status >= 500) logger.error({ err: error, path: c.req.path }, 'request failed');
    const headers: Record<string, string> = status === 503 ? { 'retry-after': '1' } : {};
    // Writes rejected by a rights check still say where the log stands; a request that did not
    // authenticate (or came through a foreign Host) learns nothing about the store.
    if (c.req.method === 'POST' && c.get('admitted')) {
      const head = await store.headPosition().catch(() => undefined);
      if (head !== undefined) headers['logline-position'] = head.toString();
    }
    return json(body, status, headers);
  });
  app.notFound((c) => json(new NotFoundError(`Route ${c.req.method} ${c.req.path}`).toJSON(), 404));

  app.use(traceRequests());

  // Request log lines are written after the responses of this turn of the event loop are on their way.
  const requestLog: Record<string, unknown>[] = [];
  const writeRequestLog = () => {
    for (const entry of requestLog.splice(0)) logger.info(entry, 'request');
  };
  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    metrics.countResponse(c.res.status);
    if (
      requestLog.push({ method: c.req.method, path: c.req.path, status: c.res.status, ms: +(performance.now() - started).toFixed(2) }) === 1
    ) {
      setImmediate(writeRequestLog);
    }
  });

  app.use(async (c, next) => {
    c.set('admitted', false);
    if (options.loopbackOnly && !LOOPBACK_HOST.test(c.req.header('host') ?? '')) {
      throw new ForbiddenError('read', `through Host '${c.req.header('host')}' (without API keys only loopback names are served)`);
    }
    const query = singleValuedQuery(c.req.url);
    c.set('query', query);
    const isPublic = PUBLIC.has(c.req.path) || c.req.path.startsWith('/admin/');
    c.set('key', keys && !isPublic ? keys.authenticate(c.req.header('authorization'), query.api_key) : undefined);
    // A public route still recognizes a valid key (health shows details to key holders only).
    if (keys && isPublic && (c.req.header('authorization') || query.api_key))
      c.set('key', tryAuthenticate(keys, c.req.header('authorization'), query.api_key));
    c.set('admitted', true);
    await next();
  });

  const keyOf = (c: { get(name: 'key'): ApiKey | undefined }) => c.get('key');
  const headPosition = () => store.headPosition().catch(() => undefined);

  const minPositionTimeout = options.minPositionTimeoutMs ?? 5000;
  const consumerInfos = async (): Promise<ConsumerInfo[]> => {
    try {
      return await listConsumers(store);
    } catch (error) {
      logger.debug({ err: error }, 'no consumer checkpoints on this store');
      return [];
    }
  };

  mountHistory(app, store, () => hub.clients.size);
  mountParkedApi(app, store, options.consumers);
  mountLifecycleApi(app, store);

  /**
   * An append over HTTP: rights (write on the stream), admission, body limits, metrics, and the
   * head in Logline-Position on errors too. Appends and ingest differ only in how the body
   * becomes events and in the preconditions they take.
   */
  const appendRoute =
    (toEvents: (body: unknown, stream: string) => NewEvent[], expectedOf: (c: Context<Env>) => ExpectedVersion) =>
    async (c: Context<Env>) => {
      const stream = c.req.param('stream');
      const started = performance.now();
      let eventCount = 0;
      const charge = { bytes: 0 };
      const work = (async () => {
        try {
          queryOf(c, noQuery);
          assertStreamId(stream);
          requireRight(keyOf(c), 'write', stream, `stream '${stream}'`);
          const expectedVersion = expectedOf(c);
          const contentType = c.req.header('content-type') ?? '';
          if (!/^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(contentType)) throw new UnsupportedMediaTypeError(contentType);
          const body = parseJson(await readBodyText(c.req.raw, c.env?.incoming, maxBodyBytes, admission, charge));
          if (Array.isArray((body as { events?: unknown })?.events)) {
            const count = (body as { events: unknown[] }).events.length;
            if (count > store.limits.maxAppendEvents) throw new AppendTooLargeError('events', count, store.limits.maxAppendEvents);
          }
          const events = toEvents(body, stream);
          eventCount = events.length;
          const leaveQueue = admission.enterQueue();
          const result = await store.append(stream, events, { expectedVersion }).finally(leaveQueue);
          metrics.countAppend('ok', eventCount);
          metrics.appendLatency.observe((performance.now() - started) / 1000);
          return json(result, 201, { etag: `"${result.streamVersion}"`, 'logline-position': result.position.toString() });
        } catch (error) {
          metrics.countAppend((error as { code?: string }).code ?? 'Internal', 0);
          const { status, body } = errorResponse(error);
          if (error instanceof OverloadedError) logger.warn({ stream, ...error.details }, 'append refused: overloaded');
          else if (status >= 500) logger.error({ err: error, stream }, 'append failed');
          const head = await headPosition();
          const headers: Record<string, string> = status === 503 ? { 'retry-after': '1' } : {};
          if (head !== undefined) headers['logline-position'] = head.toString();
          return json(body, status, headers);
        } finally {
          admission.releaseBody(charge.bytes);
        }
      })();
      inFlight.add(work);
      try {
        return await work;
      } finally {
        inFlight.delete(work);
      }
    };

  // --- append ---
  app.post(
    '/v1/streams/:stream',
    appendRoute(
      (body) => appendRequestEvents(body),
      (c) => expectedVersionFrom(c.req.header('if-match'), c.req.header('if-none-match')),
    ),
  );
  // --- ingest: an outside producer's events, de-duplicated by its ids (ingest.ts) ---
  app.post('/v1/ingest/:stream', appendRoute(ingestEvents, noPreconditions));

  // --- read one stream ---
  app.get('/v1/streams/:stream', async (c) => {
    const stream = c.req.param('stream');
    assertStreamId(stream);
    requireRight(keyOf(c), 'read', stream, `stream '${stream}'`);
    const q = queryOf(c, streamReadQuery);
    const version = await store.streamVersion(stream);
    if (version === 0) throw new NotFoundError(`Stream '${stream}'`, { stream });
    // A soft-deleted stream answers like an unknown one, a tombstoned one 410 (docs/http.md). A
    // deleted stream has no visible event, so only an empty page (or a 304) asks.
    const assertNotDeleted = async () => {
      const { deleted } = await store.getStreamMetadata(stream);
      if (deleted === 'hard') throw new StreamDeletedError(stream);
      if (deleted === 'soft') throw new NotFoundError(`Stream '${stream}' (deleted)`, { stream, deleted });
    };
    const etag = `"${version}"`;
    const ifNoneMatch = c.req.header('if-none-match');
    if (ifNoneMatch && (ifNoneMatch.trim() === '*' || ifNoneMatch.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag))) {
      await assertNotDeleted();
      return new Response(null, { status: 304, headers: { etag } });
    }
    const limit = q.limit ?? DEFAULT_PAGE;
    const backward = q.direction === 'backward';
    // Cap at `version` so the page agrees with the ETag even if an append lands meanwhile.
    const from = backward ? Math.min(q.from ?? version, version) : (q.from ?? 1);
    const events = traceRead('logline.read', { 'logline.stream': stream }, () =>
      store.read(stream, { from, limit, direction: q.direction ?? 'forward' }),
    );
    const page = await collectPage(events, limit, (event) => (event.streamVersion > version ? 'stop' : 'take'));
    if (page.parts.length === 0) await assertNotDeleted();
    const last = page.last?.streamVersion;
    const next = last === undefined || !page.more ? null : backward ? (last > 1 ? last - 1 : null) : last < version ? last + 1 : null;
    return rawJson(`{"events":[${page.parts.join(',')}],"streamVersion":${version},"next":${next}}`, { etag, ...noStore(page) });
  });

  // --- list streams (admin page, CLI) ---
  app.get('/v1/streams', async (c) => {
    const q = queryOf(c, listStreamsQuery);
    requireRight(keyOf(c), 'read', q.prefix ?? '', q.prefix ? `streams '${q.prefix}…'` : 'all streams');
    const streams = await store.listStreams({ prefix: q.prefix, after: q.after, limit: q.limit ?? DEFAULT_PAGE });
    return json({ streams });
  });

  // --- the global log ---
  /**
   * A read of $all needs the read right on every stream it can return: those with the
   * streamPrefix and, with a category `c`, those with the prefix `c-`. Both hold for the longer
   * of the two prefixes (when neither extends the other, nothing matches), so that one is checked.
   */
  const requireReadOfAll = (c: Context<Env>, q: { streamPrefix?: string; category?: string }) => {
    const categoryPrefix = q.category === undefined ? '' : `${q.category}-`;
    const prefix = q.streamPrefix ?? '';
    const scope = categoryPrefix.length > prefix.length ? categoryPrefix : prefix;
    requireRight(keyOf(c), 'read', scope, scope ? `streams '${scope}…'` : '$all');
  };

  app.get('/v1/all', async (c) => {
    const q = queryOf(c, allReadQuery);
    requireReadOfAll(c, q);
    const from = q.from ?? 0n;
    const limit = q.limit ?? DEFAULT_PAGE;
    const events = traceRead('logline.read', { 'logline.stream': '$all', 'logline.from': String(from) }, () =>
      store.readAll({ from, limit, types: q.types, streamPrefix: q.streamPrefix, category: q.category, sealed: q.sealed === 'true' }),
    );
    const page = await collectPage(events, limit, () => 'take');
    const next = page.last?.position ?? from;
    return rawJson(`{"events":[${page.parts.join(',')}],"next":"${next}"}`, noStore(page));
  });

  const subscribe = async (
    c: Context<Env>,
    q: { from?: bigint; types?: string[]; streamPrefix?: string; category?: string },
    stream: string | undefined,
  ) => {
    const lastEventId = c.req.header('last-event-id');
    const resume = lastEventId ? parseWith(subscribeQuery, { from: lastEventId.trim() }, 'Last-Event-ID').from : undefined;
    const from = resume ?? q.from ?? 0n;
    // Answered before the stream starts, so the client gets a status (409), not an error event.
    // A store that cannot answer now is left to the subscription, which waits out an outage.
    const head = from > 0n ? await store.headPosition().catch(() => undefined) : undefined;
    if (head !== undefined && from > head) throw new PositionBeyondHeadError(from, head);
    const outgoing = c.env?.outgoing;
    const body = sseBody({
      store,
      hub,
      settings,
      from,
      types: q.types,
      streamPrefix: q.streamPrefix,
      category: q.category,
      stream,
      // Only while this response is still unsent: the socket may carry another request by then.
      destroy: outgoing ? () => (outgoing.writableFinished ? undefined : outgoing.destroy()) : undefined,
      onError: (error) => logger.warn({ err: error, stream: stream ?? '$all' }, 'subscription failed'),
      onOverflow: (client) =>
        logger.warn(
          { client: client.id, target: client.target, lastEventId: client.lastEventId.toString() },
          'sse client too slow: closed',
        ),
    });
    return new Response(body, {
      headers: {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        'x-accel-buffering': 'no',
      },
    });
  };

  app.get('/v1/all/subscribe', (c) => {
    const q = queryOf(c, subscribeQuery);
    requireReadOfAll(c, q);
    return subscribe(c, q, undefined);
  });

  app.get('/v1/streams/:stream/subscribe', (c) => {
    const stream = c.req.param('stream');
    assertStreamId(stream);
    requireRight(keyOf(c), 'read', stream, `stream '${stream}'`);
    return subscribe(c, queryOf(c, streamSubscribeQuery), stream);
  });

  // --- personal data (docs/lifecycle.md#forget-a-person) ---
  app.get('/v1/subjects/:subject', async (c) => {
    queryOf(c, noQuery);
    const subject = c.req.param('subject');
    requireAdmin(keyOf(c), `subject '${subject}'`);
    const status = await store.subjectStatus(subject);
    if (!status) throw new UnknownSubjectError(subject);
    return json(status);
  });

  app.delete('/v1/subjects/:subject', async (c) => {
    queryOf(c, noQuery);
    const subject = c.req.param('subject');
    requireAdmin(keyOf(c), `subject '${subject}'`);
    const result = await store.forget(subject);
    logger.info({ subject, alreadyForgotten: result.alreadyForgotten }, 'subject forgotten');
    return json(result);
  });

  // --- operations ---
  app.get('/v1/stats', async (c) => {
    queryOf(c, noQuery);
    requireRight(keyOf(c), 'read', '', 'store statistics');
    const stats = await store.stats();
    return json({ ...stats, backend: store.backend, sseClients: hub.clients.size });
  });

  const subscriptions = async () => {
    const head = await store.headPosition();
    const sse = [...hub.clients.values()].map((client) => ({
      kind: 'sse',
      name: `sse#${client.id} ${client.target}`,
      target: client.target,
      position: client.lastEventId,
      // Only meaningful for an unfiltered $all client; a filtered one may be idle at the head.
      lag: client.filtered ? null : head - client.lastEventId,
      bufferedBytes: client.bufferedBytes(),
      connectedAt: client.connectedAt,
    }));
    const infos = await consumerInfos();
    // A group is one entry (its lowest checkpoint, its largest lag) listing its partitions, each
    // with its checkpoint, lag and lease owner: the admin page expands it.
    const groups = summarizeGroups(infos).map((group) => ({
      kind: 'group',
      name: group.group,
      target: group.group,
      position: group.checkpoint,
      lag: BigInt(group.lagPositions),
      lagSeconds: group.lagSeconds,
      status: aggregateStatus(group.partitions.map((p) => p.status)),
      parked: group.parked,
      owners: group.owners,
      partitions: group.partitions.map((p) => ({
        partition: p.partition,
        name: p.name,
        position: p.checkpoint,
        lag: BigInt(p.lagPositions),
        lagSeconds: p.lagSeconds,
        owner: p.owner ?? null,
        leaseExpiresAt: p.leaseExpiresAt ?? null,
      })),
    }));
    const consumers = infos
      .filter((info) => info.kind !== 'group')
      .map((info) => ({
        kind: info.kind,
        name: info.name,
        target: info.projection ?? info.name,
        position: info.checkpoint,
        lag: BigInt(info.lagPositions),
        lagSeconds: info.lagSeconds,
        status: info.status,
        parked: info.parked,
        ...(info.lastError === undefined ? {} : { lastError: info.lastError }),
        ...(info.version === undefined ? {} : { version: info.version, active: info.active }),
      }));
    return { head, subscriptions: [...consumers, ...groups, ...sse] };
  };

  app.get('/v1/subscriptions', async (c) => {
    queryOf(c, noQuery);
    requireRight(keyOf(c), 'read', '', 'subscriptions');
    return json(await subscriptions());
  });

  // One consumer's checkpoint and lag. With Logline-Min-Position: p it answers only once the
  // consumer has processed p (read-your-writes), or 503 PositionTimeout.
  app.get('/v1/subscriptions/:name', async (c) => {
    queryOf(c, noQuery);
    requireRight(keyOf(c), 'read', '', 'subscriptions');
    const name = c.req.param('name');
    const lag = () =>
      getLag(store, name).catch((error: unknown) => {
        throw (error as { code?: string }).code === 'InvalidArgument' ? new NotFoundError(`Subscription '${name}'`, { name }) : error;
      });
    const minPosition = parseMinPosition(c.req.header('logline-min-position'));
    if (minPosition !== undefined) {
      const local = options.consumers?.find((handle) => handle.name === name);
      if (local) await local.waitForPosition(minPosition, { timeout: minPositionTimeout });
      else await pollCheckpoint(lag, name, minPosition, minPositionTimeout);
    }
    return json(await lag());
  });

  // Public, for load balancers; with keys configured, only a request with a valid key learns
  // more than up or down (backend, head position, why the store is unreachable).
  app.get('/v1/health', async (c) => {
    queryOf(c, noQuery);
    const details = !keys || keyOf(c) !== undefined;
    try {
      const head = await store.headPosition();
      return json(details ? { status: 'ok', backend: store.backend, headPosition: head } : { status: 'ok' });
    } catch (error) {
      const { body } = errorResponse(error);
      return json(details ? { status: 'unavailable', ...body } : { status: 'unavailable' }, 503);
    }
  });

  app.get('/v1/openapi.json', () => new Response(openApi, { headers: { 'content-type': 'application/json; charset=utf-8' } }));

  app.get('/metrics', async (c) => {
    queryOf(c, noQuery);
    // Store-wide counts and consumer names: read on every stream, or the key's own metrics right.
    const key = keyOf(c);
    if (key && !key.metrics && !allows(key, 'read', '')) throw new ForbiddenError('read', 'metrics');
    const [stats, subs] = await Promise.all([store.stats(), subscriptions()]);
    const sseLag = subs.subscriptions.filter((s) => s.kind === 'sse' && s.lag !== null).map((s) => Number(s.lag));
    const consumers = subs.subscriptions.filter((s) => s.kind !== 'sse');
    const extra: Gauge[] = [
      { name: 'logline_events_stored', help: 'Events in the store.', samples: [{ value: stats.events }] },
      { name: 'logline_streams', help: 'Streams in the store.', samples: [{ value: stats.streams }] },
      { name: 'logline_head_position', help: 'Position of the newest event.', samples: [{ value: stats.headPosition }] },
      {
        name: 'logline_append_inflight_bytes',
        help: 'Memory charged to appends in flight (see --max-inflight-bytes).',
        samples: [{ value: admission.inFlightBytes }],
      },
      { name: 'logline_append_queued', help: 'Appends waiting for the store.', samples: [{ value: admission.queuedAppends }] },
      { name: 'logline_sse_clients', help: 'Connected server-sent-event clients.', samples: [{ value: hub.clients.size }] },
      {
        name: 'logline_sse_buffered_bytes',
        help: 'Bytes queued for SSE clients, all together.',
        samples: [{ value: [...hub.clients.values()].reduce((sum, client) => sum + client.bufferedBytes(), 0) }],
      },
      {
        name: 'logline_subscription_lag_seconds',
        help: 'Age of the oldest event a subscription/projection has not processed yet.',
        samples: consumers.map((s) => ({ labels: { subscription: s.name }, value: 'lagSeconds' in s ? Number(s.lagSeconds) : 0 })),
      },
      {
        name: 'logline_subscription_lag',
        help: 'Positions between the head and what a subscription has processed (projections; SSE = the slowest unfiltered $all client).',
        samples: [
          ...consumers.map((s) => ({ labels: { subscription: s.name }, value: s.lag ?? 0 })),
          ...(sseLag.length ? [{ labels: { subscription: 'sse' }, value: Math.max(...sseLag) }] : []),
        ],
      },
      ...(options.gauges?.() ?? []),
    ];
    return new Response(metrics.render(extra), { headers: { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' } });
  });

  options.routes?.(app, store);

  // --- admin page ---
  const asset = (name: string) => {
    const text = admin.get(name);
    if (text === undefined) throw new NotFoundError(`Admin asset '${name}'`);
    return new Response(text, { headers: { 'content-type': ADMIN_TYPES[name] as string, 'cache-control': 'no-cache' } });
  };
  app.get('/', () => asset('index.html'));
  app.get('/admin/:name', (c) => asset(c.req.param('name')));
  app.get('/favicon.ico', () => new Response(null, { status: 204 }));

  return { app, hub, metrics, admission, inFlight };
}
