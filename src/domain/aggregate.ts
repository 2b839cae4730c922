/**
 * Loading an aggregate's state: latest snapshot (when the decider opts in) plus the events after
 * it, each upgraded by the decider's upcasters, folded with evolve. Also the temporal reads of
 * docs/domain.md, Time: as of a stream version, as of a recorded time ("what did we know then") and as of a
 * valid time ("what was true then", folding in occurredAt order).
 */
import { InvalidArgumentError } from '../core/errors.js';
import type { EventStore, JsonValue, RecordedEvent, Snapshot } from '../core/types.js';
import type { Event, Fold, Recorded } from './types.js';
import { type Upcasters, upcastAll } from './upcasting.js';

/** A point in time: an ISO-8601 string or a Date. */
export type Instant = string | Date;

export interface AsOf {
  /** Only events up to this stream version. */
  version?: number;
  /** Only events the store had recorded by then: "what did we know at T" (transaction time). */
  recordedAt?: Instant;
  /**
   * Only events that had happened by then, folded in occurredAt order: "what was true at T"
   * (valid time). Retroactive events recorded later land where they belong; correction events
   * (metadata.correctionOf) are skipped, since the valid-time fold recomputes what they correct.
   */
  occurredAt?: Instant;
}

export interface LoadOptions {
  asOf?: AsOf;
  /** Use the latest snapshot when the decider has a snapshot policy. Default true. */
  useSnapshot?: boolean;
}

export interface LoadedState<State> {
  state: State;
  /**
   * Highest stream version folded (or the snapshot's); for a stream with no visible event, its
   * version (0 when it has none; n when it was soft-deleted at n or retention hides all of it).
   */
  streamVersion: number;
  /** Position of the newest event read, 0n when only a snapshot (or nothing) was read. */
  lastPosition: bigint;
  /** Events folded by this load (after the snapshot, if one was used). */
  eventsFolded: number;
  /** Stream version of the snapshot the load started from; 0 when it started from initialState. */
  snapshotVersion: number;
}

/** Reads a stream with the decider's upcasters applied: events arrive in their newest shape. */
export function readStream<E extends Event = Event>(
  store: EventStore,
  streamId: string,
  fold: { upcasters?: Upcasters | undefined },
  options: { from?: number; limit?: number } = {},
): AsyncIterable<Recorded<E>> {
  const events = store.read(streamId, options);
  // Without upcasters hand the store's iterator over as is: one async layer less per event.
  return (fold.upcasters ? upcastAll(events, fold.upcasters) : events) as AsyncIterable<Recorded<E>>;
}

const toMillis = (what: string, instant: Instant): number => {
  const ms = instant instanceof Date ? instant.getTime() : Date.parse(instant);
  if (!Number.isFinite(ms)) throw new InvalidArgumentError(what, `got ${JSON.stringify(instant)}`, 'an ISO-8601 date-time or a Date');
  return ms;
};

/** Whether an event only exists to reconcile the recorded-order fold with valid time (see temporal.ts). */
export const isCorrection = (event: { metadata: { [key: string]: JsonValue } }): boolean => event.metadata.correctionOf !== undefined;

/**
 * Events in valid-time order: by occurredAt, ties by stream version (a stable sort). This is the
 * order "what was true" folds in; it needs the whole (filtered) stream in memory.
 */
export function inValidTimeOrder<T extends RecordedEvent>(events: readonly T[]): T[] {
  return events
    .map((event) => ({ event, at: Date.parse(event.occurredAt) }))
    .sort((a, b) => a.at - b.at || a.event.streamVersion - b.event.streamVersion)
    .map(({ event }) => event);
}

/** Folds events in valid-time order, skipping correction events. */
export function foldInValidTime<State, E extends Event>(
  events: readonly Recorded<E>[],
  fold: Pick<Fold<State, E>, 'initialState' | 'evolve' | 'decide'>,
  until?: Instant,
): State {
  const limit = until === undefined ? Number.POSITIVE_INFINITY : toMillis('asOf.occurredAt', until);
  let state = fold.initialState();
  for (const event of inValidTimeOrder(events)) {
    if (Date.parse(event.occurredAt) > limit) break;
    if (!isCorrection(event)) state = fold.evolve(state, event);
  }
  return state;
}

/** The snapshot key of a decider; also checks its policy, so a typo fails on first use rather than silently. */
export function snapshotName(fold: { name?: string; snapshots?: { name?: string; every?: number; version?: number } }): string {
  const policy = fold.snapshots;
  const positive = (n: unknown) => n === undefined || (typeof n === 'number' && Number.isSafeInteger(n) && n >= 1);
  if (!positive(policy?.every))
    throw new InvalidArgumentError('snapshots.every', `got ${JSON.stringify(policy?.every)}`, 'a number of events ≥ 1');
  if (!positive(policy?.version))
    throw new InvalidArgumentError('snapshots.version', `got ${JSON.stringify(policy?.version)}`, 'an integer ≥ 1');
  const name = policy?.name ?? fold.name;
  if (!name)
    throw new InvalidArgumentError(
      'decider.name',
      'a decider with snapshots has no name',
      'a name (or snapshots.name) to key its snapshots',
    );
  return name;
}

/** The latest usable snapshot: same snapshot version as the policy, else none (it gets rebuilt). */
async function usableSnapshot<State, E extends Event>(
  store: EventStore,
  streamId: string,
  fold: Fold<State, E>,
  maxVersion: number,
): Promise<{ state: State; streamVersion: number } | undefined> {
  const policy = fold.snapshots;
  if (!policy) return undefined;
  const snapshot = await store.loadSnapshot(streamId, snapshotName(fold));
  if (!snapshot || snapshot.snapshotVersion !== (policy.version ?? 1) || snapshot.streamVersion > maxVersion) return undefined;
  const state = policy.fromJSON ? policy.fromJSON(snapshot.state) : (snapshot.state as State);
  return { state, streamVersion: snapshot.streamVersion };
}

/** Stores a snapshot of `state` at `streamVersion` under the decider's policy. */
export async function saveSnapshot<State, E extends Event>(
  store: EventStore,
  streamId: string,
  fold: Fold<State, E>,
  state: State,
  streamVersion: number,
): Promise<Snapshot> {
  const policy = fold.snapshots;
  if (!policy)
    throw new InvalidArgumentError('decider.snapshots', 'the decider has no snapshot policy', 'snapshots: { every: n } or { when }');
  const snapshot: Snapshot = {
    streamId,
    name: snapshotName(fold),
    streamVersion,
    snapshotVersion: policy.version ?? 1,
    state: policy.toJSON ? policy.toJSON(state) : (state as JsonValue),
    takenAt: new Date().toISOString(),
  };
  await store.saveSnapshot(snapshot);
  return snapshot;
}

/** Loads the current state and snapshots it now, whatever the policy's thresholds say. */
export async function takeSnapshot<State, E extends Event>(store: EventStore, streamId: string, fold: Fold<State, E>): Promise<Snapshot> {
  const loaded = await loadAggregate(store, streamId, fold);
  return saveSnapshot(store, streamId, fold, loaded.state, loaded.streamVersion);
}

/**
 * The state of one aggregate: now, or as of a version, a recorded time, a valid time (or a
 * combination: `{ occurredAt: T1, recordedAt: T2 }` is "what we believed at T2 was true at T1").
 */
export async function loadAggregate<State, E extends Event>(
  store: EventStore,
  streamId: string,
  fold: Fold<State, E>,
  options: LoadOptions = {},
): Promise<LoadedState<State>> {
  const asOf = options.asOf ?? {};
  if (asOf.version !== undefined && !(Number.isSafeInteger(asOf.version) && asOf.version >= 0)) {
    throw new InvalidArgumentError('asOf.version', `got ${JSON.stringify(asOf.version)}`, 'a stream version (integer ≥ 0)');
  }
  const maxVersion = asOf.version ?? Number.MAX_SAFE_INTEGER;
  const knownBy = asOf.recordedAt === undefined ? undefined : toMillis('asOf.recordedAt', asOf.recordedAt);
  const trueBy = asOf.occurredAt === undefined ? undefined : toMillis('asOf.occurredAt', asOf.occurredAt);

  // A snapshot summarises every event up to its version in stream order, so it can only serve
  // loads that fold all of those in that order: no time filter.
  const snapshot =
    options.useSnapshot !== false && knownBy === undefined && trueBy === undefined
      ? await usableSnapshot(store, streamId, fold, maxVersion)
      : undefined;
  const from = (snapshot?.streamVersion ?? 0) + 1;
  const limit = asOf.version === undefined ? undefined : asOf.version - from + 1;
  const result: LoadedState<State> = {
    state: snapshot ? snapshot.state : fold.initialState(),
    streamVersion: snapshot?.streamVersion ?? 0,
    lastPosition: 0n,
    eventsFolded: 0,
    snapshotVersion: snapshot?.streamVersion ?? 0,
  };
  if (limit !== undefined && limit <= 0) return result;

  const events = readStream<E>(store, streamId, fold, { from, ...(limit === undefined ? {} : { limit }) });
  if (trueBy !== undefined) {
    const known: Recorded<E>[] = [];
    for await (const event of events) {
      if (knownBy === undefined || Date.parse(event.recordedAt) <= knownBy) known.push(event);
    }
    const happened = known.filter((event) => Date.parse(event.occurredAt) <= trueBy && !isCorrection(event));
    result.state = foldInValidTime(happened, fold);
    result.eventsFolded = happened.length;
    for (const event of happened) {
      if (event.streamVersion > result.streamVersion) {
        result.streamVersion = event.streamVersion;
        result.lastPosition = event.position;
      }
    }
    return result;
  }
  const foldAll = async (stream: AsyncIterable<Recorded<E>>) => {
    let state = result.state;
    for await (const event of stream) {
      // Clocks of several writers may disagree slightly, so check every event rather than stop at the first later one.
      if (knownBy !== undefined && Date.parse(event.recordedAt) > knownBy) continue;
      state = fold.evolve(state, event);
      result.eventsFolded++;
      result.streamVersion = event.streamVersion;
      result.lastPosition = event.position;
    }
    result.state = state;
  };
  await foldAll(events);
  // Nothing visible, yet the stream may have a version: it was soft-deleted, or retention hides
  // all of it (docs/lifecycle.md). Its state starts afresh there and the next append continues
  // its versions; only this case pays for the extra look-ups. The version is read after the empty
  // read, so an append in between may have raised it: taken alone it would pair the initial state
  // with a later version, and a command would decide on a state that misses events. So the stream
  // is read once more: what is visible now is folded; when nothing is, the version read before
  // this read holds (a later append either shows in it or fails the next append's version check).
  if (!snapshot && result.eventsFolded === 0 && asOf.version === undefined && knownBy === undefined) {
    const version = await store.streamVersion(streamId);
    if (version > 0) {
      await foldAll(readStream<E>(store, streamId, fold, { from }));
      if (result.eventsFolded === 0) result.streamVersion = version;
    }
  }
  return result;
}
