/**
 * The SQLite write path: one coalesced batch of appends in one write transaction, each append
 * checked on its own. The store runs it in its writer thread (writer-thread.ts) or, for an
 * in-memory database and while inline hooks are attached, on the main thread's connection.
 *
 * createWriter is shipped to the writer thread as source text: it must use nothing from outside
 * its own body but its parameters and JavaScript's globals (the imports here are types only).
 * Its answers are plain data, so they cross the thread boundary as they are; the store turns
 * them into results and typed errors.
 */
import type { Database } from 'better-sqlite3';
import type { ExpectedVersion } from '../../core/types.js';
import type { Row } from './rows.js';

export interface WriteEvent {
  id: string;
  type: string;
  dataJson: string;
  metadataJson: string;
  occurredAt?: string;
}

export interface WriteRequest {
  stream: string;
  expected: ExpectedVersion;
  events: WriteEvent[];
}

/** What became of one append of a committed (or deliberately rolled back) batch. */
export type WriteOutcome =
  | { kind: 'written'; streamVersion: number; position: number }
  /** The expected version did not match and none of the events is stored. */
  | { kind: 'conflict'; actual: number }
  /** The stream is tombstoned (docs/lifecycle.md) and none of the events is stored. */
  | { kind: 'deleted' }
  /** Some of the events are stored already (these rows): an exact retry, or an idempotency conflict. */
  | { kind: 'retry'; stored: Row[] }
  | { kind: 'failed'; error: unknown };

/**
 * How a batch's transaction went: committed (or rolled back on purpose, a lone failing append),
 * or ended by something else before or at COMMIT (see the store's settleEndedBatch).
 */
export type BatchRun = { ended: false; outcomes: WriteOutcome[] } | { ended: true; culprit: number | undefined; error: unknown };

/** Runs inside the append's transaction after its rows are inserted (inline projections). */
export type AfterInsert = (request: WriteRequest, firstVersion: number, positions: number[], recordedAt: string) => void;

export interface Writer {
  /** Writes a batch in one transaction; throws when the transaction could not even begin (nothing stored). */
  writeBatch(batch: WriteRequest[]): BatchRun;
  /**
   * writeBatch without waiting for the write lock: 'busy' (nothing done) when another connection
   * holds it. SQLite's busy handler sleeps the calling thread, so the main thread asks this way.
   */
  tryWriteBatch(batch: WriteRequest[]): BatchRun | 'busy';
}

export function createWriter(db: Database, afterInsert?: AfterInsert): Writer {
  const sql = {
    version: db.prepare('SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = ?').pluck(),
    // A scavenge may have removed a stream's newest events: its version lives on here (retention.ts).
    lifecycle: db.prepare('SELECT scavenged_version, tombstoned FROM stream_lifecycles WHERE stream_id = ?').raw(),
    insert: db.prepare(
      'INSERT INTO events (stream_id, stream_version, id, type, data, metadata, occurred_at, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    // The same columns as rows.ts's COLUMNS (this function may not import it).
    byIds: db
      .prepare(
        'SELECT position, stream_id, stream_version, id, type, data, metadata, occurred_at, recorded_at FROM events WHERE id IN (SELECT value FROM json_each(?))',
      )
      .raw(),
    head: db.prepare('SELECT coalesce(max(position), 0) FROM events').pluck(),
    headRecordedAt: db.prepare('SELECT recorded_at FROM events ORDER BY position DESC LIMIT 1').pluck(),
    begin: db.prepare('BEGIN IMMEDIATE'),
    commit: db.prepare('COMMIT'),
    rollback: db.prepare('ROLLBACK'),
  };

  /** Carries a retry's answer out of the savepoint so the savepoint's inserts roll back. */
  class RetryDetected extends Error {
    constructor(readonly outcome: WriteOutcome) {
      super('retry detected');
    }
  }

  // The rule of core/validation.ts's versionMatches (this function may not import it).
  const versionMatches = (expected: ExpectedVersion, actual: number): boolean =>
    expected === 'any' || (expected === 'no_stream' ? actual === 0 : expected === 'exists' ? actual > 0 : expected === actual);

  const storedRows = (events: WriteEvent[]): Row[] => sql.byIds.all(JSON.stringify(events.map((e) => e.id))) as Row[];

  /**
   * The time to record, read inside the write transaction (so after any other writer's commit)
   * and never before the head's, should the clock step back: recordedAt follows positions.
   */
  const recordedNow = (): string => {
    const now = new Date().toISOString();
    const headAt = sql.headRecordedAt.get() as string | undefined;
    return headAt !== undefined && headAt > now ? headAt : now;
  };

  /** Writes one append inside the current transaction; throws to roll back its savepoint. */
  const writeOne = (request: WriteRequest, recordedAt: string): WriteOutcome => {
    const { stream, expected, events } = request;
    const stored = sql.version.get(stream) as number;
    const lifecycle = sql.lifecycle.get(stream) as [number, 0 | 1] | undefined;
    const actual = lifecycle ? Math.max(stored, lifecycle[0]) : stored;
    if (lifecycle?.[1]) {
      // A retry of an append that landed before the tombstone is still answered as one.
      const already = events.length ? storedRows(events) : [];
      return already.length ? { kind: 'retry', stored: already } : { kind: 'deleted' };
    }
    if (!versionMatches(expected, actual)) {
      // A retry of an append that already landed shows up here as a version mismatch.
      const stored = events.length ? storedRows(events) : [];
      return stored.length ? { kind: 'retry', stored } : { kind: 'conflict', actual };
    }
    if (events.length === 0) return { kind: 'written', streamVersion: actual, position: sql.head.get() as number };
    let version = actual;
    const positions: number[] = [];
    try {
      for (const event of events) {
        version++;
        const occurredAt = event.occurredAt ?? recordedAt;
        const info = sql.insert.run(stream, version, event.id, event.type, event.dataJson, event.metadataJson, occurredAt, recordedAt);
        positions.push(info.lastInsertRowid as number);
      }
    } catch (error) {
      if ((error as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE' && String(error).includes('events.id')) {
        // Rows this attempt inserted are visible here but roll back with the savepoint: ignore them.
        const ownIds = new Set(events.slice(0, positions.length).map((e) => e.id));
        // Roll back what this append inserted so far, then answer as a retry (or a conflict).
        throw new RetryDetected({ kind: 'retry', stored: storedRows(events).filter((row) => !ownIds.has(row[3])) });
      }
      throw error;
    }
    afterInsert?.(request, actual + 1, positions, recordedAt);
    return { kind: 'written', streamVersion: version, position: positions[positions.length - 1] as number };
  };

  // Called inside the batch's transaction, better-sqlite3 runs it in a savepoint.
  const writeInSavepoint = db.transaction(writeOne);

  /**
   * Each append in its own savepoint (a lone append needs none: its failure rolls back the whole
   * transaction). A transaction that ends before COMMIT (an inline hook rolled it back or
   * committed it; SQLite rolled it back by itself on a full disk or an I/O error) or whose COMMIT
   * fails is reported, not settled here.
   */
  const writeBatch = (batch: WriteRequest[]): BatchRun => {
    sql.begin.run();
    return writeBegun(batch);
  };

  // The connection's own busy timeout, put back after a begin that would not wait. (SQLite applies
  // this pragma when it compiles the statement, so a prepared one would not do.)
  const busyTimeout = Number(db.pragma('busy_timeout', { simple: true }));
  const tryWriteBatch = (batch: WriteRequest[]): BatchRun | 'busy' => {
    db.pragma('busy_timeout = 0');
    try {
      sql.begin.run();
    } catch (error) {
      if (String((error as { code?: string }).code).startsWith('SQLITE_BUSY')) return 'busy';
      throw error;
    } finally {
      db.pragma(`busy_timeout = ${busyTimeout}`);
    }
    return writeBegun(batch);
  };

  /** The rest of writeBatch, once BEGIN IMMEDIATE has taken the write lock. */
  const writeBegun = (batch: WriteRequest[]): BatchRun => {
    const outcomes: WriteOutcome[] = [];
    let rolledBack = false;
    const recordedAt = recordedNow();
    for (const [i, request] of batch.entries()) {
      try {
        outcomes.push(batch.length === 1 ? writeOne(request, recordedAt) : writeInSavepoint(request, recordedAt));
      } catch (error) {
        if (!db.inTransaction) return { ended: true, culprit: i, error };
        if (batch.length === 1) {
          sql.rollback.run();
          rolledBack = true;
        }
        outcomes.push(error instanceof RetryDetected ? error.outcome : { kind: 'failed', error });
      }
      // A hook may end the transaction without throwing: what follows would run outside it.
      if (!db.inTransaction && !rolledBack) {
        return { ended: true, culprit: i, error: new Error('an inline hook ended the write transaction') };
      }
    }
    if (rolledBack) return { ended: false, outcomes };
    try {
      sql.commit.run();
    } catch (error) {
      if (db.inTransaction) sql.rollback.run();
      return { ended: true, culprit: undefined, error };
    }
    return { ended: false, outcomes };
  };

  return { writeBatch, tryWriteBatch };
}
