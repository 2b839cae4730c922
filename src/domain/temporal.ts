/**
 * Retroactive events (docs/domain.md; seed 004). A stream is an append-only ledger in recorded order,
 * but an event may arrive late: a payment made on 11 June is recorded on 29 August, after interest
 * for June..August was already paid on the old balance. Two folds disagree then:
 * - booked: recorded order, the way the ledger actually went (corrections included);
 * - actual: valid-time (occurredAt) order, recomputing everything after the late event (corrections skipped).
 * The domain turns the difference into correction events, appended now, marked with
 * `metadata.correctionOf` (the ids of the retroactive events they settle) so that valid-time folds
 * skip them and each retroactive event is corrected once.
 */
import type { EventStore, JsonObject, RecordedEvent } from '../core/types.js';
import { assertStreamId } from '../core/validation.js';
import { foldInValidTime, isCorrection, type LoadedState, readStream } from './aggregate.js';
import { appendDecided, type CommandResult, prepareDecided, type RetryOptions, retryOnConflict } from './command.js';
import type { Event, Fold, Recorded } from './types.js';

/**
 * Events that happened before something already recorded ahead of them in the stream, and that
 * no correction event settles yet (in recorded order).
 */
export function findRetroactive<T extends RecordedEvent>(events: readonly T[]): T[] {
  const settled = new Set<string>();
  for (const event of events) {
    const of = event.metadata.correctionOf;
    if (Array.isArray(of)) for (const id of of) if (typeof id === 'string') settled.add(id);
  }
  const found: T[] = [];
  let latest = Number.NEGATIVE_INFINITY;
  for (const event of events) {
    if (isCorrection(event)) continue;
    const at = Date.parse(event.occurredAt);
    if (at < latest && !settled.has(event.id)) found.push(event);
    latest = Math.max(latest, at);
  }
  return found;
}

export interface CorrectionContext<State, E extends Event> {
  /** The state folded in recorded order, corrections included: what the ledger says now. */
  booked: State;
  /** The state folded in valid-time order, corrections skipped: what is true now. */
  actual: State;
  /** The retroactive events not yet settled, in recorded order. */
  retroactive: Recorded<E>[];
  /** The whole stream in recorded order. */
  events: Recorded<E>[];
}

/** How the domain settles a difference: the correction events (none when booked already equals actual). */
export type Correct<State, E extends Event> = (context: CorrectionContext<State, E>) => E | E[];

/**
 * Replays a stream both ways and asks `correct` for the events that bring the booked state in
 * line with the actual one. Pure: give it the stream's events in recorded order. Returns the
 * correction events already marked with `metadata.correctionOf`; none when nothing is retroactive.
 */
export function deriveCorrections<State, E extends Event>(
  events: readonly Recorded<E>[],
  fold: Pick<Fold<State, E>, 'initialState' | 'evolve' | 'decide'>,
  correct: NoInfer<Correct<State, E>>,
): E[] {
  const retroactive = findRetroactive(events);
  if (retroactive.length === 0) return [];
  let booked = fold.initialState();
  for (const event of events) booked = fold.evolve(booked, event);
  const actual = foldInValidTime(events, fold);
  const produced = correct({ booked, actual, retroactive, events: [...events] });
  const correctionOf = retroactive.map((event) => event.id);
  return (Array.isArray(produced) ? produced : [produced]).map((event) => ({ ...event, metadata: { ...event.metadata, correctionOf } }));
}

export interface CorrectRetroactiveOptions {
  retry?: RetryOptions;
  /** Extra metadata for the correction events (correlationId…). */
  metadata?: JsonObject;
}

/**
 * Reads a stream, derives the corrections for its unsettled retroactive events and appends them
 * at the version it read (retrying on a lost race like handleCommand). A no-op when nothing is
 * retroactive, so it is safe to call after every late event.
 */
export async function correctRetroactive<State, E extends Event>(
  store: EventStore,
  streamId: string,
  fold: Fold<State, E>,
  correct: NoInfer<Correct<State, E>>,
  options: CorrectRetroactiveOptions = {},
): Promise<CommandResult<State, E>> {
  assertStreamId(streamId);
  return retryOnConflict(streamId, 'correctRetroactive', options.retry, async (attempt) => {
    const events: Recorded<E>[] = [];
    for await (const event of readStream<E>(store, streamId, fold)) events.push(event);
    let booked = fold.initialState();
    for (const event of events) booked = fold.evolve(booked, event);
    const last = events.at(-1);
    const loaded: LoadedState<State> = {
      state: booked,
      streamVersion: last?.streamVersion ?? 0,
      lastPosition: last?.position ?? 0n,
      eventsFolded: events.length,
      snapshotVersion: 0,
    };
    const corrections = deriveCorrections(events, fold, correct);
    return appendDecided(store, streamId, fold, loaded, prepareDecided(corrections, fold, options.metadata ?? {}), attempt);
  });
}
