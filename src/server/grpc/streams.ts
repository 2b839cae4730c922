/**
 * `event_store.client.streams.Streams`: Append, Read (stream and `$all`, counted reads and
 * subscriptions) over a Logline EventStore.
 */
import { randomUUID } from 'node:crypto';
import type {
  ServerDuplexStream,
  ServerReadableStream,
  ServerUnaryCall,
  ServerWritableStream,
  ServiceError,
  sendUnaryData,
  UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  AppendTooLargeError,
  InvalidArgumentError,
  PositionBeyondHeadError,
  StreamDeletedError,
  WrongExpectedVersionError,
} from '../../core/errors.js';
import type { EventStore, ExpectedVersion, NewEvent, RecordedEvent } from '../../core/types.js';
import { assertStreamId } from '../../core/validation.js';
import { type ApiKey, requireRight } from '../auth.js';
import { toServiceError } from './errors.js';
import { newEventFromProposed, readEventMessage, streamIdentifier, streamNameOf } from './mapping.js';
import type { Protocol, StreamsPb } from './protocol.js';
import { kurrentFromSettings, metadataTarget, settingsFromKurrent } from './stream-metadata.js';

export interface StreamsContext {
  protocol: Protocol;
  store: EventStore;
  logger: Logger;
  /** The caller's key (undefined = auth off); throws Unauthorized. */
  authenticate(call: { metadata: import('@grpc/grpc-js').Metadata }): ApiKey | undefined;
  /** Appends in progress: shutdown waits for these. */
  inFlight: Set<Promise<unknown>>;
  /** Open reads and subscriptions, each with a function that ends it (for shutdown). */
  openReads: Set<(reason: string) => void>;
}

type ReadOptions = StreamsPb.ReadReq.Options;
type ReadCall = ServerWritableStream<StreamsPb.ReadReq, StreamsPb.ReadResp>;

/** Events a catch-up page reads before looking again. */
const PAGE = 500;
/** Positions a backward `$all` read scans per step (positions may have gaps). */
const BACKWARD_WINDOW = 2048n;
/** Kurrent's default filter search window: a filtered `$all` subscription checkpoints every window × multiplier events. */
const DEFAULT_FILTER_WINDOW = 32;

const toCount = (value: string): number => {
  const n = BigInt(value);
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
};

/** The options of Append, Delete and Tombstone: the same expected-revision cases. */
type RevisionOptions = StreamsPb.AppendReq.Options | StreamsPb.DeleteReq.Options | StreamsPb.TombstoneReq.Options;

function expectedVersionOf(options: RevisionOptions): ExpectedVersion {
  const { ExpectedStreamRevisionCase } = options.constructor as typeof StreamsPb.AppendReq.Options;
  switch (options.getExpectedStreamRevisionCase()) {
    case ExpectedStreamRevisionCase.REVISION:
      // Kurrent revision r is the revision of the last event: Logline version r + 1.
      return toCount(options.getRevision()) + 1;
    case ExpectedStreamRevisionCase.NO_STREAM:
      return 'no_stream';
    case ExpectedStreamRevisionCase.STREAM_EXISTS:
      return 'exists';
    default:
      return 'any';
  }
}

function wrongExpectedVersion(protocol: Protocol, error: WrongExpectedVersionError): StreamsPb.AppendResp {
  const { Empty } = protocol.shared;
  const wrong = new protocol.streams.AppendResp.WrongExpectedVersion();
  if (error.actual === 0) wrong.setCurrentNoStream(new Empty());
  else wrong.setCurrentRevision(String(error.actual - 1));
  const expected = error.expected;
  if (expected === 'any') wrong.setExpectedAny(new Empty());
  else if (expected === 'no_stream') wrong.setExpectedNoStream(new Empty());
  else if (expected === 'exists') wrong.setExpectedStreamExists(new Empty());
  else wrong.setExpectedRevision(String(expected - 1));
  return new protocol.streams.AppendResp().setWrongExpectedVersion(wrong);
}

/** Writes one message, waiting while the client's window is full. */
async function send(call: ReadCall, message: StreamsPb.ReadResp, signal: AbortSignal): Promise<void> {
  if (signal.aborted || call.write(message)) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      call.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    call.on('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Ends a streaming call with an error status. grpc-js sends the status of an 'error' event;
 * destroy() would close the stream without one and leave the client waiting.
 */
function failCall(call: NodeJS.EventEmitter, status: Partial<ServiceError>): void {
  call.emit('error', Object.assign(new Error(status.details), status));
}

/**
 * Whether a client-streaming call that just ended is still live, i.e. its half-close was not the
 * first half of the client giving up.
 *
 * A Node client that gives up (grpc-js at its deadline, or cancel()) closes the HTTP/2 stream with
 * END_STREAM and then RST_STREAM(CANCEL): Node flushes pending data before a reset. When both reach
 * the server in one network read, grpc-js hands the handler 'end' first and 'cancelled' a few ticks
 * later. Seen with the official client and a 1 ms deadline: options + 1 event, END_STREAM and the
 * reset arrived together and the one event was stored. setImmediate runs after every tick of that
 * read, so the cancellation (or the server's own deadline status) has landed by then.
 */
async function clientFinishedSending(call: { cancelled: boolean }): Promise<boolean> {
  await new Promise<void>((resolve) => setImmediate(resolve));
  return !call.cancelled;
}

/**
 * Time an append must have left before its deadline to be stored. A Node client that gives up at
 * its deadline closes the HTTP/2 stream with END_STREAM before its RST_STREAM (Node flushes pending
 * data first, and the reset can follow much later), so a half-close arriving at the deadline may
 * be a truncated batch. The server's deadline comes from the grpc-timeout header, rounded up to
 * the millisecond and measured from a later moment than the client's, so such a half-close can
 * arrive a millisecond or two before it: this margin covers that, and an answer with less time
 * left could hardly reach the client in time anyway.
 */
const DEADLINE_MARGIN_MS = 10;

function tooCloseToDeadline(deadline: Date | number): boolean {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Date.now() >= at - DEADLINE_MARGIN_MS;
}

interface Filter {
  /** Whether the caller wants this event. */
  accepts(event: RecordedEvent): boolean;
  /** A stream-id prefix the store can filter on (cheaper than scanning). */
  storePrefix?: string;
  /** For filtered `$all` subscriptions: send a checkpoint every this many scanned events. */
  checkpointEvery?: number;
  /** The stream prefixes the filter confines reading to (for rights), or undefined for all streams. */
  prefixes?: string[];
}

function expressionTest(expression: StreamsPb.ReadReq.Options.FilterOptions.Expression): (value: string) => boolean {
  const prefixes = expression.getPrefixList();
  const source = expression.getRegex();
  if (prefixes.length > 0) return (value) => prefixes.some((prefix) => value.startsWith(prefix));
  if (source) {
    let regex: RegExp;
    try {
      regex = new RegExp(source);
    } catch (error) {
      throw new InvalidArgumentError('filter regex', `it does not compile (${(error as Error).message})`, 'a regular expression');
    }
    return (value) => regex.test(value);
  }
  return () => true;
}

function allFilter(options: ReadOptions): Filter {
  const filter = options.getFilter();
  if (!options.hasFilter() || !filter) return { accepts: () => true };
  const window = filter.hasMax() ? filter.getMax() : DEFAULT_FILTER_WINDOW;
  const checkpointEvery = Math.max(1, window * Math.max(1, filter.getCheckpointintervalmultiplier()));
  const byStream = filter.getStreamIdentifier();
  if (filter.hasStreamIdentifier() && byStream) {
    const test = expressionTest(byStream);
    const prefixes = byStream.getPrefixList();
    return {
      accepts: (event) => test(event.streamId),
      checkpointEvery,
      prefixes: prefixes.length > 0 ? prefixes : undefined,
    };
  }
  const byType = filter.getEventType();
  const test = byType ? expressionTest(byType) : () => true;
  return { accepts: (event) => test(event.type), checkpointEvery };
}

function requireAllRights(key: ApiKey | undefined, filter: Filter): void {
  if (filter.prefixes) for (const prefix of filter.prefixes) requireRight(key, 'read', prefix, `streams '${prefix}…'`);
  else requireRight(key, 'read', '', '$all');
}

/** Events of `$all` with position ≤ `upTo`, newest first, a bounded window of positions at a time. */
async function* readAllBackward(store: EventStore, upTo: bigint): AsyncGenerator<RecordedEvent> {
  let end = upTo;
  while (end > 0n) {
    const from = end > BACKWARD_WINDOW ? end - BACKWARD_WINDOW : 0n;
    const window: RecordedEvent[] = [];
    for await (const event of store.readAll({ from })) {
      if (event.position > end) break;
      window.push(event);
    }
    for (let i = window.length - 1; i >= 0; i--) yield window[i] as RecordedEvent;
    end = from;
  }
}

/** A forward `$all` read that treats a start beyond the head as an empty read, as KurrentDB does. */
async function* readAllForward(store: EventStore, after: bigint): AsyncGenerator<RecordedEvent> {
  try {
    yield* store.readAll({ from: after });
  } catch (error) {
    if (!(error instanceof PositionBeyondHeadError)) throw error;
  }
}

export function streamsService(context: StreamsContext): UntypedServiceImplementation {
  const { protocol, store, logger } = context;
  const { ReadResp } = protocol.streams;
  const { ReadDirection } = protocol.streams.ReadReq.Options;

  const message = {
    event: (event: RecordedEvent, structured: boolean) => new ReadResp().setEvent(readEventMessage(protocol, event, structured)),
    checkpoint: (position: bigint) =>
      new ReadResp().setCheckpoint(
        new ReadResp.Checkpoint().setCommitPosition(position.toString()).setPreparePosition(position.toString()),
      ),
  };

  async function append(
    call: ServerReadableStream<StreamsPb.AppendReq, StreamsPb.AppendResp>,
    callback: sendUnaryData<StreamsPb.AppendResp>,
  ) {
    let options: StreamsPb.AppendReq.Options | undefined;
    const events: NewEvent[] = [];
    let failure: unknown;
    let bytes = 0;
    call.on('data', (request: StreamsPb.AppendReq) => {
      if (failure) return;
      try {
        if (request.hasOptions()) {
          options = request.getOptions();
          // Refused before any event is buffered: no key, or no write right on this stream.
          const named = streamNameOf(options?.getStreamIdentifier());
          // `$$<stream>` holds a stream's metadata: the right to change it is the write right on the stream.
          const stream = metadataTarget(named) ?? named;
          assertStreamId(stream);
          requireRight(context.authenticate(call), 'write', stream, `stream '${stream}'`);
          return;
        }
        const proposed = request.getProposedMessage();
        if (!proposed) return;
        if (!options) throw new InvalidArgumentError('append', 'no options message came first', 'the stream and expected revision first');
        // Bounded memory: an append over the store's limits is refused without buffering the rest.
        const { maxAppendEvents, maxAppendBytes } = store.limits;
        if (events.length >= maxAppendEvents) throw new AppendTooLargeError('events', events.length + 1, maxAppendEvents);
        bytes += proposed.getData_asU8().length + proposed.getCustomMetadata_asU8().length;
        if (bytes > maxAppendBytes) throw new AppendTooLargeError('bytes', bytes, maxAppendBytes);
        events.push(newEventFromProposed(proposed, events.length));
      } catch (error) {
        // Answered at once: the client stops sending, and nothing more is buffered.
        failure = error;
        logger.debug({ err: error }, 'gRPC append refused');
        callback(toServiceError(protocol, error));
      }
    });
    let errored = false;
    call.on('error', () => {
      errored = true;
    });
    call.on('end', async () => {
      if (failure) return;
      // 'end' alone does not prove the client finished: see clientFinishedSending.
      if (errored || !(await clientFinishedSending(call))) return;
      // A client whose deadline passed (or all but passed) before its last event arrived has given up: store nothing.
      if (tooCloseToDeadline(call.getDeadline())) {
        callback({ code: protocol.grpc.status.DEADLINE_EXCEEDED, details: 'The deadline passed before the append was complete' });
        return;
      }
      const work = (async () => {
        if (!options) throw new InvalidArgumentError('append', 'no options message came first', 'the stream and expected revision first');
        const stream = streamNameOf(options.getStreamIdentifier());
        const target = metadataTarget(stream);
        if (target !== undefined) return { stream, result: await setMetadata(target, events) };
        return { stream, result: await store.append(stream, events, { expectedVersion: expectedVersionOf(options) }) };
      })();
      context.inFlight.add(work);
      work
        .then(
          ({ result }) => {
            const success = new protocol.streams.AppendResp.Success();
            if (result.streamVersion === 0) success.setNoStream(new protocol.shared.Empty());
            else success.setCurrentRevision(String(result.streamVersion - 1));
            const position = result.position.toString();
            success.setPosition(new protocol.streams.AppendResp.Position().setCommitPosition(position).setPreparePosition(position));
            callback(null, new protocol.streams.AppendResp().setSuccess(success));
          },
          (error) => {
            if (error instanceof WrongExpectedVersionError) return callback(null, wrongExpectedVersion(protocol, error));
            logger.debug({ err: error }, 'gRPC append failed');
            callback(toServiceError(protocol, error));
          },
        )
        .finally(() => context.inFlight.delete(work));
    });
  }

  /**
   * An append to `$$<stream>`: its last `$metadata` event becomes the stream's settings. There is
   * no metadata stream to version, so the expected revision is not checked and the answer is
   * revision 0 at the head position (docs/kurrentdb.md).
   */
  async function setMetadata(target: string, events: NewEvent[]): Promise<{ streamVersion: number; position: bigint }> {
    const last = events.at(-1);
    if (!last) throw new InvalidArgumentError('stream metadata', 'no event', 'one $metadata event with the settings');
    await store.setStreamMetadata(target, settingsFromKurrent(last.data));
    return { streamVersion: 1, position: await store.headPosition() };
  }

  /** A read of `$$<stream>`: one `$metadata` event with the stream's settings, or not found. */
  async function readMetadata(call: ReadCall, target: string, structured: boolean, signal: AbortSignal) {
    const data = kurrentFromSettings(await store.getStreamMetadata(target));
    const stream = `$$${target}`;
    if (!data) {
      const notFound = new ReadResp.StreamNotFound().setStreamIdentifier(streamIdentifier(protocol, stream));
      return send(call, new ReadResp().setStreamNotFound(notFound), signal);
    }
    const head = await store.headPosition();
    const event: RecordedEvent = {
      id: randomUUID(),
      type: '$metadata',
      data,
      metadata: {},
      occurredAt: new Date().toISOString(),
      recordedAt: new Date().toISOString(),
      streamId: stream,
      streamVersion: 1,
      position: head,
    };
    await send(call, message.event(event, structured), signal);
  }

  async function readStream(call: ReadCall, options: ReadOptions, signal: AbortSignal, key: ApiKey | undefined) {
    const streamOptions = options.getStream();
    const named = streamNameOf(streamOptions?.getStreamIdentifier());
    const target = metadataTarget(named);
    if (target !== undefined) {
      assertStreamId(target);
      requireRight(key, 'read', target, `stream '${target}'`);
      return readMetadata(call, target, options.getUuidOption()?.hasStructured() ?? false, signal);
    }
    const stream = named;
    assertStreamId(stream);
    requireRight(key, 'read', stream, `stream '${stream}'`);
    const structured = options.getUuidOption()?.hasStructured() ?? false;
    const version = await store.streamVersion(stream);
    const notFound = () =>
      send(
        call,
        new ReadResp().setStreamNotFound(new ReadResp.StreamNotFound().setStreamIdentifier(streamIdentifier(protocol, stream))),
        signal,
      );
    if (version === 0) return notFound();
    // A soft-deleted stream reads as not found, a tombstoned one fails with StreamDeleted (errors.ts).
    // A deleted stream has no visible event, so only a read that found none asks.
    const answerDeleted = async (): Promise<void> => {
      const { deleted } = await store.getStreamMetadata(stream);
      if (deleted === 'hard') throw new StreamDeletedError(stream);
      if (deleted === 'soft') await notFound();
    };
    const backward = options.getReadDirection() === ReadDirection.BACKWARDS;
    const limit = toCount(options.getCount());
    if (limit === 0) return;
    let from: number | undefined;
    if (streamOptions?.hasRevision()) from = toCount(streamOptions.getRevision()) + 1;
    else if (streamOptions?.hasStart()) from = 1;
    else if (backward) from = undefined;
    else return; // forwards from the end: nothing yet
    if (backward && from !== undefined && from > version) from = version;
    let sent = 0;
    for await (const event of store.read(stream, { from, direction: backward ? 'backward' : 'forward', limit })) {
      if (signal.aborted) return;
      await send(call, message.event(event, structured), signal);
      sent++;
    }
    if (sent === 0) await answerDeleted();
  }

  async function readAll(call: ReadCall, options: ReadOptions, signal: AbortSignal, key: ApiKey | undefined) {
    const filter = allFilter(options);
    requireAllRights(key, filter);
    const structured = options.getUuidOption()?.hasStructured() ?? false;
    const allOptions = options.getAll();
    const backward = options.getReadDirection() === ReadDirection.BACKWARDS;
    let left = toCount(options.getCount());
    const position = allOptions?.hasPosition() ? BigInt(allOptions.getPosition()?.getCommitPosition() ?? '0') : undefined;
    let events: AsyncIterable<RecordedEvent>;
    if (backward) events = readAllBackward(store, position ?? (await store.headPosition()));
    else if (allOptions?.hasEnd()) return;
    // Reads include the event at their start position; Logline's readAll starts after it.
    else events = readAllForward(store, position !== undefined && position > 0n ? position - 1n : 0n);
    for await (const event of events) {
      if (left <= 0 || signal.aborted) return;
      if (!filter.accepts(event)) continue;
      await send(call, message.event(event, structured), signal);
      left--;
    }
  }

  /** Where a subscription starts (exclusive position) and which events it delivers. */
  async function subscriptionPlan(options: ReadOptions, key: ApiKey | undefined): Promise<{ after: bigint; filter: Filter }> {
    if (options.hasAll()) {
      const filter = allFilter(options);
      requireAllRights(key, filter);
      const all = options.getAll();
      if (all?.hasEnd()) return { after: await store.headPosition(), filter };
      if (all?.hasPosition()) return { after: BigInt(all.getPosition()?.getCommitPosition() ?? '0'), filter };
      return { after: 0n, filter };
    }
    const streamOptions = options.getStream();
    const stream = streamNameOf(streamOptions?.getStreamIdentifier());
    assertStreamId(stream);
    requireRight(key, 'read', stream, `stream '${stream}'`);
    let afterRevision = -1;
    let after = 0n;
    if (streamOptions?.hasEnd()) {
      after = await store.headPosition();
    } else if (streamOptions?.hasRevision()) {
      // Starts after revision r: at the position of the event with revision r when it exists.
      afterRevision = toCount(streamOptions.getRevision());
      const version = await store.streamVersion(stream);
      const from = Math.min(afterRevision + 1, version);
      if (from > 0) for await (const event of store.read(stream, { from, limit: 1 })) after = event.position;
    }
    return {
      after,
      filter: { accepts: (event) => event.streamId === stream && event.streamVersion - 1 > afterRevision, storePrefix: stream },
    };
  }

  async function subscribe(call: ReadCall, options: ReadOptions, signal: AbortSignal, key: ApiKey | undefined) {
    const { after, filter } = await subscriptionPlan(options, key);
    const structured = options.getUuidOption()?.hasStructured() ?? false;
    await send(call, new ReadResp().setConfirmation(new ReadResp.SubscriptionConfirmation().setSubscriptionId(randomUUID())), signal);
    let cursor = after;
    let scanned = 0;
    const deliver = async (event: RecordedEvent) => {
      cursor = event.position;
      if (filter.accepts(event)) await send(call, message.event(event, structured), signal);
      if (filter.checkpointEvery && ++scanned >= filter.checkpointEvery) {
        scanned = 0;
        await send(call, message.checkpoint(cursor), signal);
      }
    };
    // Catch-up: page through the log until a page comes back short, i.e. the head is reached.
    for (;;) {
      let count = 0;
      for await (const event of store.readAll({ from: cursor, limit: PAGE, streamPrefix: filter.storePrefix })) {
        if (signal.aborted) return;
        count++;
        await deliver(event);
      }
      if (count < PAGE) break;
    }
    await send(call, new ReadResp().setCaughtUp(new ReadResp.CaughtUp()), signal);
    if (filter.checkpointEvery) await send(call, message.checkpoint(cursor), signal);
    // Live: the store's subscription resumes exactly after the last event the catch-up saw.
    for await (const event of store.subscribe({ from: cursor, streamPrefix: filter.storePrefix, signal })) {
      if (signal.aborted) return;
      await deliver(event);
    }
  }

  function read(call: ReadCall) {
    const abort = new AbortController();
    call.on('cancelled', () => abort.abort());
    call.on('close', () => abort.abort());
    // On shutdown the client sees UNAVAILABLE, which tells it to reconnect and resubscribe.
    const endForShutdown = (reason: string) => {
      abort.abort();
      failCall(call, { code: protocol.grpc.status.UNAVAILABLE, details: reason });
    };
    context.openReads.add(endForShutdown);
    const run = async () => {
      const key = context.authenticate(call);
      const options = call.request.getOptions();
      if (!options) throw new InvalidArgumentError('read', 'the request has no options', 'ReadReq.options');
      if (options.hasSubscription()) await subscribe(call, options, abort.signal, key);
      else if (options.hasAll()) await readAll(call, options, abort.signal, key);
      else await readStream(call, options, abort.signal, key);
    };
    run()
      .then(
        () => {
          if (!abort.signal.aborted) call.end();
        },
        (error) => {
          if (abort.signal.aborted) return;
          logger.debug({ err: error }, 'gRPC read failed');
          failCall(call, toServiceError(protocol, error));
        },
      )
      .finally(() => context.openReads.delete(endForShutdown));
  }

  const unimplemented = (
    _call: ServerUnaryCall<unknown, unknown> | ServerDuplexStream<unknown, unknown>,
    callback?: sendUnaryData<unknown>,
  ) => {
    const error = { code: protocol.grpc.status.UNIMPLEMENTED, details: 'Not supported by Logline yet (see docs/kurrentdb.md)' };
    if (callback) callback(error);
    else failCall(_call as ServerDuplexStream<unknown, unknown>, error);
  };

  /**
   * Delete (soft) and Tombstone (hard) onto store.deleteStream. No event records a delete in
   * Logline, so the answer carries no position.
   */
  const deleteWith =
    (hard: boolean) =>
    (
      call: ServerUnaryCall<StreamsPb.DeleteReq | StreamsPb.TombstoneReq, unknown>,
      callback: sendUnaryData<StreamsPb.DeleteResp | StreamsPb.TombstoneResp>,
    ) => {
      const work = (async () => {
        const key = context.authenticate(call);
        const options = call.request.getOptions();
        if (!options) throw new InvalidArgumentError(hard ? 'tombstone' : 'delete', 'no options', 'the stream and expected revision');
        const stream = streamNameOf(options.getStreamIdentifier());
        assertStreamId(stream);
        requireRight(key, 'write', stream, `stream '${stream}'`);
        await store.deleteStream(stream, { expectedVersion: expectedVersionOf(options), hard });
        const Resp = hard ? protocol.streams.TombstoneResp : protocol.streams.DeleteResp;
        return new Resp().setNoPosition(new protocol.shared.Empty());
      })();
      context.inFlight.add(work);
      work
        .then(
          (resp) => callback(null, resp),
          (error) => {
            logger.debug({ err: error }, 'gRPC delete failed');
            callback(toServiceError(protocol, error));
          },
        )
        .finally(() => context.inFlight.delete(work));
    };

  return { read, append, delete: deleteWith(false), tombstone: deleteWith(true), batchAppend: unimplemented };
}
