/**
 * Retention and deletion over HTTP (docs/http.md#retention-and-deletion): a stream's metadata,
 * deleting a stream, the list of streams with metadata or deleted (admin page), a scavenge, and
 * a restored stream start (restoreStreamStart, for `logline import --server`).
 *
 * Rights: reading metadata needs read on the stream, changing it, deleting the stream or starting
 * it write on it; the list needs read on every stream, a scavenge write on every stream (it removes events of
 * any stream).
 */
import type { Context, Hono } from 'hono';
import { z } from 'zod';
import { InvalidArgumentError } from '../core/errors.js';
import type { EventStore } from '../core/types.js';
import { assertStreamId } from '../core/validation.js';
import type { ServerEnv } from './app.js';
import { requireRight } from './auth.js';
import { UnsupportedMediaTypeError } from './http-errors.js';
import { stringify } from './json.js';
import { expectedVersionFrom, listStreamsQuery, noQuery, queryOf } from './schemas.js';

type KeyContext = Context<ServerEnv>;

const deleteQuery = z.strictObject({ ...noQuery.shape, hard: z.enum(['true', 'false']).optional() });
const lifecyclesQuery = listStreamsQuery.omit({ prefix: true });

/** A metadata body is three numbers: anything larger is a mistake. */
const MAX_BODY_BYTES = 16 * 1024;

const respond = (body: unknown, status = 200) =>
  new Response(stringify(body), { status, headers: { 'content-type': 'application/json; charset=utf-8' } });

async function jsonBody(c: KeyContext): Promise<unknown> {
  const contentType = c.req.header('content-type') ?? '';
  if (!/^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(contentType)) throw new UnsupportedMediaTypeError(contentType);
  const text = await c.req.text();
  if (Buffer.byteLength(text) > MAX_BODY_BYTES)
    throw new InvalidArgumentError('body', 'it is too large', `at most ${MAX_BODY_BYTES} bytes`);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new InvalidArgumentError('body', `it is not JSON (${(error as Error).message})`, 'a JSON object');
  }
}

export function mountLifecycleApi(app: Hono<ServerEnv>, store: EventStore): void {
  const key = (c: KeyContext) => c.get('key');

  const metadataOf = async (stream: string) => ({
    streamId: stream,
    version: await store.streamVersion(stream),
    ...(await store.getStreamMetadata(stream)),
  });

  app.get('/v1/streams/:stream/metadata', async (c) => {
    const stream = c.req.param('stream');
    assertStreamId(stream);
    requireRight(key(c), 'read', stream, `stream '${stream}'`);
    queryOf(c, noQuery);
    return respond(await metadataOf(stream));
  });

  app.put('/v1/streams/:stream/metadata', async (c) => {
    const stream = c.req.param('stream');
    assertStreamId(stream);
    requireRight(key(c), 'write', stream, `stream '${stream}'`);
    queryOf(c, noQuery);
    // The store validates the body itself (unknown keys, non-integers): one set of rules.
    await store.setStreamMetadata(stream, (await jsonBody(c)) as never);
    return respond(await metadataOf(stream));
  });

  app.delete('/v1/streams/:stream', async (c) => {
    const stream = c.req.param('stream');
    assertStreamId(stream);
    requireRight(key(c), 'write', stream, `stream '${stream}'`);
    const hard = queryOf(c, deleteQuery).hard === 'true';
    const { streamVersion } = await store.deleteStream(stream, {
      expectedVersion: expectedVersionFrom(c.req.header('if-match'), c.req.header('if-none-match')),
      hard,
    });
    return respond({ streamId: stream, streamVersion, deleted: hard ? 'hard' : 'soft' });
  });

  // A restore (logline import) starting a stream at its export's first kept version: like an
  // append it sets where the stream's versions go, so it needs write on the stream.
  app.put('/v1/streams/:stream/start', async (c) => {
    const stream = c.req.param('stream');
    assertStreamId(stream);
    requireRight(key(c), 'write', stream, `stream '${stream}'`);
    queryOf(c, noQuery);
    const body = await jsonBody(c);
    if (typeof body !== 'object' || body === null || Array.isArray(body) || Object.keys(body).some((k) => k !== 'version')) {
      throw new InvalidArgumentError('body', `got ${JSON.stringify(body)}`, 'an object { "version": n }');
    }
    const { version } = body as { version?: unknown };
    await store.restoreStreamStart(stream, version as number);
    return respond({ streamId: stream, version: await store.streamVersion(stream) });
  });

  app.get('/v1/lifecycles', async (c) => {
    const q = queryOf(c, lifecyclesQuery);
    requireRight(key(c), 'read', '', 'stream metadata of every stream');
    return respond({ streams: await store.listStreamLifecycles({ after: q.after, limit: q.limit }) });
  });

  app.post('/v1/scavenge', async (c) => {
    queryOf(c, noQuery);
    requireRight(key(c), 'write', '', 'every stream (a scavenge removes hidden events of any stream)');
    return respond(await store.scavenge());
  });
}
