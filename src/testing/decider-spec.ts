/**
 * Given-when-then for deciders, without a store:
 *
 *   const given = deciderSpec(bankAccount);
 *   await given([opened]).when(deposit).then([deposited]);
 *   await given([opened]).when(withdrawTooMuch).thenThrows(InsufficientFunds);
 *
 * Given events get the envelope a store would give them (versions, times, ids) and go through the
 * decider's upcasters, so they may be written in old schema versions.
 */
import assert from 'node:assert/strict';
import type { Command, Decider, Event, Recorded } from '../domain/types.js';
import { asRecorded, assertEvents, assertThrows, type ErrorClass, refuseAwait } from './match.js';

export interface DeciderOutcome<State, E extends Event> {
  /** What decide returned, as an array. */
  events: E[];
  /** The state before the command. */
  stateBefore: State;
  /** The state after folding the decided events. */
  state: State;
}

export interface DeciderWhen<State, E extends Event> {
  /** Asserts decide returned exactly these events (type and data; metadata keys and occurredAt when given). */
  then(expected: E | E[]): Promise<DeciderOutcome<State, E>>;
  /** Asserts decide returned no events. */
  thenNothingHappened(): Promise<DeciderOutcome<State, E>>;
  /** Asserts the state after the decided events deep-equals this one. */
  thenState(expected: State): Promise<DeciderOutcome<State, E>>;
  /** Asserts decide threw (an instance of `errorClass`, passing `check` when given). */
  thenThrows<T extends Error = Error>(errorClass?: ErrorClass<T>, check?: (error: T) => boolean | undefined): Promise<T>;
}

export interface DeciderGiven<State, C extends Command, E extends Event> {
  when(command: C): DeciderWhen<State, E>;
}

export function deciderSpec<State, C extends Command, E extends Event>(
  decider: Decider<State, C, E>,
): (given?: E | E[]) => DeciderGiven<State, C, E> {
  const label = decider.name ?? 'decider';
  return (given = []) => ({
    when(command) {
      const run = async (): Promise<DeciderOutcome<State, E>> => {
        const history = asRecorded(Array.isArray(given) ? given : [given], `${label}-spec`, decider.upcasters);
        let stateBefore = decider.initialState();
        for (const event of history) stateBefore = decider.evolve(stateBefore, event);
        const decided = await decider.decide(command, stateBefore);
        const events = Array.isArray(decided) ? decided : [decided];
        let state = stateBefore;
        // As handleCommand would record them: stamped with the newest schema version.
        const { upcasters } = decider;
        const recorded = asRecorded(
          upcasters ? events.map((e) => upcasters.stamp(e)) : events,
          `${label}-spec`,
          upcasters,
        ) as Recorded<E>[];
        recorded.forEach((event, i) => {
          state = decider.evolve(state, { ...event, streamVersion: history.length + i + 1, position: BigInt(history.length + i + 1) });
        });
        return { events, stateBefore, state };
      };
      const what = `${label}: when ${command.type}`;
      return {
        // biome-ignore lint/suspicious/noThenProperty: given-when-then is the test kit's vocabulary; refuseAwait guards the thenable case.
        then(expected) {
          refuseAwait(expected);
          return run().then((outcome) => {
            assertEvents(outcome.events, Array.isArray(expected) ? expected : [expected], what);
            return outcome;
          });
        },
        async thenNothingHappened() {
          const outcome = await run();
          assertEvents(outcome.events, [], what);
          return outcome;
        },
        async thenState(expected) {
          const outcome = await run();
          assert.deepStrictEqual(outcome.state, expected, `${what}: the state differs from the expected one`);
          return outcome;
        },
        thenThrows(errorClass, check) {
          return assertThrows(run, errorClass, check, what);
        },
      };
    },
  });
}
