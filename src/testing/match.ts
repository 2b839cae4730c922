/** Assertions shared by the decider and handler specs; they throw node:assert's AssertionError (any test runner shows its diff). */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { JsonObject, NewEvent, RecordedEvent } from '../core/types.js';
import type { Event, Recorded } from '../domain/types.js';
import type { Upcasters } from '../domain/upcasting.js';

/** Any Error class, including abstract ones and ones with required constructor arguments. */
export type ErrorClass<T extends Error = Error> = abstract new (...args: never[]) => T;

/**
 * The specs have a `then(expected)` method, which makes them thenables: `await given(x).when(c)`
 * (forgetting the `.then(...)`) calls it with resolve/reject functions. Throwing here rejects that
 * await with a clear message instead of a confusing diff or a hang.
 */
export function refuseAwait(expected: unknown): void {
  if (typeof expected === 'function') {
    throw new TypeError(
      'given(...).when(...) is not awaitable on its own: finish it with .then(expectedEvents), .thenThrows(ErrorClass), .thenState(state) or .thenNothingHappened()',
    );
  }
}

/** Compares events on type and data, plus metadata keys and occurredAt where the expectation names them. */
export function assertEvents(actual: readonly NewEvent[], expected: readonly NewEvent[], what: string): void {
  const view = (event: NewEvent, like: NewEvent | undefined) => {
    const out: { type: string; data: unknown; metadata?: JsonObject; occurredAt?: string } = { type: event.type, data: event.data };
    if (like?.metadata) {
      out.metadata = {};
      for (const key of Object.keys(like.metadata)) if (event.metadata?.[key] !== undefined) out.metadata[key] = event.metadata[key];
    }
    if (like?.occurredAt !== undefined && event.occurredAt !== undefined) out.occurredAt = new Date(event.occurredAt).toISOString();
    return out;
  };
  const expectedView = expected.map((event) => ({
    ...view(event, event),
    ...(event.occurredAt === undefined ? {} : { occurredAt: new Date(event.occurredAt).toISOString() }),
  }));
  assert.deepStrictEqual(
    actual.map((event, i) => view(event, expected[i])),
    expectedView,
    `${what}: the events differ from the expected ones`,
  );
}

export async function assertThrows<T extends Error>(
  run: () => Promise<unknown>,
  errorClass: ErrorClass<T> | undefined,
  check: ((error: T) => boolean | undefined) | undefined,
  what: string,
): Promise<T> {
  let outcome: unknown;
  try {
    outcome = await run();
  } catch (error) {
    if (errorClass && !(error instanceof errorClass)) {
      throw new assert.AssertionError({
        message: `${what}: expected a ${errorClass.name}, got ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
        actual: error,
        expected: errorClass,
      });
    }
    if (check && check(error as T) === false) {
      throw new assert.AssertionError({ message: `${what}: the ${(error as Error).name} failed the check`, actual: error });
    }
    return error as T;
  }
  throw new assert.AssertionError({
    message: `${what}: expected ${errorClass ? `a ${errorClass.name}` : 'an error'}, but it succeeded with ${JSON.stringify(outcome, (_, v) => (typeof v === 'bigint' ? `${v}n` : v))}`,
    actual: outcome,
  });
}

/** Gives plain events the envelope the store would, so evolve sees realistic recorded events. */
export function asRecorded<E extends Event>(events: readonly E[], streamId: string, upcasters: Upcasters | undefined): Recorded<E>[] {
  const recordedAt = new Date().toISOString();
  return events.map((event, i) => {
    const recorded: RecordedEvent = {
      id: event.id ?? randomUUID(),
      type: event.type,
      data: structuredClone(event.data),
      metadata: structuredClone(event.metadata ?? {}),
      occurredAt: event.occurredAt === undefined ? recordedAt : new Date(event.occurredAt).toISOString(),
      streamId,
      streamVersion: i + 1,
      position: BigInt(i + 1),
      recordedAt,
    };
    return (upcasters ? upcasters.upcast(recorded) : recorded) as Recorded<E>;
  });
}
