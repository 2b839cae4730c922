/**
 * The HTTP API of design.md §4 as a Hono app over one EventStore. A thin adapter: validation
 * uses the core's zod schemas, errors are the core's typed errors, the store does the work.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { type Context, Hono } from 'hono';
import type { Logger } from 'pino';
import { AppendTooLargeError, InvalidArgumentError } from '../core/errors.js';
import type { EventStore, ExpectedVersion, RecordedEvent } from '../core/types.js';
import { assertStreamId } from '../core/validation.js';
import { type ApiKey, type KeyRing, requireRight } from './auth.js';
import { errorResponse, ForbiddenError, NotFoundError, UnsupportedMediaTypeError } from './http-errors.js';
import { stringify, toWire } from './json.js';
import { type Gauge, ServerMetrics } from './metrics.js';
import {
  allReadQuery,
  appendRequestSchema,
  DEFAULT_PAGE,
  listStreamsQuery,
  openApiDocument,
  parseWith,
  streamReadQuery,
  subscribeQuery,
} from './schemas.js';
import { DEFAULT_SSE, SseHub, type SseSettings, sseBody } from './sse.js';

/** A read model the server can wait on for Logline-Min-Position (see src/projections). */
export interface ReadModelHooks {
  /** Resolves once `projection` has processed `position`; rejects with PositionTimeout after `timeoutMs`. */
  waitForPosition(projection: string, position: bigint, opts: { timeout: number }): Promise<unknown>;
  /** Subscriptions/projections and how far behind the head they are. */
  listLag(): Promise<Array<{ name: string; position: bigint; lag: bigint; status?: string }>>;
}

export interface AppOptions {
  store: EventStore;
  logger: Logger;
  keys?: KeyRing;
  /** Without keys, only requests whose Host is a loopback name are served (defeats DNS rebinding). */
  loopbackOnly?: boolean;
  sse?: Partial<SseSettings>;
  readModels?: ReadModelHooks;
  /** Longest wait for Logline-Min-Position, ms. */
  minPositionTimeoutMs?: number;
}

export interface LoglineApp {
  app: Hono<Env>;
  hub: SseHub;
  metrics: ServerMetrics;
  /** Appends in progress: shutdown waits for these. */
  inFlight: Set<Promise<unknown>>;
}

type Env = { Bindings: { outgoing?: ServerResponse }; Variables: { key: ApiKey | undefined } };

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

/** `"n"` → n, `*` → 'exists'; If-None-Match `*` → 'no_stream'. Anything else is a 400. */
function expectedVersionFrom(ifMatch: string | undefined, ifNoneMatch: string | undefined): ExpectedVersion {
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

async function readBodyText(request: Request, maxBytes: number): Promise<string> {
  const declared = Number(request.headers.get('content-length') ?? Number.NaN);
  if (declared > maxBytes) throw new AppendTooLargeError('bytes', declared, maxBytes);
  if (!request.body) return '';
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw new AppendTooLargeError('bytes', total, maxBytes);
    }
    chunks.push(value);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new InvalidArgumentError('body', 'it is not valid UTF-8', 'a UTF-8 JSON object {"events":[…]}');
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new InvalidArgumentError('body', `it is not valid JSON (${(error as Error).message})`, 'a JSON object {"events":[…]}');
  }
}

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(stringify(body), { status, headers: { 'content-type': 'application/json; charset=utf-8', ...headers } });

const query = (request: Request) => Object.fromEntries(new URL(request.url).searchParams);

export function createApp(options: AppOptions): LoglineApp {
  const { store, logger, keys } = options;
  const settings: SseSettings = { ...DEFAULT_SSE, ...options.sse };
  const hub = new SseHub();
  const metrics = new ServerMetrics();
  const inFlight = new Set<Promise<unknown>>();
  const admin = loadAdminAssets();
  const openApi = JSON.stringify(openApiDocument());
  // Room for JSON punctuation and whitespace around the events the store counts.
  const maxBodyBytes = store.limits.maxAppendBytes + 1024 * 1024;
  const app = new Hono<Env>();

  app.onError((error, c) => {
    const { status, body } = errorResponse(error);
    if (status >= 500) logger.error({ err: error, path: c.req.path }, 'request failed');
    const headers: Record<string, string> = status === 503 ? { 'retry-after': '1' } : {};
    return json(body, status, headers);
  });
  app.notFound((c) => json(new NotFoundError(`Route ${c.req.method} ${c.req.path}`).toJSON(), 404));

  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    metrics.countResponse(c.res.status);
    logger.info({ method: c.req.method, path: c.req.path, status: c.res.status, ms: +(performance.now() - started).toFixed(2) }, 'request');
  });

  app.use(async (c, next) => {
    if (options.loopbackOnly && !LOOPBACK_HOST.test(c.req.header('host') ?? '')) {
      throw new ForbiddenError('read', `through Host '${c.req.header('host')}' (without API keys only loopback names are served)`);
    }
    const isPublic = PUBLIC.has(c.req.path) || c.req.path.startsWith('/admin/');
    c.set('key', keys && !isPublic ? keys.authenticate(c.req.header('authorization'), c.req.query('api_key')) : undefined);
    await next();
  });

  const keyOf = (c: { get(name: 'key'): ApiKey | undefined }) => c.get('key');
  const headPosition = () => store.headPosition().catch(() => undefined);

  // Read-your-writes for read-model queries: wait (bounded) until the named projection has caught up.
  const waitForMinPosition = async (header: string | undefined, projection: string) => {
    if (header === undefined) return;
    if (!/^\d{1,19}$/.test(header.trim())) {
      throw new InvalidArgumentError('Logline-Min-Position', `got ${JSON.stringify(header.slice(0, 100))}`, 'a position (integer)');
    }
    if (!options.readModels) return;
    await options.readModels.waitForPosition(projection, BigInt(header.trim()), { timeout: options.minPositionTimeoutMs ?? 5000 });
  };

  // --- append ---
  app.post('/v1/streams/:stream', async (c) => {
    const stream = c.req.param('stream');
    const started = performance.now();
    let eventCount = 0;
    const work = (async () => {
      try {
        assertStreamId(stream);
        requireRight(keyOf(c), 'write', stream, `stream '${stream}'`);
        const expectedVersion = expectedVersionFrom(c.req.header('if-match'), c.req.header('if-none-match'));
        const contentType = c.req.header('content-type') ?? '';
        if (!/^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(contentType)) throw new UnsupportedMediaTypeError(contentType);
        const body = parseJson(await readBodyText(c.req.raw, maxBodyBytes));
        if (Array.isArray((body as { events?: unknown })?.events)) {
          const count = (body as { events: unknown[] }).events.length;
          if (count > store.limits.maxAppendEvents) throw new AppendTooLargeError('events', count, store.limits.maxAppendEvents);
        }
        const { events } = parseWith(appendRequestSchema, body, 'body');
        eventCount = events.length;
        const result = await store.append(stream, events, { expectedVersion });
        metrics.countAppend('ok', eventCount);
        metrics.appendLatency.observe((performance.now() - started) / 1000);
        return json(result, 201, { etag: `"${result.streamVersion}"`, 'logline-position': result.position.toString() });
      } catch (error) {
        metrics.countAppend((error as { code?: string }).code ?? 'Internal', 0);
        const { status, body } = errorResponse(error);
        if (status >= 500) logger.error({ err: error, stream }, 'append failed');
        const head = await headPosition();
        return json(body, status, head === undefined ? {} : { 'logline-position': head.toString() });
      }
    })();
    inFlight.add(work);
    try {
      return await work;
    } finally {
      inFlight.delete(work);
    }
  });

  // --- read one stream ---
  app.get('/v1/streams/:stream', async (c) => {
    const stream = c.req.param('stream');
    assertStreamId(stream);
    requireRight(keyOf(c), 'read', stream, `stream '${stream}'`);
    const q = parseWith(streamReadQuery, query(c.req.raw), 'query');
    const version = await store.streamVersion(stream);
    if (version === 0) throw new NotFoundError(`Stream '${stream}'`, { stream });
    const etag = `"${version}"`;
    const ifNoneMatch = c.req.header('if-none-match');
    if (ifNoneMatch && (ifNoneMatch.trim() === '*' || ifNoneMatch.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag))) {
      return new Response(null, { status: 304, headers: { etag } });
    }
    const limit = q.limit ?? DEFAULT_PAGE;
    const backward = q.direction === 'backward';
    const events: RecordedEvent[] = [];
    // Cap at `version` so the page agrees with the ETag even if an append lands meanwhile.
    const from = backward ? Math.min(q.from ?? version, version) : (q.from ?? 1);
    for await (const event of store.read(stream, { from, limit, direction: q.direction ?? 'forward' })) {
      if (event.streamVersion > version) break;
      events.push(event);
    }
    const last = events[events.length - 1]?.streamVersion;
    const next =
      last === undefined || events.length < limit ? null : backward ? (last > 1 ? last - 1 : null) : last < version ? last + 1 : null;
    return json({ events: events.map(toWire), streamVersion: version, next }, 200, { etag });
  });

  // --- list streams (admin page, CLI) ---
  app.get('/v1/streams', async (c) => {
    const q = parseWith(listStreamsQuery, query(c.req.raw), 'query');
    requireRight(keyOf(c), 'read', q.prefix ?? '', q.prefix ? `streams '${q.prefix}…'` : 'all streams');
    const streams = await store.listStreams({ prefix: q.prefix, after: q.after, limit: q.limit ?? DEFAULT_PAGE });
    return json({ streams });
  });

  // --- the global log ---
  app.get('/v1/all', async (c) => {
    const q = parseWith(allReadQuery, query(c.req.raw), 'query');
    requireRight(keyOf(c), 'read', q.streamPrefix ?? '', q.streamPrefix ? `streams '${q.streamPrefix}…'` : '$all');
    const from = q.from ?? 0n;
    const events: RecordedEvent[] = [];
    for await (const event of store.readAll({ from, limit: q.limit ?? DEFAULT_PAGE, types: q.types, streamPrefix: q.streamPrefix })) {
      events.push(event);
    }
    const next = events[events.length - 1]?.position ?? from;
    return json({ events: events.map(toWire), next: next.toString() });
  });

  const subscribe = (c: Context<Env>, stream: string | undefined) => {
    const q = parseWith(subscribeQuery, query(c.req.raw), 'query');
    const lastEventId = c.req.header('last-event-id');
    const resume = lastEventId ? parseWith(subscribeQuery, { from: lastEventId.trim() }, 'Last-Event-ID').from : undefined;
    const outgoing = c.env?.outgoing;
    const body = sseBody({
      store,
      hub,
      settings,
      from: resume ?? q.from ?? 0n,
      types: q.types,
      streamPrefix: q.streamPrefix,
      stream,
      destroy: outgoing ? () => outgoing.destroy() : undefined,
      onError: (error) => logger.warn({ err: error, stream: stream ?? '$all' }, 'subscription failed'),
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
    const prefix = c.req.query('streamPrefix') ?? '';
    requireRight(keyOf(c), 'read', prefix, prefix ? `streams '${prefix}…'` : '$all');
    return subscribe(c, undefined);
  });

  app.get('/v1/streams/:stream/subscribe', (c) => {
    const stream = c.req.param('stream');
    assertStreamId(stream);
    requireRight(keyOf(c), 'read', stream, `stream '${stream}'`);
    return subscribe(c, stream);
  });

  // --- operations ---
  app.get('/v1/stats', async (c) => {
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
    const projections = options.readModels ? (await options.readModels.listLag()).map((p) => ({ kind: 'projection', ...p })) : [];
    return { head, subscriptions: [...projections, ...sse] };
  };

  app.get('/v1/subscriptions', async (c) => {
    requireRight(keyOf(c), 'read', '', 'subscriptions');
    await waitForMinPosition(c.req.header('logline-min-position'), c.req.query('projection') ?? '');
    return json(await subscriptions());
  });

  app.get('/v1/health', async () => {
    try {
      const head = await store.headPosition();
      return json({ status: 'ok', backend: store.backend, headPosition: head });
    } catch (error) {
      const { body } = errorResponse(error);
      return json({ status: 'unavailable', ...body }, 503);
    }
  });

  app.get('/v1/openapi.json', () => new Response(openApi, { headers: { 'content-type': 'application/json; charset=utf-8' } }));

  app.get('/metrics', async (c) => {
    if (keys && !keyOf(c)) throw new ForbiddenError('read', 'metrics');
    const [stats, subs] = await Promise.all([store.stats(), subscriptions()]);
    const sseLag = subs.subscriptions.filter((s) => s.kind === 'sse' && s.lag !== null).map((s) => Number(s.lag));
    const extra: Gauge[] = [
      { name: 'logline_events_stored', help: 'Events in the store.', samples: [{ value: stats.events }] },
      { name: 'logline_streams', help: 'Streams in the store.', samples: [{ value: stats.streams }] },
      { name: 'logline_head_position', help: 'Position of the newest event.', samples: [{ value: stats.headPosition }] },
      { name: 'logline_sse_clients', help: 'Connected server-sent-event clients.', samples: [{ value: hub.clients.size }] },
      {
        name: 'logline_sse_buffered_bytes',
        help: 'Bytes queued for SSE clients, all together.',
        samples: [{ value: [...hub.clients.values()].reduce((sum, client) => sum + client.bufferedBytes(), 0) }],
      },
      {
        name: 'logline_subscription_lag',
        help: 'Positions between the head and what a subscription has processed (projections; SSE = the slowest unfiltered $all client).',
        samples: [
          ...subs.subscriptions
            .filter((s) => s.kind === 'projection')
            .map((s) => ({ labels: { subscription: s.name }, value: s.lag ?? 0 })),
          ...(sseLag.length ? [{ labels: { subscription: 'sse' }, value: Math.max(...sseLag) }] : []),
        ],
      },
    ];
    return new Response(metrics.render(extra), { headers: { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' } });
  });

  // --- admin page ---
  const asset = (name: string) => {
    const text = admin.get(name);
    if (text === undefined) throw new NotFoundError(`Admin asset '${name}'`);
    return new Response(text, { headers: { 'content-type': ADMIN_TYPES[name] as string, 'cache-control': 'no-cache' } });
  };
  app.get('/', () => asset('index.html'));
  app.get('/admin/:name', (c) => asset(c.req.param('name')));
  app.get('/favicon.ico', () => new Response(null, { status: 204 }));

  return { app, hub, metrics, inFlight };
}
