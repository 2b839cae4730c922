/**
 * Given-when-then through a real store: the given events are appended to a fresh stream, the
 * command goes through handleCommand, and the expectation is checked against what the store
 * then holds (so persistence, metadata and upcasting are part of the test).
 *
 *   const given = handlerSpec(store, bankAccount);
 *   await given([opened]).when(deposit).then([deposited]);
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { EventStore, RecordedEvent } from '../core/types.js';
import { type CommandResult, type HandleCommandOptions, handleCommand } from '../domain/command.js';
import type { Command, Decider, Event } from '../domain/types.js';
import { assertEvents, assertThrows, type ErrorClass, refuseAwait } from './match.js';

export interface HandlerOutcome<State, E extends Event> {
  streamId: string;
  result: CommandResult<State, E>;
  /** The events the store holds after the given ones. */
  stored: RecordedEvent[];
}

export interface HandlerWhen<State, E extends Event> {
  then(expected: E | E[]): Promise<HandlerOutcome<State, E>>;
  thenNothingHappened(): Promise<HandlerOutcome<State, E>>;
  thenState(expected: State): Promise<HandlerOutcome<State, E>>;
  /** Asserts the command failed and the stream is unchanged. */
  thenThrows<T extends Error = Error>(errorClass?: ErrorClass<T>, check?: (error: T) => boolean | undefined): Promise<T>;
}

export interface HandlerGiven<State, C extends Command, E extends Event> {
  when(command: C, options?: HandleCommandOptions): HandlerWhen<State, E>;
}

export function handlerSpec<State, C extends Command, E extends Event>(
  store: EventStore,
  decider: Decider<State, C, E>,
): (given?: E | E[], options?: { streamId?: string }) => HandlerGiven<State, C, E> {
  const label = decider.name ?? 'handler';
  return (given = [], { streamId = `${label}-${randomUUID()}` } = {}) => ({
    when(command, options) {
      const history = Array.isArray(given) ? given : [given];
      const setUp = async () => {
        if (history.length) await store.append(streamId, history, { expectedVersion: 'no_stream' });
        return history.length;
      };
      const storedAfter = async (version: number) => {
        const out: RecordedEvent[] = [];
        for await (const event of store.read(streamId, { from: version + 1 })) out.push(event);
        return out;
      };
      const run = async (): Promise<HandlerOutcome<State, E>> => {
        const version = await setUp();
        const result = await handleCommand(store, streamId, command, decider, options);
        const stored = await storedAfter(version);
        assert.deepStrictEqual(
          stored.map((e) => e.id),
          result.events.map((e) => e.id),
          `${label}: handleCommand reported other events than the store holds`,
        );
        return { streamId, result, stored };
      };
      const what = `${label}: when ${command.type}`;
      return {
        // biome-ignore lint/suspicious/noThenProperty: given-when-then is the test kit's vocabulary; refuseAwait guards the thenable case.
        then(expected) {
          refuseAwait(expected);
          return run().then((outcome) => {
            // Compare the upcast view (what evolve saw) so expectations use the newest shapes.
            assertEvents(outcome.result.events, Array.isArray(expected) ? expected : [expected], what);
            return outcome;
          });
        },
        async thenNothingHappened() {
          const outcome = await run();
          assertEvents(outcome.stored, [], what);
          return outcome;
        },
        async thenState(expected) {
          const outcome = await run();
          assert.deepStrictEqual(outcome.result.state, expected, `${what}: the state differs from the expected one`);
          return outcome;
        },
        async thenThrows(errorClass, check) {
          // Set-up failures are not the error under test: let them fail the test as themselves.
          const version = await setUp();
          const error = await assertThrows(() => handleCommand(store, streamId, command, decider, options), errorClass, check, what);
          assert.deepStrictEqual(await storedAfter(version), [], `${what}: the command failed but stored events`);
          return error;
        },
      };
    },
  });
}
