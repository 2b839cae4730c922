/**
 * Parked events over HTTP, for operators and the admin page: list them (with error and stack),
 * replay them through the consumer that parked them, or skip (discard) them.
 *
 * Parked events hold events of any stream, so listing needs read on every stream and replaying or
 * skipping needs write on every stream (a key with `"*"` rights). Replay runs the consumer's own
 * handler, so only consumers running in this server process (the `consumers` option) can replay.
 */
import type { Context, Hono } from 'hono';
import { z } from 'zod';
import { InvalidArgumentError } from '../core/errors.js';
import type { EventStore } from '../core/types.js';
import type { ParkedEvent } from '../projections/backend.js';
import { backendFor } from '../projections/registry.js';
import type { ConsumerHandle, ReplayResult } from '../projections/subscription.js';
import type { ServerEnv } from './app.js';
import { requireRight } from './auth.js';
import { NotFoundError, UnsupportedMediaTypeError } from './http-errors.js';
import { stringify, toWire } from './json.js';
import { noQuery, parseWith, queryOf } from './schemas.js';

type KeyContext = Context<ServerEnv>;

const CONSUMER = z.string().regex(/^[A-Za-z0-9_.:@#-]{1,200}$/, '1 to 200 characters of [A-Za-z0-9_.:@#-]');
const IDS = z.array(z.number().int().positive()).min(1).max(10_000);

const listQuery = z.strictObject({ ...noQuery.shape, consumer: CONSUMER.optional() });
const replayBody = z.strictObject({ consumer: CONSUMER, ids: IDS.optional() });
const skipBody = z.strictObject({ ids: IDS });

/** Bodies here are a name and a few ids: anything larger is a mistake or an attack. */
const MAX_BODY_BYTES = 256 * 1024;

interface Replayable extends ConsumerHandle {
  replayParked(ids?: number[]): Promise<ReplayResult>;
}

const respond = (body: unknown, status = 200) =>
  new Response(stringify(body), { status, headers: { 'content-type': 'application/json; charset=utf-8' } });

const toParkedWire = (parked: ParkedEvent) => ({
  id: parked.id,
  consumer: parked.consumer,
  position: String(parked.position),
  error: parked.error,
  stack: parked.stack,
  attempts: parked.attempts,
  parkedAt: parked.parkedAt,
  event: toWire(parked.event),
});

async function jsonBody(c: KeyContext): Promise<unknown> {
  const contentType = c.req.header('content-type') ?? '';
  if (!/^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(contentType)) throw new UnsupportedMediaTypeError(contentType);
  const declared = Number(c.req.header('content-length') ?? 0);
  if (declared > MAX_BODY_BYTES) throw new InvalidArgumentError('body', `${declared} bytes`, `at most ${MAX_BODY_BYTES} bytes`);
  const text = await c.req.text();
  if (Buffer.byteLength(text) > MAX_BODY_BYTES)
    throw new InvalidArgumentError('body', 'it is too large', `at most ${MAX_BODY_BYTES} bytes`);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new InvalidArgumentError('body', `it is not JSON (${(error as Error).message})`, 'a JSON object');
  }
}

export function mountParkedApi(app: Hono<ServerEnv>, store: EventStore, consumers: ConsumerHandle[] | undefined): void {
  const key = (c: KeyContext) => c.get('key');

  app.get('/v1/parked', async (c) => {
    const q = queryOf(c, listQuery);
    requireRight(key(c), 'read', '', 'parked events (read on every stream)');
    const backend = await backendFor(store);
    const parked = await backend.listParked(q.consumer);
    const replayable = new Set((consumers ?? []).filter(canReplay).map((handle) => handle.name));
    return respond({ parked: parked.map(toParkedWire), replayable: [...replayable] });
  });

  app.post('/v1/parked/replay', async (c) => {
    queryOf(c, noQuery);
    requireRight(key(c), 'write', '', 'parked events (write on every stream)');
    const body = parseWith(replayBody, await jsonBody(c), 'body');
    const handle = consumers?.find((candidate) => candidate.name === body.consumer);
    if (!handle || !canReplay(handle)) {
      throw new NotFoundError(`Consumer '${body.consumer}' running in this server (only those can replay)`, {
        consumer: body.consumer,
      });
    }
    const result = await handle.replayParked(body.ids);
    return respond({
      replayed: result.replayed,
      failed: result.failed.map(({ id, error }) => ({ id, error: error instanceof Error ? error.message : String(error) })),
    });
  });

  app.post('/v1/parked/skip', async (c) => {
    queryOf(c, noQuery);
    requireRight(key(c), 'write', '', 'parked events (write on every stream)');
    const body = parseWith(skipBody, await jsonBody(c), 'body');
    const backend = await backendFor(store);
    const known = new Set((await backend.listParked()).map((parked) => parked.id));
    const missing = body.ids.filter((id) => !known.has(id));
    // All or nothing: a typo in one id must not discard the others.
    if (missing.length) throw new NotFoundError(`Parked event(s) ${missing.join(', ')}`, { ids: missing });
    for (const id of body.ids) await backend.deleteParked(id);
    return respond({ skipped: body.ids.length });
  });
}

function canReplay(handle: ConsumerHandle): handle is Replayable {
  return typeof (handle as Partial<Replayable>).replayParked === 'function';
}
