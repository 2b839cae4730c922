/**
 * Where CLI commands act: a store opened directly (--store URL) or a running server
 * (--server http://…). Both give the same small interface, so every command works on either.
 */
import { InvalidArgumentError, LoglineError, StreamDeletedError } from '../core/errors.js';
import { openStore } from '../core/open-store.js';
import {
  type AppendResult,
  type DeleteStreamOptions,
  type EventStore,
  type ExpectedVersion,
  type ForgetResult,
  type NewEvent,
  type RecordedEvent,
  type ScavengeResult,
  type StoreStats,
  type StreamLifecycle,
  type StreamLifecycleInfo,
  type StreamMetadata,
  SUBJECT_KEYS_FORMAT,
  type SubjectKeyImportResult,
  type SubjectKeyRecord,
} from '../core/types.js';
import { NotFoundError } from '../server/http-errors.js';
import { readSse } from './sse-client.js';

export interface Target {
  append(stream: string, events: NewEvent[], expectedVersion?: ExpectedVersion): Promise<AppendResult>;
  read(stream: string, opts: { from?: number; limit?: number; backward?: boolean }): AsyncIterable<RecordedEvent>;
  /** The log after `from` up to and including `until`, as stored: personal fields sealed (what export writes). */
  readAll(from: bigint, until: bigint): AsyncIterable<RecordedEvent>;
  /** Catch-up from `from` (exclusive; 'end' = only new events), then live, until `signal` aborts. */
  subscribe(stream: string | undefined, from: bigint | 'end', signal: AbortSignal): AsyncIterable<RecordedEvent>;
  headPosition(): Promise<bigint>;
  stats(): Promise<StoreStats & Record<string, unknown>>;
  /** Forgets a data subject (store.forget; DELETE /v1/subjects/{subject}). */
  forget(subject: string): Promise<ForgetResult>;
  /** A stream's metadata, version and deletion (docs/lifecycle.md#retention-and-deletion). */
  getMetadata(stream: string): Promise<StreamLifecycle & { streamId: string; version: number }>;
  setMetadata(stream: string, metadata: StreamMetadata): Promise<void>;
  deleteStream(stream: string, opts: DeleteStreamOptions): Promise<{ streamVersion: number }>;
  scavenge(): Promise<ScavengeResult>;
  /** Every stream with retention settings or deleted, by stream id (listStreamLifecycles; GET /v1/lifecycles). */
  listLifecycles(): AsyncIterable<StreamLifecycleInfo>;
  /** Starts a stream that does not exist at a version (restoreStreamStart; PUT /v1/streams/{s}/start). */
  restoreStreamStart(stream: string, version: number): Promise<void>;
  /**
   * The subject keys of personal data (store.exportSubjectKeys / importSubjectKeys). Only on a
   * store opened directly: keys never travel through the HTTP API, so a server target throws at
   * the call, before anything is read or written.
   */
  exportSubjectKeys(): AsyncIterable<SubjectKeyRecord>;
  importSubjectKeys(records: AsyncIterable<SubjectKeyRecord>): Promise<SubjectKeyImportResult>;
  /**
   * Replays a `SubjectForgotten` notice of an export: the subject ends forgotten here, whether or
   * not this store knows it yet, so a key backup imported later cannot bring it back. A server
   * can only forget subjects it knows: false when it does not (nothing to destroy there).
   */
  restoreForgotten(subject: string, forgottenAt: string): Promise<boolean>;
  close(): Promise<void>;
}

/** Stream lifecycles read per page (the HTTP API answers at most 1000). */
const LIFECYCLE_PAGE = 500;

export function storeTarget(store: EventStore): Target {
  return {
    append: (stream, events, expectedVersion = 'any') => store.append(stream, events, { expectedVersion }),
    async *read(stream, { from, limit, backward }) {
      // As the HTTP API answers: unknown or soft-deleted is not found, a tombstoned stream is StreamDeleted.
      if ((await store.streamVersion(stream)) === 0) throw new NotFoundError(`Stream '${stream}'`, { stream });
      const { deleted } = await store.getStreamMetadata(stream);
      if (deleted === 'hard') throw new StreamDeletedError(stream);
      if (deleted === 'soft') throw new NotFoundError(`Stream '${stream}' (deleted)`, { stream, deleted });
      yield* store.read(stream, { from, limit, direction: backward ? 'backward' : 'forward' });
    },
    async *readAll(from, until) {
      for await (const event of store.readAll({ from, sealed: true })) {
        if (event.position > until) return;
        yield event;
      }
    },
    async *subscribe(stream, from, signal) {
      for await (const event of store.subscribe({ from, streamPrefix: stream, signal })) {
        if (stream === undefined || event.streamId === stream) yield event;
      }
    },
    headPosition: () => store.headPosition(),
    stats: async () => ({ ...(await store.stats()), backend: store.backend }),
    forget: (subject) => store.forget(subject),
    getMetadata: async (stream) => ({
      streamId: stream,
      version: await store.streamVersion(stream),
      ...(await store.getStreamMetadata(stream)),
    }),
    setMetadata: (stream, metadata) => store.setStreamMetadata(stream, metadata),
    deleteStream: (stream, opts) => store.deleteStream(stream, opts),
    scavenge: () => store.scavenge(),
    async *listLifecycles() {
      let after = '';
      for (;;) {
        const page = await store.listStreamLifecycles({ after, limit: LIFECYCLE_PAGE });
        yield* page;
        if (page.length < LIFECYCLE_PAGE) return;
        after = (page[page.length - 1] as StreamLifecycleInfo).streamId;
      }
    },
    restoreStreamStart: (stream, version) => store.restoreStreamStart(stream, version),
    exportSubjectKeys: () => store.exportSubjectKeys(),
    importSubjectKeys: (records) => store.importSubjectKeys(records),
    async restoreForgotten(subject, forgottenAt) {
      // A tombstone for a subject unknown here (a key held here is destroyed by the import's
      // forget); then forget, which re-sends the notice (same id) so the log holds it as the source did.
      const tombstone: SubjectKeyRecord = {
        format: SUBJECT_KEYS_FORMAT,
        subject,
        wrapped: false,
        createdAt: forgottenAt,
        forgottenAt,
        streams: [],
      };
      await store.importSubjectKeys([tombstone]);
      await store.forget(subject);
      return true;
    },
    close: () => store.close(),
  };
}

type WireEvent = Omit<RecordedEvent, 'position'> & { position: string };
const fromWire = (event: WireEvent): RecordedEvent => ({ ...event, position: BigInt(event.position) });

/** An error the server answered with, re-thrown with its code and details. */
export class RemoteError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
  ) {
    super(`${String(body.error ?? status)}: ${String(body.message ?? '')}`);
  }
}

export function httpTarget(baseUrl: string, apiKey: string | undefined): Target {
  const base = baseUrl.replace(/\/+$/, '');
  const auth: Record<string, string> = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
  const call = async (path: string, init: RequestInit = {}): Promise<Response> => {
    const response = await fetch(`${base}${path}`, { ...init, headers: { ...auth, ...(init.headers as Record<string, string>) } });
    if (response.status >= 400) {
      const body = (await response.json().catch(() => ({ error: `HTTP ${response.status}` }))) as Record<string, unknown>;
      throw new RemoteError(response.status, body);
    }
    return response;
  };
  const enc = encodeURIComponent;
  /** An expected version as the precondition headers the API reads. */
  const preconditions = (expectedVersion: ExpectedVersion = 'any'): Record<string, string> =>
    typeof expectedVersion === 'number'
      ? { 'if-match': `"${expectedVersion}"` }
      : expectedVersion === 'exists'
        ? { 'if-match': '*' }
        : expectedVersion === 'no_stream'
          ? { 'if-none-match': '*' }
          : {};
  return {
    async append(stream, events, expectedVersion = 'any') {
      const headers: Record<string, string> = { 'content-type': 'application/json', ...preconditions(expectedVersion) };
      const response = await call(`/v1/streams/${enc(stream)}`, { method: 'POST', headers, body: JSON.stringify({ events }) });
      const result = (await response.json()) as { streamVersion: number; position: string };
      return { streamVersion: result.streamVersion, position: BigInt(result.position) };
    },
    async *read(stream, { from, limit = Number.POSITIVE_INFINITY, backward }) {
      let next: number | null | undefined = from;
      let remaining = limit;
      while (remaining > 0) {
        const params = new URLSearchParams({ limit: String(Math.min(1000, remaining)), direction: backward ? 'backward' : 'forward' });
        if (next !== undefined && next !== null) params.set('from', String(next));
        const response = await call(`/v1/streams/${enc(stream)}?${params}`);
        const page = (await response.json()) as { events: WireEvent[]; next: number | null };
        for (const event of page.events) yield fromWire(event);
        remaining -= page.events.length;
        if (page.next === null) return;
        next = page.next;
      }
    },
    async *readAll(from, until) {
      let after = from;
      while (after < until) {
        const response = await call(`/v1/all?from=${after}&limit=1000&sealed=true`);
        const page = (await response.json()) as { events: WireEvent[] };
        if (page.events.length === 0) return;
        for (const wire of page.events) {
          const event = fromWire(wire);
          if (event.position > until) return;
          yield event;
          after = event.position;
        }
      }
    },
    async *subscribe(stream, from, signal) {
      let after = from === 'end' ? await this.headPosition() : from;
      const path = stream === undefined ? '/v1/all/subscribe' : `/v1/streams/${enc(stream)}/subscribe`;
      // Reconnect after an overflow notice or a dropped connection, resuming with Last-Event-ID.
      while (!signal.aborted) {
        let response: Response;
        try {
          response = await call(path, { headers: { accept: 'text/event-stream', 'last-event-id': String(after) }, signal });
        } catch (error) {
          if (signal.aborted) return;
          throw error;
        }
        try {
          for await (const message of readSse(response.body as ReadableStream<Uint8Array>)) {
            if (message.event !== 'message') continue;
            const event = fromWire(JSON.parse(message.data) as WireEvent);
            after = event.position;
            yield event;
          }
        } catch (error) {
          if (signal.aborted) return;
          throw error;
        }
        // The server ended the stream (shutdown or overflow): wait a moment, then resume.
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    },
    async headPosition() {
      const health = (await (await call('/v1/health')).json()) as { headPosition: string };
      return BigInt(health.headPosition);
    },
    async stats() {
      const stats = (await (await call('/v1/stats')).json()) as StoreStats & { headPosition: string };
      return { ...stats, headPosition: BigInt(stats.headPosition) };
    },
    async forget(subject) {
      return (await (await call(`/v1/subjects/${enc(subject)}`, { method: 'DELETE' })).json()) as ForgetResult;
    },
    async getMetadata(stream) {
      return (await (await call(`/v1/streams/${enc(stream)}/metadata`)).json()) as StreamLifecycle & { streamId: string; version: number };
    },
    async setMetadata(stream, metadata) {
      await call(`/v1/streams/${enc(stream)}/metadata`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(metadata),
      });
    },
    async deleteStream(stream, { expectedVersion, hard }) {
      const response = await call(`/v1/streams/${enc(stream)}${hard ? '?hard=true' : ''}`, {
        method: 'DELETE',
        headers: preconditions(expectedVersion),
      });
      const { streamVersion } = (await response.json()) as { streamVersion: number };
      return { streamVersion };
    },
    async scavenge() {
      return (await (await call('/v1/scavenge', { method: 'POST' })).json()) as ScavengeResult;
    },
    async *listLifecycles() {
      let after = '';
      for (;;) {
        const params = new URLSearchParams({ limit: String(LIFECYCLE_PAGE) });
        if (after) params.set('after', after);
        const { streams: page } = (await (await call(`/v1/lifecycles?${params}`)).json()) as { streams: StreamLifecycleInfo[] };
        yield* page;
        if (page.length < LIFECYCLE_PAGE) return;
        after = (page[page.length - 1] as StreamLifecycleInfo).streamId;
      }
    },
    async restoreStreamStart(stream, version) {
      await call(`/v1/streams/${enc(stream)}/start`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ version }),
      });
    },
    exportSubjectKeys() {
      throw keysNeedStore();
    },
    importSubjectKeys() {
      throw keysNeedStore();
    },
    async restoreForgotten(subject) {
      try {
        await this.forget(subject);
        return true;
      } catch (error) {
        if (error instanceof RemoteError && error.body.error === 'UnknownSubject') return false;
        throw error;
      }
    },
    close: async () => {},
  };
}

/** Subject keys unlock personal data: the API has no route for them, so `logline keys` reads and writes the store itself. */
const keysNeedStore = () =>
  new InvalidArgumentError(
    '--server',
    'subject keys never travel through the HTTP API, so `logline keys` needs direct store access',
    'the store itself: --store <url> (and LOGLINE_MASTER_KEY when its keys are wrapped)',
  );

export async function openTarget(opts: { store?: string; server?: string; apiKey?: string }): Promise<Target> {
  const server = opts.server ?? (opts.store ? undefined : process.env.LOGLINE_SERVER);
  if (server) return httpTarget(server, opts.apiKey ?? process.env.LOGLINE_API_KEY);
  return storeTarget(await openStore(opts.store ?? process.env.LOGLINE_STORE ?? 'sqlite:./logline-data/logline.db'));
}

export const describeError = (error: unknown): string =>
  error instanceof LoglineError || error instanceof RemoteError ? error.message : String((error as Error)?.stack ?? error);
