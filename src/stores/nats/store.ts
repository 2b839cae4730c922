/**
 * The NATS JetStream store (@nats-io/transport-node + @nats-io/jetstream, optional peers, imported
 * on first open). Layout in schema.ts, message format and positions in rows.ts, docs/nats.md.
 *
 * - Append = one message on the stream's subject, published with
 *   `Nats-Expected-Last-Subject-Sequence` = the sequence of the stream's current last message. The
 *   server refuses it if anything was appended to that stream in between, so versions stay
 *   contiguous and exactly one of N racing appends wins. The expected *version* is checked here
 *   against the last message's `Logline-Version` header (versions count events, sequences count
 *   messages); a per-stream cache of (last sequence, version) saves that read for a process's own
 *   consecutive appends, and a refused publish refreshes it.
 * - Idempotency: every event id is indexed (<NAME>_IDS) before the append is acknowledged, and
 *   appends carrying caller-chosen ids look them up first, so a retry is recognised however late
 *   it comes. `Nats-Msg-Id` (the first event's id) additionally lets the server drop a resend
 *   inside its de-duplication window, which makes our own resends after a timeout safe. A writer
 *   that dies between publish and index leaves its message unindexed; the next append to that
 *   stream indexes it first (the last message of a stream is checked whenever it is loaded), so
 *   every message but a stream's last is always indexed.
 * - Reads and subscriptions run on ephemeral consumers pulled by reader.ts (bounded read-ahead,
 *   replaced after a reconnect, a lost consumer or a gap, resuming after the last delivered
 *   sequence): catch-up and live delivery are one pass over the log.
 * - Unavailability (no JetStream responder, timeouts during a leader election, a lost connection)
 *   is retried until `timeoutMs`, then surfaces as StoreUnavailableError; resending an append
 *   with the same event ids is always safe.
 */
import { readFileSync } from 'node:fs';
import type { JetStreamClient, JetStreamManager, PubAck, StoredMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  AppendTooLargeError,
  DriverMissingError,
  IdempotencyConflictError,
  InvalidArgumentError,
  PositionBeyondHeadError,
  StoreClosedError,
  StoreUnavailableError,
  StreamDeletedError,
  WrongExpectedVersionError,
} from '../../core/errors.js';
import { resolveRetry } from '../../core/idempotency.js';
import { assertMasterKey, SUBJECTS_STREAM, sealedSubjects, storePersonalData } from '../../core/personal-data.js';
import {
  assertStartVersion,
  firstVisibleVersion,
  hasEffect,
  isVisible,
  type LifecycleRecord,
  lifecycleOf,
  normalizeStreamMetadata,
} from '../../core/retention.js';
import {
  type AppendOptions,
  type AppendResult,
  DEFAULT_LIMITS,
  type DeleteStreamOptions,
  type EventStore,
  type ExpectedVersion,
  type ListStreamsOptions,
  type NewEvent,
  type ReadAllOptions,
  type ReadOptions,
  type RecordedEvent,
  type Snapshot,
  type StoreLimits,
  type StoreStats,
  type StreamInfo,
  type StreamLifecycleInfo,
  type StreamMetadata,
  type SubscribeOptions,
} from '../../core/types.js';
import {
  assertExpectedVersion,
  assertStreamId,
  matchesFilter,
  type NormalizedReadAll,
  normalizeReadAllOptions,
  normalizeReadOptions,
  type PreparedEvent,
  prepareEvents,
  versionMatches,
} from '../../core/validation.js';
import type { ProjectionSupport } from '../../projections/backend.js';
import { type LogReader, openLogReader } from './reader.js';
import { LifecycleView } from './retention.js';
import {
  decodeMessage,
  encodeEvents,
  firstSeqAfter,
  HEADER_DELETED,
  HEADER_PREV,
  HEADER_STREAM,
  HEADER_VERSION,
  headOf,
  type LogMessage,
  lastPositionOf,
  MAX_EVENTS_PER_MESSAGE,
} from './rows.js';
import {
  decodeToken,
  ensureLayout,
  idSubject,
  layoutOf,
  lifecycleSubject,
  logSubject,
  type NatsLayout,
  snapshotSubject,
  snapshotSubjects,
} from './schema.js';
import { createNatsKeyTable } from './subject-keys.js';
import { parseNatsUrl } from './url.js';

export interface NatsStoreOptions {
  /** `nats://host:4222`, several seeds `nats://a:4222,b:4222`, with the query options of docs/nats.md. */
  url?: string;
  /** Instead of (or on top of) the URL: seed servers as host:port. */
  servers?: string[];
  /** The JetStream stream holding the log (one per tenant). Default: the URL's `stream`, else 'LOGLINE'. */
  stream?: string;
  /** Subject prefix of the log (one per tenant). Default: the URL's `prefix`, else 'logline'. */
  prefix?: string;
  /** Replicas of each stream when the store creates them (1 on a single server, 3 on a cluster). */
  replicas?: number;
  user?: string;
  pass?: string;
  token?: string;
  /** Path of a `.creds` file (JWT + NKey seed). */
  creds?: string;
  /** Longest an operation waits for JetStream (e.g. through a leader election) before StoreUnavailable. Default 5000 ms. */
  timeoutMs?: number;
  limits?: Partial<StoreLimits>;
  /** Wraps each subject key (AES-256-GCM, 32 bytes); see docs/lifecycle.md#forget-a-person. */
  masterKey?: Uint8Array;
}

export interface NatsEventStore extends EventStore, ProjectionSupport {
  readonly backend: 'nats';
  /** The streams and subjects this store uses. */
  readonly layout: NatsLayout;
  /** The connection the store uses; share it for projection state (see projections.ts). */
  readonly connection: NatsConnection;
  readonly jetstream: JetStreamClient;
  readonly manager: JetStreamManager;
  /** The server's max_payload: the largest message, so the largest append, in bytes. */
  readonly maxPayload: number;
  readonly timeoutMs: number;
}

type Transport = typeof import('@nats-io/transport-node');
type JetStreamModule = typeof import('@nats-io/jetstream');

async function loadDriver(): Promise<{ transport: Transport; jetstreamModule: JetStreamModule }> {
  try {
    const [transport, jetstreamModule] = await Promise.all([import('@nats-io/transport-node'), import('@nats-io/jetstream')]);
    return { transport, jetstreamModule };
  } catch (error) {
    throw new DriverMissingError('nats', '@nats-io/transport-node @nats-io/jetstream', error);
  }
}

/** Errors that mean "JetStream did not answer (yet)": worth retrying until the deadline. */
export function isUnavailableError(error: unknown): boolean {
  const name = (error as Error)?.name ?? '';
  // JetStreamNotEnabled: what a node answers while it has no meta leader (during a cluster election).
  if (
    ['TimeoutError', 'NoRespondersError', 'RequestError', 'ConnectionError', 'ClosedConnectionError', 'JetStreamNotEnabled'].includes(name)
  )
    return true;
  const code = (error as { code?: unknown })?.code;
  const status = (error as { status?: unknown })?.status;
  if (status === 503 || code === 503 || code === 10008) return true;
  return /no responders|timeout|temporarily unavailable|leader|not available|not enabled|stream offline|disconnect|connection closed/i.test(
    String((error as Error)?.message),
  );
}

const isWrongLastSequence = (error: unknown): boolean =>
  (error as { code?: unknown })?.code === 10071 || /wrong last sequence/i.test(String((error as Error)?.message));

const isMessageNotFound = (error: unknown): boolean =>
  (error as { code?: unknown })?.code === 10037 || /no message found/i.test(String((error as Error)?.message));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function openNatsStore(options: NatsStoreOptions): Promise<NatsEventStore> {
  assertMasterKey(options.masterKey);
  const fromUrl = options.url ? parseNatsUrl(options.url) : { servers: [] as string[] };
  const servers = [...(options.servers ?? []), ...fromUrl.servers];
  const where = options.url ?? servers.join(',');
  const layout = layoutOf(
    where,
    options.stream ?? fromUrl.stream,
    options.prefix ?? fromUrl.prefix,
    options.replicas ?? fromUrl.replicas ?? 1,
  );
  const limits: StoreLimits = { ...DEFAULT_LIMITS, ...options.limits };
  if (limits.maxAppendEvents > MAX_EVENTS_PER_MESSAGE) {
    throw new InvalidArgumentError(
      'limits.maxAppendEvents',
      `got ${limits.maxAppendEvents}`,
      `at most ${MAX_EVENTS_PER_MESSAGE} on NATS (an append is one message; positions leave room for that many events per message)`,
    );
  }
  const { transport, jetstreamModule } = await loadDriver();
  const creds = options.creds ?? fromUrl.creds;
  let nc: NatsConnection;
  try {
    nc = await transport.connect({
      servers: servers.length ? servers : ['127.0.0.1:4222'],
      user: options.user ?? fromUrl.user,
      pass: options.pass ?? fromUrl.pass,
      token: options.token ?? fromUrl.token,
      authenticator: creds ? transport.credsAuthenticator(readFileSync(creds)) : undefined,
      name: `logline:${layout.log}`,
      timeout: 5000,
      // Keep trying through a restart or a failover; operations time out on their own.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      pingInterval: 5000,
      // Without it every request (two per append) builds two Errors up front for their stack traces,
      // used or not: 16% of the client's CPU under 16 concurrent writers. Failures keep their names
      // and causes; their stacks show the client instead of our caller.
      noAsyncTraces: true,
    });
  } catch (error) {
    const where = servers.join(', ') || '127.0.0.1:4222';
    // Wrong credentials are not an outage: say so, so nobody waits for the server to come back.
    if ((error as Error)?.name === 'AuthorizationError' || /authoriz|authenticat/i.test(String((error as Error)?.message)))
      throw new StoreUnavailableError('nats', `the server at ${where} refused the credentials (user/pass, token or creds)`, error);
    throw new StoreUnavailableError('nats', `no server of ${where} accepted a connection`, error);
  }
  const timeoutMs = options.timeoutMs ?? fromUrl.timeoutMs ?? 5000;
  try {
    // Each request waits at most 2 s; longer waits are retries, bounded by timeoutMs. A cluster
    // electing its meta leader answers "not enabled" or not at all for a moment: waited out here
    // like any request of the open store.
    const jsm = await patientlyUntil(
      'opening the store',
      async () => {
        const jsm = await jetstreamModule.jetstreamManager(nc, { timeout: Math.min(timeoutMs, 2000) });
        await ensureLayout(jsm, layout);
        return jsm;
      },
      { timeoutMs },
    );
    const js = jetstreamModule.jetstream(nc, { timeout: Math.min(timeoutMs, 2000) });
    return createNatsStore({
      nc,
      js,
      jsm,
      layout,
      limits,
      timeoutMs,
      jetstreamModule,
      newHeaders: transport.headers,
      createInbox: transport.createInbox,
      masterKey: options.masterKey,
    });
  } catch (error) {
    await nc.close().catch(() => {});
    throw error;
  }
}

interface StoreParts {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  layout: NatsLayout;
  limits: StoreLimits;
  timeoutMs: number;
  jetstreamModule: JetStreamModule;
  newHeaders: Transport['headers'];
  createInbox: Transport['createInbox'];
  masterKey: Uint8Array | undefined;
}

/** Where a stream ends: its last message's sequence and version (0, 0 when it does not exist). */
interface StreamHead {
  seq: number;
  version: number;
  /** The last message is a deletion marker (retention.ts). */
  deleted?: 'soft' | 'hard';
}

const HEAD_CACHE_SIZE = 10_000;
/**
 * How much of the log a reader may hold ahead of its caller: buffered or requested, in bytes and
 * in messages (each costs some memory beyond its payload). See reader.ts.
 */
const READ_AHEAD_BYTES = 32 * 1024 * 1024;
const READ_AHEAD_MESSAGES = 16 * 1024;
/** Concurrent index reads or writes of one append. */
const INDEX_CONCURRENCY = 256;

const fromStored = (m: StoredMsg): LogMessage => ({ seq: m.seq, headers: m.header, data: m.data, timeMs: m.time.getTime() });

async function inChunks<T, R>(items: T[], work: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += INDEX_CONCURRENCY)
    out.push(...(await Promise.all(items.slice(i, i + INDEX_CONCURRENCY).map(work))));
  return out;
}

/**
 * Retries `operation` while JetStream is unavailable, until `deadline` (default: timeoutMs from
 * now); then StoreUnavailable. A store that closed meanwhile stops it with StoreClosed.
 */
async function patientlyUntil<T>(
  what: string,
  operation: () => Promise<T>,
  {
    timeoutMs,
    deadline = performance.now() + timeoutMs,
    isClosed = () => false,
  }: { timeoutMs: number; deadline?: number; isClosed?: () => boolean },
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      if (!isUnavailableError(error)) throw error;
      if (isClosed()) throw new StoreClosedError('nats');
      if (performance.now() + 50 > deadline)
        throw new StoreUnavailableError('nats', `${what} got no answer from JetStream within ${timeoutMs} ms`, error);
      await sleep(Math.min(500, 25 * 2 ** attempt, Math.max(0, deadline - performance.now())));
    }
  }
}

function createNatsStore(parts: StoreParts): NatsEventStore {
  const { nc, js, jsm, layout, limits, timeoutMs, jetstreamModule, newHeaders, createInbox, masterKey } = parts;
  const maxPayload = nc.info?.max_payload ?? 1024 * 1024;
  // The reported limit is what an append can really carry: one message of at most max_payload.
  const reportedLimits: StoreLimits = { ...limits, maxAppendBytes: Math.min(limits.maxAppendBytes, maxPayload) };
  const heads = new Map<string, StreamHead>();
  /** Appends to one stream from this process run one after another (no self-inflicted conflicts). */
  const streamTails = new Map<string, Promise<unknown>>();
  const inFlight = new Set<Promise<unknown>>();
  /** Every read in progress. */
  const readers = new Set<LogReader>();
  let closed = false;

  const assertOpen = () => {
    if (closed) throw new StoreClosedError('nats');
  };

  const patiently = <T>(what: string, operation: () => Promise<T>, deadline = performance.now() + timeoutMs): Promise<T> =>
    patientlyUntil(what, operation, { timeoutMs, deadline, isClosed: () => closed });

  /** The stream leader's copy of one message (not a possibly lagging replica's), or undefined. */
  const getMessage = (
    stream: string,
    query: { seq: number } | { last_by_subj: string },
    deadline?: number,
  ): Promise<StoredMsg | undefined> =>
    patiently(
      'reading a message',
      async () => {
        try {
          return (await jsm.streams.getMessage(stream, query)) ?? undefined;
        } catch (error) {
          if (isMessageNotFound(error)) return undefined;
          throw error;
        }
      },
      deadline,
    );

  const keyTable = createNatsKeyTable({
    js,
    jsm,
    layout,
    lastOn: (stream, subject) => getMessage(stream, { last_by_subj: subject }),
    patiently: (what, operation) => patiently(what, operation),
  });
  const personal = storePersonalData(keyTable, masterKey, assertOpen);
  const openSealed = personal.open;
  /** A message's events opened; most hold nothing sealed and skip the await (one per message of a scan). */
  const opened = (events: RecordedEvent[]): RecordedEvent[] | Promise<RecordedEvent[]> =>
    sealedSubjects(events).length === 0 ? events : openSealed(events);

  const lastSeq = async (): Promise<number> =>
    patiently('reading the log state', async () => (await jsm.streams.info(layout.log)).state.last_seq);

  // ---- the id index ------------------------------------------------------------------------

  /**
   * Indexes `ids` as stored in message `seq`. Within an append, `deadline` is the append's own (at
   * least 1 s from now): a caller never waits much past timeoutMs. Should it pass, the message
   * stays unindexed until the next append to its stream indexes it (see loadHead).
   */
  const indexIds = async (ids: string[], seq: number, deadline?: number): Promise<void> => {
    const until = deadline === undefined ? undefined : Math.max(deadline, performance.now() + 1000);
    // The last id goes in after all others: "last id indexed" then means "all indexed".
    const publishId = (id: string) => patiently('indexing event ids', () => js.publish(idSubject(layout, id), String(seq)), until);
    await inChunks(ids.slice(0, -1), publishId);
    if (ids.length) await publishId(ids[ids.length - 1] as string);
  };

  const indexedSeq = async (id: string, deadline?: number): Promise<number | undefined> => {
    const entry = await getMessage(layout.ids, { last_by_subj: idSubject(layout, id) }, deadline);
    return entry ? Number(entry.string()) : undefined;
  };

  /** The stored events among `ids`, found through the index. */
  const storedEvents = async (ids: string[], deadline?: number): Promise<RecordedEvent[]> => {
    const seqs = new Set((await inChunks(ids, (id) => indexedSeq(id, deadline))).filter((seq): seq is number => seq !== undefined));
    if (seqs.size === 0) return [];
    const wanted = new Set(ids);
    const messages = await inChunks([...seqs], (seq) => getMessage(layout.log, { seq }, deadline));
    return openSealed(messages.flatMap((m) => (m ? decodeMessage(fromStored(m)).filter((e) => wanted.has(e.id)) : [])));
  };

  /** Loads a stream's head from the server, indexing its last message if its writer could not. */
  const loadHead = async (stream: string, deadline?: number): Promise<StreamHead> => {
    const last = await getMessage(layout.log, { last_by_subj: logSubject(layout, stream) }, deadline);
    if (!last) return { seq: 0, version: 0 };
    const message = fromStored(last);
    const events = decodeMessage(message);
    const lastId = events[events.length - 1]?.id;
    if (lastId !== undefined && (await indexedSeq(lastId, deadline)) !== last.seq) {
      await indexIds(
        events.map((e) => e.id),
        last.seq,
        deadline,
      );
    }
    const { version, deleted } = headOf(message);
    return { seq: last.seq, version, ...(deleted ? { deleted } : {}) };
  };

  const remember = (stream: string, head: StreamHead) => {
    heads.delete(stream);
    heads.set(stream, head);
    if (heads.size > HEAD_CACHE_SIZE) heads.delete(heads.keys().next().value as string);
  };

  // ---- appends -----------------------------------------------------------------------------

  /** The server dropped our publish as a resend of message `seq` (same Nats-Msg-Id): answer as its retry. */
  const answerDuplicate = async (stream: string, expected: ExpectedVersion, events: PreparedEvent[], seq: number, deadline: number) => {
    const original = await getMessage(layout.log, { seq }, Math.max(deadline, performance.now() + 1000));
    const ids = new Set(events.map((e) => e.id));
    const stored = original ? decodeMessage(fromStored(original)).filter((e) => ids.has(e.id)) : [];
    // Resending would be dropped again for the rest of the window: refuse rather than loop.
    if (stored.length === 0)
      throw new IdempotencyConflictError(stream, (events[0] as PreparedEvent).id, `the server holds message ${seq} under this id`);
    return resolveRetry(stream, expected, events, stored);
  };

  const appendOnce = async (
    stream: string,
    expected: ExpectedVersion,
    events: PreparedEvent[],
    payload: Uint8Array,
    callerIds: boolean,
  ): Promise<AppendResult> => {
    const subject = logSubject(layout, stream);
    const deadline = performance.now() + timeoutMs;
    for (let attempt = 0; ; attempt++) {
      const cached = heads.get(stream);
      const head = cached ?? (await loadHead(stream, deadline));
      // Ids the caller chose (or ours, after an attempt whose outcome is unknown) may be stored already.
      if (events.length > 0 && (callerIds || attempt > 0)) {
        const stored = await storedEvents(
          events.map((e) => e.id),
          deadline,
        );
        if (stored.length > 0) return resolveRetry(stream, expected, events, stored);
      }
      // Tombstones are forever, so a cached one is true (a retry of stored ids was answered above).
      if (head.deleted === 'hard') throw new StreamDeletedError(stream);
      if (!versionMatches(expected, head.version)) {
        if (cached) {
          heads.delete(stream);
          continue;
        }
        throw new WrongExpectedVersionError(stream, expected, head.version);
      }
      if (events.length === 0) return { streamVersion: head.version, position: lastPositionOf(head.seq) };
      const version = head.version + events.length;
      const h = newHeaders();
      h.set(HEADER_STREAM, stream);
      h.set(HEADER_VERSION, String(version));
      h.set(HEADER_PREV, String(head.seq));
      let ack: PubAck;
      try {
        ack = await js.publish(subject, payload, {
          msgID: (events[0] as PreparedEvent).id,
          expect: { lastSubjectSequence: head.seq },
          headers: h,
          timeout: Math.max(250, Math.min(2000, deadline - performance.now())),
        });
      } catch (error) {
        if (isWrongLastSequence(error)) {
          // Someone appended to this stream since we looked: look again and re-check.
          heads.delete(stream);
          continue;
        }
        if (!isUnavailableError(error)) throw error;
        if (closed) throw new StoreClosedError('nats');
        // The message may or may not have been stored: the next attempt resends it with the same
        // Nats-Msg-Id (dropped as a duplicate inside the window) after looking its ids up.
        heads.delete(stream);
        if (performance.now() > deadline)
          throw new StoreUnavailableError('nats', `the append to '${stream}' got no answer from JetStream within ${timeoutMs} ms`, error);
        await sleep(Math.min(500, 25 * 2 ** attempt));
        continue;
      }
      if (ack.duplicate) {
        heads.delete(stream);
        return answerDuplicate(stream, expected, events, ack.seq, deadline);
      }
      await indexIds(
        events.map((e) => e.id),
        ack.seq,
        deadline,
      );
      remember(stream, { seq: ack.seq, version });
      return { streamVersion: version, position: lastPositionOf(ack.seq) };
    }
  };

  // ---- reads -------------------------------------------------------------------------------

  /** The log's messages from sequence `start` (of one subject, or of the whole log), in order. */
  const openReader = (start: number, filterSubject?: string): Promise<LogReader> => {
    const inbox = createInbox();
    return patiently('opening a reader', () =>
      openLogReader({
        nc,
        jsm,
        stream: layout.log,
        start,
        filterSubject,
        inbox,
        // The inbox's unique token (a nuid) names the consumer too.
        name: `logline_${inbox.slice(inbox.lastIndexOf('.') + 1)}`,
        readAheadBytes: READ_AHEAD_BYTES,
        readAheadMessages: READ_AHEAD_MESSAGES,
        maxPayload,
        // Pull requests of 5 s (heartbeats every 2.5 s): a consumer lost with its node (a failover
        // the client's own connection did not notice) is detected and replaced in ~5 s.
        expiresMs: 5000,
        policies: { deliverStartSequence: jetstreamModule.DeliverPolicy.StartSequence, ackNone: jetstreamModule.AckPolicy.None },
      }),
    );
  };

  /**
   * The log's messages from `startSeq` on, through ordered consumers: up to `endSeq` (inclusive),
   * or forever with `endSeq` = Infinity until `signal` aborts or the store closes. When a
   * consumer's messages end early (the connection came back after a server restart or failover,
   * and the server-side consumer is gone), a new one continues after the last message delivered.
   */
  async function* scan(startSeq: number, endSeq: number, filterSubject?: string, signal?: AbortSignal): AsyncGenerator<LogMessage> {
    let next = Math.max(1, startSeq);
    while (next <= endSeq && !signal?.aborted) {
      if (closed) {
        if (endSeq === Number.POSITIVE_INFINITY) return;
        throw new StoreClosedError('nats');
      }
      let messages: LogReader;
      try {
        messages = await openReader(next, filterSubject);
      } catch (error) {
        // A live subscriber outwaits an outage (an election, a restart); a finite read reports it.
        if (endSeq !== Number.POSITIVE_INFINITY || !(error instanceof StoreUnavailableError)) throw error;
        await sleep(250);
        continue;
      }
      readers.add(messages);
      const stop = () => messages.stop();
      signal?.addEventListener('abort', stop, { once: true });
      // An abort (or close) while the consumer was being created fired before we listened.
      if (signal?.aborted || closed) stop();
      const before = next;
      try {
        for await (const m of messages) {
          if (signal?.aborted) return;
          next = m.seq + 1;
          yield m;
          if (m.seq >= endSeq) return;
        }
      } finally {
        signal?.removeEventListener('abort', stop);
        readers.delete(messages);
        messages.stop();
      }
      // Ended without reaching the end: resume (after a pause when this round delivered nothing).
      if (next === before) await sleep(100);
    }
  }

  /** A position past the head (a store restored from an older backup) is an error, never a skip. */
  const assertNotBeyond = (position: bigint, head: bigint): void => {
    if (position > head) throw new PositionBeyondHeadError(position, head);
  };

  // ---- retention and deletion (retention.ts) -----------------------------------------------

  const lifecycles = new LifecycleView(js, jsm, layout, jetstreamModule);
  /** The view loaded, waiting out a JetStream outage (an election) up to timeoutMs like any read. */
  const viewReady = () => patiently('loading stream metadata', () => lifecycles.ready());

  /** A stream's current version (0 when it does not exist). */
  const currentVersion = async (stream: string): Promise<number> => {
    const last = await getMessage(layout.log, { last_by_subj: logSubject(layout, stream) });
    return last ? headOf(fromStored(last)).version : 0;
  };

  /**
   * Whether a `$all` reader may see an event of a stream that has a lifecycle record, as retention
   * stands now. maxCount needs the stream's version: looked up, then reused for a second.
   */
  const visibleInLog = () => {
    const versions = new Map<string, { version: number; at: number }>();
    return async (event: RecordedEvent, record: LifecycleRecord): Promise<boolean> => {
      let version = event.streamVersion;
      if (record.maxCount !== undefined) {
        const known = versions.get(event.streamId);
        if (known && known.version >= event.streamVersion && Date.now() - known.at < 1000) version = known.version;
        else {
          version = await currentVersion(event.streamId);
          versions.set(event.streamId, { version, at: Date.now() });
        }
      }
      return isVisible(event, record, version, Date.now());
    };
  };

  /** The stream's record as stored now, and the sequence it is stored at (0: none). */
  const storedRecord = async (stream: string): Promise<{ record: LifecycleRecord; seq: number }> => {
    const message = await getMessage(layout.lifecycles, { last_by_subj: lifecycleSubject(layout, stream) });
    return message ? { record: message.json() as LifecycleRecord, seq: message.seq } : { record: {}, seq: 0 };
  };

  /** Replaces the stream's record with `change(current)`, expecting nobody changed it in between. */
  const changeRecord = async (stream: string, change: (record: LifecycleRecord) => LifecycleRecord): Promise<void> => {
    for (;;) {
      const { record, seq } = await storedRecord(stream);
      const next = change(record);
      try {
        const ack = await patiently('saving stream metadata', () =>
          js.publish(lifecycleSubject(layout, stream), JSON.stringify(next), { expect: { lastSubjectSequence: seq } }),
        );
        lifecycles.set(stream, next, ack.seq);
        return;
      } catch (error) {
        if (!isWrongLastSequence(error)) throw error;
      }
    }
  };

  /** Runs `work` in line with this process's appends to the stream, like another append. */
  const inLine = <T>(stream: string, work: () => Promise<T>): Promise<T> => {
    const previous = streamTails.get(stream) ?? Promise.resolve();
    const result = previous.then(work, work);
    streamTails.set(stream, result);
    inFlight.add(result);
    const settle = () => {
      inFlight.delete(result);
      if (streamTails.get(stream) === result) streamTails.delete(stream);
    };
    result.then(settle, settle);
    return result;
  };

  /** A soft delete or a tombstone: a marker on the stream's subject, then its record. */
  const deleteOnce = async (stream: string, expected: ExpectedVersion, hard: boolean): Promise<{ streamVersion: number }> => {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const cached = heads.get(stream);
      const head = cached ?? (await loadHead(stream, deadline));
      if (head.deleted === 'hard') {
        if (hard) return { streamVersion: head.version };
        throw new StreamDeletedError(stream);
      }
      if (!versionMatches(expected, head.version)) {
        if (cached) {
          heads.delete(stream);
          continue;
        }
        throw new WrongExpectedVersionError(stream, expected, head.version);
      }
      if (!hard && head.version === 0) return { streamVersion: 0 };
      const h = newHeaders();
      h.set(HEADER_STREAM, stream);
      h.set(HEADER_VERSION, String(head.version));
      h.set(HEADER_PREV, String(head.seq));
      h.set(HEADER_DELETED, hard ? 'hard' : 'soft');
      let ack: PubAck;
      try {
        ack = await patiently(
          'deleting a stream',
          () => js.publish(logSubject(layout, stream), '[]', { expect: { lastSubjectSequence: head.seq }, headers: h }),
          deadline,
        );
      } catch (error) {
        if (!isWrongLastSequence(error)) throw error;
        heads.delete(stream);
        continue;
      }
      remember(stream, { seq: ack.seq, version: head.version, deleted: hard ? 'hard' : 'soft' });
      await changeRecord(stream, (record) => (hard ? { ...record, tombstoned: true } : { ...record, deletedVersion: head.version }));
      // A snapshot folds the deleted events: the stream starts afresh without it.
      await patiently('dropping snapshots', () => jsm.streams.purge(layout.snapshots, { filter: snapshotSubjects(layout, stream) }));
      return { streamVersion: head.version };
    }
  };

  /**
   * A restored stream start: a marker message (no events, no Logline-Deleted) whose version is
   * `start`, published expecting the subject to be empty, so it is decided against appends like
   * one; and a record (kept if there was one) so that stats() counts the versions it skips as gone.
   */
  const startOnce = async (stream: string, start: number): Promise<void> => {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const head = await loadHead(stream, deadline);
      if (head.version === start) return; // an import resumed
      if (head.deleted === 'hard') throw new StreamDeletedError(stream);
      if (head.version > 0) throw new WrongExpectedVersionError(stream, 'no_stream', head.version);
      const h = newHeaders();
      h.set(HEADER_STREAM, stream);
      h.set(HEADER_VERSION, String(start));
      h.set(HEADER_PREV, '0');
      let ack: PubAck;
      try {
        ack = await patiently(
          'restoring a stream start',
          () => js.publish(logSubject(layout, stream), '[]', { expect: { lastSubjectSequence: 0 }, headers: h }),
          deadline,
        );
      } catch (error) {
        if (!isWrongLastSequence(error)) throw error;
        heads.delete(stream);
        continue;
      }
      remember(stream, { seq: ack.seq, version: start });
      await changeRecord(stream, (record) => record);
      return;
    }
  };

  async function* readAllFrom(filter: NormalizedReadAll, endSeq: number, signal?: AbortSignal): AsyncGenerator<RecordedEvent> {
    let remaining = filter.limit;
    if (remaining <= 0) return;
    await viewReady();
    const visible = visibleInLog();
    for await (const message of scan(firstSeqAfter(filter.from), endSeq, undefined, signal)) {
      const events = decodeMessage(message);
      const readable = filter.sealed ? events : opened(events);
      for (const event of Array.isArray(readable) ? readable : await readable) {
        if (event.position <= filter.from || !matchesFilter(event, filter)) continue;
        const record = lifecycles.get(event.streamId);
        if (record && !(await visible(event, record))) continue;
        yield event;
        if (--remaining <= 0) return;
      }
    }
  }

  /** Walks a stream back from its last message until the message holding `version`. */
  const messageHolding = async (last: StoredMsg, version: number, maxSteps: number): Promise<StoredMsg | undefined> => {
    let current: StoredMsg | undefined = last;
    for (let step = 0; current && step <= maxSteps; step++) {
      const message = fromStored(current);
      const head = headOf(message);
      const count = decodeMessage(message).length;
      if (head.version - count + 1 <= version) return current;
      if (head.prev === 0) return current;
      current = await getMessage(layout.log, { seq: head.prev });
    }
    return undefined;
  };

  // After a reconnect the server-side consumers of our reads may be gone (a restarted server keeps
  // no ephemeral consumer): end every read's consumer now, and scan() resumes each one on a new
  // consumer after the last message it delivered, instead of waiting for missed heartbeats.
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'reconnect') for (const messages of readers) messages.stop();
    }
  })().catch(() => {});

  /** Publishes a prepared append after this process's earlier appends to the same stream. */
  function submit(stream: string, expected: ExpectedVersion, prepared: PreparedEvent[], callerIds: boolean): Promise<AppendResult> {
    assertOpen();
    const payload = Buffer.from(encodeEvents(prepared));
    // Headers and protocol overhead come on top of the payload; keep a margin for them.
    if (prepared.length > 0 && payload.length + 512 > maxPayload) throw new AppendTooLargeError('bytes', payload.length + 512, maxPayload);
    return inLine(stream, () => appendOnce(stream, expected, prepared, payload, callerIds));
  }

  const store: NatsEventStore = {
    backend: 'nats',

    async projectionBackend() {
      // Loaded on first use, like the store itself: projections on other backends never load NATS code.
      const { createNatsBackend } = await import('./projections.js');
      return createNatsBackend(store);
    },
    limits: reportedLimits,
    layout,
    connection: nc,
    jetstream: js,
    manager: jsm,
    maxPayload,
    timeoutMs,

    append(stream: string, events: NewEvent[], opts: AppendOptions = {}): Promise<AppendResult> {
      try {
        assertOpen();
        assertStreamId(stream);
        const expected = opts.expectedVersion === undefined ? 'any' : opts.expectedVersion;
        assertExpectedVersion(expected);
        const prepared = prepareEvents(events, limits);
        const callerIds = events.some((e) => e.id !== undefined);
        // Sealing may create a subject key first; appends stay in call order (see storePersonalData).
        return personal.append(stream, prepared, () => submit(stream, expected, prepared, callerIds));
      } catch (error) {
        return Promise.reject(error);
      }
    },

    async *read(stream: string, opts?: ReadOptions) {
      assertOpen();
      assertStreamId(stream);
      const { from, backward, limit } = normalizeReadOptions(opts);
      await viewReady();
      const last = await getMessage(layout.log, { last_by_subj: logSubject(layout, stream) });
      if (!last) return;
      // Retention as it stands when the read starts: hidden events (a prefix of the stream) are skipped.
      const record = lifecycles.get(stream);
      const lastHead = headOf(fromStored(last));
      if (lastHead.deleted === 'hard') return;
      const now = Date.now();
      const visible = (event: RecordedEvent) => !record || isVisible(event, record, lastHead.version, now);
      let remaining = limit;
      if (backward) {
        let current = from === undefined ? last : await messageHolding(last, from, Number.POSITIVE_INFINITY);
        while (current && remaining > 0) {
          const message = fromStored(current);
          const events = await openSealed(decodeMessage(message));
          for (let i = events.length - 1; i >= 0 && remaining > 0; i--) {
            const event = events[i] as RecordedEvent;
            if (from !== undefined && event.streamVersion > from) continue;
            if (!visible(event)) return;
            yield event;
            remaining--;
          }
          const { prev } = headOf(message);
          assertOpen();
          current = prev && remaining > 0 ? await getMessage(layout.log, { seq: prev }) : undefined;
        }
        return;
      }
      const start = Math.max(from ?? 1, firstVisibleVersion(record, lastHead.version));
      if (start > lastHead.version) return;
      // Reading from near the end (after a snapshot) walks back a few messages; else scan from the start.
      const near = start > 1 ? await messageHolding(last, start, 8) : undefined;
      for await (const message of scan(near?.seq ?? 1, last.seq, logSubject(layout, stream))) {
        const events = opened(decodeMessage(message));
        for (const event of Array.isArray(events) ? events : await events) {
          if (event.streamVersion < start || !visible(event)) continue;
          yield event;
          if (--remaining <= 0) return;
        }
      }
    },

    async *readAll(opts?: ReadAllOptions) {
      assertOpen();
      const filter = normalizeReadAllOptions(opts);
      const endSeq = await lastSeq();
      assertNotBeyond(filter.from, lastPositionOf(endSeq));
      yield* readAllFrom(filter, endSeq);
    },

    async *subscribe(opts: SubscribeOptions = {}) {
      const { from = 'start', signal } = opts;
      if (!(from === 'start' || from === 'end' || (typeof from === 'bigint' && from >= 0n))) {
        throw new InvalidArgumentError('from', `got ${String(from)}`, "'start', 'end' or a position as a bigint ≥ 0n");
      }
      assertOpen();
      const filter = normalizeReadAllOptions({ types: opts.types, streamPrefix: opts.streamPrefix, category: opts.category });
      const after = from === 'start' ? 0n : from === 'end' ? lastPositionOf(await lastSeq()) : from;
      if (typeof from === 'bigint') assertNotBeyond(after, lastPositionOf(await lastSeq()));
      yield* readAllFrom({ ...filter, from: after }, Number.POSITIVE_INFINITY, signal);
    },

    async streamVersion(stream: string) {
      assertOpen();
      assertStreamId(stream);
      const last = await getMessage(layout.log, { last_by_subj: logSubject(layout, stream) });
      return last ? headOf(fromStored(last)).version : 0;
    },

    async headPosition() {
      assertOpen();
      return lastPositionOf(await lastSeq());
    },

    async setStreamMetadata(stream: string, metadata: StreamMetadata) {
      assertOpen();
      assertStreamId(stream);
      const normalized = normalizeStreamMetadata(metadata);
      await viewReady();
      if ((await loadHead(stream)).deleted === 'hard') throw new StreamDeletedError(stream);
      await changeRecord(stream, (record) => {
        if (record.tombstoned) throw new StreamDeletedError(stream);
        return record.deletedVersion === undefined ? normalized : { ...normalized, deletedVersion: record.deletedVersion };
      });
    },

    async getStreamMetadata(stream: string) {
      assertOpen();
      assertStreamId(stream);
      const [{ record }, head] = await Promise.all([storedRecord(stream), loadHead(stream)]);
      return lifecycleOf(head.deleted === 'hard' ? { ...record, tombstoned: true } : record, head.version);
    },

    deleteStream(stream: string, opts: DeleteStreamOptions = {}) {
      try {
        assertOpen();
        assertStreamId(stream);
        const expected = opts.expectedVersion === undefined ? 'any' : opts.expectedVersion;
        assertExpectedVersion(expected);
        const hard = opts.hard === true;
        return inLine(stream, () => deleteOnce(stream, expected, hard));
      } catch (error) {
        return Promise.reject(error);
      }
    },

    restoreStreamStart(stream: string, start: number) {
      try {
        assertOpen();
        assertStreamId(stream);
        assertStartVersion(start);
        return inLine(stream, () => startOnce(stream, start));
      } catch (error) {
        return Promise.reject(error);
      }
    },

    async listStreamLifecycles(opts: { after?: string; limit?: number } = {}): Promise<StreamLifecycleInfo[]> {
      assertOpen();
      await viewReady();
      const { after = '', limit = 100 } = opts;
      const page = lifecycles
        .entries()
        .filter(([streamId, record]) => streamId > after && hasEffect(record))
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .slice(0, limit);
      const versions = await inChunks(page, ([streamId]) => currentVersion(streamId));
      return page.map(([streamId, record], i) => ({
        streamId,
        version: versions[i] as number,
        ...lifecycleOf(record, versions[i] as number),
      }));
    },

    async scavenge() {
      assertOpen();
      await viewReady();
      let removed = 0;
      for (const [stream, record] of lifecycles.entries()) {
        if (!hasEffect(record)) continue;
        const last = await getMessage(layout.log, { last_by_subj: logSubject(layout, stream) });
        if (!last) continue;
        const { version } = headOf(fromStored(last));
        const now = Date.now();
        // Every message of the stream but its last (which holds its version), from the oldest.
        for await (const message of scan(1, last.seq, logSubject(layout, stream))) {
          if (message.seq >= last.seq) break;
          const events = decodeMessage(message);
          if (events.some((event) => isVisible(event, record, version, now))) break; // hidden events are a prefix
          const deleted = await patiently('scavenging', async () => {
            try {
              return await jsm.streams.deleteMessage(layout.log, message.seq, false);
            } catch (error) {
              if (isMessageNotFound(error)) return false; // another scavenge was first
              throw error;
            }
          });
          if (deleted) removed += events.length;
        }
      }
      return { removed };
    },

    async listStreams(opts: ListStreamsOptions = {}): Promise<StreamInfo[]> {
      assertOpen();
      const { prefix = '', after = '', limit = 100 } = opts;
      const ids = (await streamIds()).filter((id) => id.startsWith(prefix) && id > after).sort();
      const page = ids.slice(0, limit);
      const lasts = await inChunks(page, (id) => getMessage(layout.log, { last_by_subj: logSubject(layout, id) }));
      return lasts.flatMap((last, i) => {
        if (!last) return [];
        const message = fromStored(last);
        return [
          {
            streamId: page[i] as string,
            version: headOf(message).version,
            lastPosition: lastPositionOf(last.seq),
            lastRecordedAt: new Date(message.timeMs).toISOString(),
          },
        ];
      });
    },

    async stats(): Promise<StoreStats> {
      assertOpen();
      const ids = await streamIds();
      // Not store.streamVersion: the log also holds the system stream `$subjects`, which it refuses.
      const versions = await inChunks(ids, async (id) => {
        const last = await getMessage(layout.log, { last_by_subj: logSubject(layout, id) });
        return last ? headOf(fromStored(last)).version : 0;
      });
      // A scavenge removes the oldest messages of streams with metadata: their first message left
      // tells how many events went (events below it), as the SQL stores no longer count them.
      await viewReady();
      const scavenged = await inChunks(lifecycles.entries(), async ([stream]) => {
        // Scanned up to the stream's last message, which a scavenge always keeps, so the scan ends.
        const last = await getMessage(layout.log, { last_by_subj: logSubject(layout, stream) });
        if (!last) return 0;
        for await (const first of scan(1, last.seq, logSubject(layout, stream))) {
          return headOf(first).version - decodeMessage(first).length;
        }
        return 0;
      });
      const events = versions.reduce((a, b) => a + b, 0) - scavenged.reduce((a, b) => a + b, 0);
      return { events, streams: ids.length, headPosition: lastPositionOf(await lastSeq()) };
    },

    async saveSnapshot(snapshot: Snapshot) {
      assertOpen();
      assertStreamId(snapshot.streamId);
      const payload = Buffer.from(JSON.stringify(snapshot));
      if (payload.length + 512 > maxPayload) throw new AppendTooLargeError('bytes', payload.length + 512, maxPayload);
      await patiently('saving a snapshot', () => js.publish(snapshotSubject(layout, snapshot.streamId, snapshot.name), payload));
    },

    async loadSnapshot(stream: string, name: string) {
      assertOpen();
      const found = await getMessage(layout.snapshots, { last_by_subj: snapshotSubject(layout, stream, name) });
      return found ? (found.json() as Snapshot) : undefined;
    },

    ...personal.methods((event) => submit(SUBJECTS_STREAM, 'any', prepareEvents([event], limits), true)),

    async close() {
      if (closed) return;
      // Appends waiting for a subject key were accepted: they are submitted first.
      await personal.settled();
      if (closed) return;
      closed = true;
      // Appends already accepted are answered first.
      await Promise.allSettled([...inFlight]);
      for (const messages of readers) messages.stop();
      lifecycles.stop();
      await nc.close().catch(() => {});
    },
  };

  /** Every stream id in the log (from the stream's per-subject counts). */
  async function streamIds(): Promise<string[]> {
    const info = await patiently('listing streams', () => jsm.streams.info(layout.log, { subjects_filter: `${layout.prefix}.>` }));
    const start = layout.prefix.length + 1;
    return Object.keys(info.state.subjects ?? {}).map((subject) => decodeToken(subject.slice(start)));
  }

  return store;
}
