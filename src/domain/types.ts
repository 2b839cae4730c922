/**
 * The domain model: commands, events and deciders as plain data and plain functions.
 * A decider is `{ initialState, evolve, decide }`; the event and command unions drive type
 * inference, so `switch (event.type)` narrows `event.data` in evolve and decide.
 */
import type { JsonObject, JsonValue, NewEvent, RecordedEvent } from '../core/types.js';
import type { Upcasters } from './upcasting.js';

/** Metadata a command carries; `correlationId` and `causationId` are copied onto every event it produces. */
export type CommandMetadata = { correlationId?: string; causationId?: string; userId?: string } & { [key: string]: JsonValue | undefined };

/** An intention: `{ type: 'DepositMoney', data: { amount: 10 } }`. Not stored, so its data need not be JSON. */
export interface Command<Type extends string = string, Data = unknown> {
  type: Type;
  data: Data;
  metadata?: CommandMetadata;
}

/** A fact a decider produces: the store's NewEvent with a literal type and typed data. */
export type Event<Type extends string = string, Data extends JsonValue = JsonValue> = NewEvent<Type, Data>;

/**
 * The recorded form of each member of an event union, as evolve receives it: the same
 * discriminated union (narrowing on `type` narrows `data`) plus the store's envelope
 * (id, metadata, streamVersion, position, occurredAt, recordedAt).
 */
export type Recorded<E extends Event> = E extends unknown ? RecordedEvent<E['type'], E['data']> : never;

/** When to store a snapshot of the state (opt-in per decider). */
export interface SnapshotPolicy<State, E extends Event = Event> {
  /** Take one when at least this many events were folded since the last snapshot. */
  every?: number;
  /** Or decide per command; called after each successful append. */
  when?: (context: { state: State; streamVersion: number; eventsSinceSnapshot: number; newEvents: Recorded<E>[] }) => boolean;
  /** Bump whenever the state's shape or evolve changes: snapshots with another version are ignored and rebuilt. Default 1. */
  version?: number;
  /** Snapshot key next to the stream id. Default: the decider's name. */
  name?: string;
  /** For states that are not plain JSON (Maps, Dates…). Default: the state as is. */
  toJSON?: (state: State) => JsonValue;
  fromJSON?: (json: JsonValue) => State;
}

export interface Decider<State, C extends Command, E extends Event> {
  /** Names the aggregate in errors and keys its snapshots. */
  name?: string;
  /** A fresh state for a stream with no events. A function, so no two folds share one object. */
  initialState: () => State;
  /** Applies one recorded event. Pure: no I/O, no clock. */
  evolve: (state: State, event: Recorded<E>) => State;
  /** Checks the business rules and returns the events to record (none, one or several), or throws a DomainError. */
  decide: (command: C, state: State) => E | E[] | Promise<E | E[]>;
  /** Upgrades events written in older schema versions while they are read (see defineUpcasters). */
  upcasters?: Upcasters;
  /** Opt-in snapshots. */
  snapshots?: SnapshotPolicy<State, E>;
}

/** The state-building half of a decider: enough to fold events. */
export type Fold<State, E extends Event> = Pick<Decider<State, Command, E>, 'initialState' | 'evolve' | 'upcasters' | 'name'> & {
  snapshots?: SnapshotPolicy<State, E>;
  /** Not called by folds: present so that passing a whole decider lets TypeScript infer its event type. */
  decide?: (command: never, state: State) => E | E[] | Promise<E | E[]>;
};

/** The state, command and event types of a decider: handy in application code. */
export type StateOf<D> = D extends Decider<infer S, infer _C, infer _E> ? S : never;
export type CommandOf<D> = D extends Decider<infer _S, infer C, infer _E> ? C : never;
export type EventOf<D> = D extends Decider<infer _S, infer _C, infer E> ? E : never;

export type { JsonObject, JsonValue };
