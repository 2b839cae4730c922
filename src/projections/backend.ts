/**
 * The small per-backend adapter everything in src/projections runs on. A backend keeps
 * checkpoints, the projection version pointer, parked events and consumer-group leases, and
 * runs "apply these events and move the checkpoint" as one transaction when it can.
 *
 * Each backend lives beside its store, in src/stores/<name>/projections.ts, and is reached
 * through the store (ProjectionSupport): src/projections imports no store's internals.
 *
 *   memory:   plain maps (per store instance); no rollback, so effects are at-least-once.
 *   sqlite:   tables in the store's own database file, on the store's own connection.
 *   postgres: tables in the store's schema, through the store's postgres.js pool.
 *   nats:     documents in the store's <NAME>_PROJECTIONS stream; no rollback, so effects are
 *             at-least-once.
 */
import { InvalidArgumentError } from '../core/errors.js';
import type { RecordedEvent } from '../core/types.js';

export type ConsumerKind = 'subscription' | 'projection' | 'group';

export interface StoredCheckpoint {
  name: string;
  kind: ConsumerKind;
  position: bigint;
  updatedAt: string;
}

export interface ParkedEvent {
  id: number;
  /** Subscription, projection (`name@vN`) or group that parked it. */
  consumer: string;
  position: bigint;
  event: RecordedEvent;
  error: string;
  stack: string;
  attempts: number;
  parkedAt: string;
}

export interface ParkInput {
  consumer: string;
  event: RecordedEvent;
  error: unknown;
  attempts: number;
}

export interface CheckpointUpdate {
  name: string;
  kind: ConsumerKind;
  position: bigint;
}

export interface TransactOptions {
  /** Set this checkpoint in the same transaction (never moves it backwards). */
  checkpoint?: CheckpointUpdate;
  /** Fail with Superseded when the projection's active version is newer than this one. */
  guard?: { projection: string; version: number };
  /** Delete this parked event in the same transaction (a successful replay). */
  deleteParked?: number;
  /**
   * The lowest position `work` applies, when it applies events. A backend may then run
   * `work(tx, undefined)` before its read of the stored checkpoint has answered (PostgreSQL
   * sends them together), provided it rolls back and runs `work(tx, stored)` again when the stored
   * checkpoint turns out to be at or past `from`: another runner applied some of the events first.
   */
  from?: bigint;
}

export interface LeaseRow {
  partition: number;
  owner: string;
  expiresAt: number;
}

/** A lease as stored, with its group: who works on that partition, until when (ms since the epoch). */
export interface GroupLease extends LeaseRow {
  group: string;
}

export interface LeasePlan {
  owned: number[];
  surplus: number[];
}

/** What an inline projection hands its backend to run inside every append's transaction. */
export interface InlineProjection {
  /** The projection's checkpoint name. */
  key: string;
  /** The version this hook builds: a newer active version stops it. */
  guard: { projection: string; version: number };
  /** Whether the projection handles this event (its types and stream prefix). */
  wants(event: RecordedEvent): boolean;
  /** Runs the projection's handlers on `events` inside the open transaction `tx`; a failure is an EventFailure. */
  apply(tx: unknown, events: RecordedEvent[]): unknown;
  /** Applies `events` in a transaction of the backend's own, moving `checkpoint` with them. */
  applyAndCheckpoint(events: RecordedEvent[], checkpoint: CheckpointUpdate): Promise<void>;
  /** The checkpoint committed up to here. */
  advance(position: bigint): void;
  /** A newer version is active: the hook must go. */
  superseded(): void;
  /**
   * An event the hook did not append (another process wrote it) failed in its handler. The hook
   * has detached itself without failing the append; the consumer takes over until caught up.
   */
  fellBehind(): void;
}

/**
 * What a store offers src/projections: its projection backend, created on first use. Every
 * store of Logline implements it; src/projections reaches a store's backend only through it.
 */
export interface ProjectionSupport {
  projectionBackend(): Promise<ProjectionBackend>;
}

export const hasProjectionSupport = (store: object): store is ProjectionSupport =>
  typeof (store as Partial<ProjectionSupport>).projectionBackend === 'function';

export interface ProjectionBackend {
  readonly kind: 'memory' | 'sqlite' | 'postgres' | 'nats';
  /** True when `transact` rolls the work back on failure (effects exactly once). */
  readonly transactional: boolean;
  readCheckpoint(name: string): Promise<bigint | undefined>;
  listCheckpoints(): Promise<StoredCheckpoint[]>;
  saveCheckpoint(update: CheckpointUpdate): Promise<void>;
  deleteCheckpoint(name: string): Promise<void>;
  /**
   * Runs `work(tx, stored)` in one transaction with the options' side effects; `stored` is the
   * checkpoint named in `options.checkpoint` as committed (read under the transaction's lock).
   * SQLite requires `work` to be synchronous (better-sqlite3 is).
   */
  transact(work: (tx: unknown, stored: bigint | undefined) => unknown, options: TransactOptions): Promise<void>;
  /** The name to use in SQL for a table of the store's database (schema-qualified on PostgreSQL). */
  qualify(table: string): string;

  /** Records a parked event; with `advance`, sets that checkpoint in the same transaction. */
  park(input: ParkInput, advance?: CheckpointUpdate): Promise<void>;
  listParked(consumer?: string): Promise<ParkedEvent[]>;
  deleteParked(id: number): Promise<void>;

  activeVersion(projection: string): Promise<number | undefined>;
  /**
   * Registers a projection version; the first time, runs `setup(tx)` (creating its tables) in
   * the same transaction. Returns whether it was new.
   */
  prepareVersion(projection: string, version: number, tables: string[], setup: (tx: unknown) => unknown): Promise<boolean>;
  /**
   * Makes `version` the one queries see, in one transaction: the pointer row, and for each
   * logical table a view of that name over the version's table. Returns the previous version.
   * Serialized per projection across processes; a no-op when `version` is already active, and
   * SupersededError when a newer one is.
   */
  activate(projection: string, version: number, tables: string[]): Promise<number | undefined>;
  /** Drops a version's tables and its checkpoint (after a switch). */
  dropVersion(projection: string, version: number): Promise<void>;

  /**
   * One consumer-group heartbeat, in one transaction: renew `member` and its leases, claim free
   * or expired partitions up to a fair share. `owned` is what it should work on; `surplus` are
   * leases beyond its share, still renewed, to hand back with releaseLeases once the work in
   * flight on them is done (so two members never work on one partition at once).
   */
  balanceLeases(group: string, member: string, partitions: number, ttlMs: number, now: number): Promise<LeasePlan>;
  releaseLeases(group: string, member: string, partitions: number[]): Promise<void>;
  /** Saves the checkpoints of partitions `member` still holds an unexpired lease on; returns those. */
  saveGroupCheckpoints(group: string, member: string, partitions: number[], position: bigint, now: number): Promise<number[]>;
  leaveGroup(group: string, member: string): Promise<void>;
  /**
   * The stored leases of one group (or of every group), ordered by group and partition, expired
   * ones included: what operators see as a group's partitions and their owners.
   */
  listLeases(group?: string): Promise<GroupLease[]>;

  /**
   * Installs an inline projection as a hook in every append's transaction, after applying what
   * the log holds beyond its checkpoint. Undefined when an event written elsewhere fails (the
   * consumer takes over). Absent on backends without transactions (memory, NATS).
   */
  attachInline?(projection: InlineProjection): Promise<{ detach(): void } | undefined>;
}

/** Thrown out of `work` when handling the event at `position` failed; the transaction is rolled back. */
export class EventFailure extends Error {
  constructor(
    readonly position: bigint,
    override readonly cause: unknown,
    /** True when the events before it already took effect (sinks without rollback). */
    readonly priorApplied = false,
    /** A batch handler failed: which event of the batch is at fault is not known yet. */
    readonly wholeBatch = false,
  ) {
    super(`event at position ${position} failed: ${String(cause)}`);
  }
}

/** The active version is newer than the one this runner builds. */
export class SupersededError extends Error {
  constructor(
    readonly projection: string,
    readonly active: number,
  ) {
    super(`projection ${projection} is superseded by version ${active}`);
  }
}

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';

/**
 * Applies `apply` to each event in order. Stays synchronous while every call returns a plain
 * value (SQLite transactions must not yield), and switches to async at the first promise
 * (PostgreSQL). A failure is rethrown as EventFailure with the event's position.
 */
export function applyInOrder(events: RecordedEvent[], apply: (event: RecordedEvent) => unknown, syncOnly = false): void | Promise<void> {
  for (let i = 0; i < events.length; i++) {
    const event = events[i] as RecordedEvent;
    let result: unknown;
    try {
      result = apply(event);
    } catch (error) {
      throw new EventFailure(event.position, error);
    }
    if (isThenable(result)) {
      if (syncOnly) {
        // Swallow the stray promise's outcome; the handler is refused anyway.
        Promise.resolve(result).catch(() => {});
        throw new EventFailure(
          event.position,
          new InvalidArgumentError(
            'handler',
            'it returned a promise inside a SQLite transaction',
            'a synchronous handler on SQLite (better-sqlite3 is synchronous: use ctx.tx directly)',
          ),
        );
      }
      return continueAsync(events, apply, i, result);
    }
  }
}

async function continueAsync(events: RecordedEvent[], apply: (event: RecordedEvent) => unknown, at: number, pending: PromiseLike<unknown>) {
  try {
    await pending;
  } catch (error) {
    throw new EventFailure((events[at] as RecordedEvent).position, error);
  }
  for (let i = at + 1; i < events.length; i++) {
    const event = events[i] as RecordedEvent;
    try {
      await apply(event);
    } catch (error) {
      throw new EventFailure(event.position, error);
    }
  }
}

export { isThenable };

/**
 * Which partitions a member should hold after a heartbeat: keep its unexpired leases up to a
 * fair share (ceil(partitions / live members)), release the rest, claim free or expired ones.
 * Pure, so every backend balances the same way.
 */
export function planLeases(
  leases: LeaseRow[],
  liveMembers: string[],
  member: string,
  partitions: number,
  now: number,
): { keep: number[]; release: number[]; claim: number[] } {
  const members = [...new Set([...liveMembers, member])];
  const share = Math.ceil(partitions / members.length);
  const byPartition = new Map(leases.map((lease) => [lease.partition, lease]));
  const mine = leases
    .filter((lease) => lease.owner === member && lease.expiresAt > now)
    .map((lease) => lease.partition)
    .sort((a, b) => a - b);
  const keep = mine.slice(0, share);
  const release = mine.slice(share);
  const claim: number[] = [];
  for (let partition = 0; partition < partitions && keep.length + claim.length < share; partition++) {
    const lease = byPartition.get(partition);
    if (!lease || lease.expiresAt <= now) claim.push(partition);
  }
  return { keep, release, claim };
}

/** Orders leases by group, then partition (every backend answers listLeases in this order). */
export const byGroupAndPartition = (a: GroupLease, b: GroupLease): number =>
  a.group < b.group ? -1 : a.group > b.group ? 1 : a.partition - b.partition;

/** Serialized form of a parked event (positions as decimal strings). */
export const eventToJson = (event: RecordedEvent): string => JSON.stringify({ ...event, position: String(event.position) });
export const eventFromJson = (json: string): RecordedEvent => {
  const parsed = JSON.parse(json) as RecordedEvent & { position: string };
  return { ...parsed, position: BigInt(parsed.position) };
};

export const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error));
export const errorStack = (error: unknown): string => (error instanceof Error ? (error.stack ?? error.message) : String(error));

/** Physical table of a logical read-model table for one projection version. */
export const versionedTable = (table: string, version: number): string => `${table}_v${version}`;
