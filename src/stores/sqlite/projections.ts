/**
 * Projection state in the SQLite store's own database file, on the store's own connection, so
 * a read model's writes and its checkpoint commit together. better-sqlite3 is synchronous and
 * so are these transactions: no other code of this process runs between BEGIN and COMMIT.
 * Writes take the write lock up front (BEGIN IMMEDIATE) to avoid lock upgrades failing with
 * SQLITE_BUSY when several processes share the file.
 */
import type { Database } from 'better-sqlite3';
import { InvalidArgumentError } from '../../core/errors.js';
import type { RecordedEvent } from '../../core/types.js';
import {
  type CheckpointUpdate,
  EventFailure,
  errorMessage,
  errorStack,
  eventFromJson,
  eventToJson,
  type InlineProjection,
  isThenable,
  type LeasePlan,
  type LeaseRow,
  type ParkedEvent,
  type ProjectionBackend,
  planLeases,
  type StoredCheckpoint,
  SupersededError,
  versionedTable,
} from '../../projections/backend.js';
import { COLUMNS, type Row, toRecorded } from './rows.js';
import type { SqliteEventStore } from './store.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS logline_checkpoints (
  name TEXT PRIMARY KEY, kind TEXT NOT NULL, position INTEGER NOT NULL, updated_at TEXT NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS logline_projections (
  name TEXT PRIMARY KEY, active_version INTEGER NOT NULL, switched_at TEXT NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS logline_projection_versions (
  name TEXT NOT NULL, version INTEGER NOT NULL, tables TEXT NOT NULL, created_at TEXT NOT NULL,
  PRIMARY KEY (name, version)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS logline_parked (
  id INTEGER PRIMARY KEY AUTOINCREMENT, consumer TEXT NOT NULL, position INTEGER NOT NULL, event TEXT NOT NULL,
  error TEXT NOT NULL, stack TEXT NOT NULL, attempts INTEGER NOT NULL, parked_at TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS logline_leases (
  group_name TEXT NOT NULL, partition INTEGER NOT NULL, owner TEXT NOT NULL, expires_at INTEGER NOT NULL,
  PRIMARY KEY (group_name, partition)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS logline_group_members (
  group_name TEXT NOT NULL, member TEXT NOT NULL, expires_at INTEGER NOT NULL, PRIMARY KEY (group_name, member)
) STRICT, WITHOUT ROWID;`;

const quote = (identifier: string): string => `"${identifier.replaceAll('"', '""')}"`;

export function createSqliteBackend(
  store: Pick<SqliteEventStore, 'database' | 'addInlineHook' | 'writesSettled' | 'openSealed'>,
): ProjectionBackend {
  const db = store.database;
  db.transaction(() => db.exec(SCHEMA)).immediate();
  // Read models, checkpoints, parked rows and leases can all be rebuilt from the log, so their
  // commits skip the fsync (synchronous=NORMAL: atomic, durable at the next synced commit).
  // After a power loss a projection may go back a few batches, effects and checkpoint together,
  // and redo them: still exactly once. The events' own commits keep the store's setting. The
  // connection is synchronous, so no append can commit while the setting is lowered.
  const storeSync = db.pragma('synchronous', { simple: true }) as number;
  const relaxed = <T>(work: () => T): T => {
    if (storeSync <= 1) return work();
    db.pragma('synchronous = NORMAL');
    try {
      return work();
    } finally {
      db.pragma(`synchronous = ${storeSync}`);
    }
  };
  // A batch in the store's writer thread holds the write lock on its own connection: waiting for
  // it here keeps this thread out of SQLite's busy handler, which sleeps the whole event loop. No
  // new batch can start before the synchronous transaction below has committed.
  const write = async <T>(work: () => T): Promise<T> => {
    await store.writesSettled();
    return relaxed(() => db.transaction(work).immediate());
  };
  const sql = {
    checkpoint: db.prepare('SELECT position FROM logline_checkpoints WHERE name = ?').pluck().safeIntegers(),
    checkpoints: db.prepare('SELECT name, kind, position, updated_at FROM logline_checkpoints ORDER BY name').raw().safeIntegers(),
    saveCheckpoint: db.prepare(
      `INSERT INTO logline_checkpoints (name, kind, position, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at
       WHERE excluded.position > logline_checkpoints.position`,
    ),
    deleteCheckpoint: db.prepare('DELETE FROM logline_checkpoints WHERE name = ?'),
    active: db.prepare('SELECT active_version FROM logline_projections WHERE name = ?').pluck(),
    setActive: db.prepare(
      `INSERT INTO logline_projections (name, active_version, switched_at) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET active_version = excluded.active_version, switched_at = excluded.switched_at`,
    ),
    version: db.prepare('SELECT tables FROM logline_projection_versions WHERE name = ? AND version = ?').pluck(),
    addVersion: db.prepare('INSERT INTO logline_projection_versions (name, version, tables, created_at) VALUES (?, ?, ?, ?)'),
    deleteVersion: db.prepare('DELETE FROM logline_projection_versions WHERE name = ? AND version = ?'),
    park: db.prepare(
      'INSERT INTO logline_parked (consumer, position, event, error, stack, attempts, parked_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    parkedAll: db.prepare('SELECT id, consumer, position, event, error, stack, attempts, parked_at FROM logline_parked ORDER BY id').raw(),
    parkedOf: db
      .prepare('SELECT id, consumer, position, event, error, stack, attempts, parked_at FROM logline_parked WHERE consumer = ? ORDER BY id')
      .raw(),
    deleteParked: db.prepare('DELETE FROM logline_parked WHERE id = ?'),
    renewMember: db.prepare(
      `INSERT INTO logline_group_members (group_name, member, expires_at) VALUES (?, ?, ?)
       ON CONFLICT (group_name, member) DO UPDATE SET expires_at = excluded.expires_at`,
    ),
    liveMembers: db.prepare('SELECT member FROM logline_group_members WHERE group_name = ? AND expires_at > ?').pluck(),
    deadMembers: db.prepare('DELETE FROM logline_group_members WHERE group_name = ? AND expires_at <= ?'),
    leases: db.prepare('SELECT partition, owner, expires_at FROM logline_leases WHERE group_name = ?').raw(),
    setLease: db.prepare(
      `INSERT INTO logline_leases (group_name, partition, owner, expires_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (group_name, partition) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at`,
    ),
    releaseLease: db.prepare('DELETE FROM logline_leases WHERE group_name = ? AND partition = ? AND owner = ?'),
    heldLease: db.prepare('SELECT 1 FROM logline_leases WHERE group_name = ? AND partition = ? AND owner = ? AND expires_at > ?').pluck(),
    leaveMember: db.prepare('DELETE FROM logline_group_members WHERE group_name = ? AND member = ?'),
    leaveLeases: db.prepare('DELETE FROM logline_leases WHERE group_name = ? AND owner = ?'),
    allLeases: db.prepare('SELECT group_name, partition, owner, expires_at FROM logline_leases ORDER BY group_name, partition').raw(),
    groupLeases: db
      .prepare('SELECT group_name, partition, owner, expires_at FROM logline_leases WHERE group_name = ? ORDER BY partition')
      .raw(),
  };

  const save = (update: CheckpointUpdate) => {
    sql.saveCheckpoint.run(update.name, update.kind, update.position, new Date().toISOString());
  };

  const runSync = (work: (tx: unknown, stored: bigint | undefined) => unknown, stored?: bigint) => {
    const result = work(db, stored);
    if (isThenable(result)) {
      throw new InvalidArgumentError(
        'handler',
        'it returned a promise inside a SQLite transaction',
        'synchronous handlers on SQLite (better-sqlite3 is synchronous; use ctx.tx directly)',
      );
    }
  };

  const toParked = (row: [number, string, number, string, string, string, number, string]): ParkedEvent => ({
    id: row[0],
    consumer: row[1],
    position: BigInt(row[2]),
    event: eventFromJson(row[3]),
    error: row[4],
    stack: row[5],
    attempts: row[6],
    parkedAt: row[7],
  });

  return {
    kind: 'sqlite',
    transactional: true,
    qualify: (table) => table,
    async readCheckpoint(name) {
      const position = sql.checkpoint.get(name) as bigint | undefined;
      return position;
    },
    async listCheckpoints() {
      return (sql.checkpoints.all() as [string, string, bigint, string][]).map(
        ([name, kind, position, updatedAt]): StoredCheckpoint => ({ name, kind: kind as StoredCheckpoint['kind'], position, updatedAt }),
      );
    },
    async saveCheckpoint(update) {
      await write(() => save(update));
    },
    async deleteCheckpoint(name) {
      await write(() => sql.deleteCheckpoint.run(name));
    },
    async transact(work, options) {
      await write(() => {
        if (options.guard) {
          const current = sql.active.get(options.guard.projection) as number | undefined;
          if (current !== undefined && current > options.guard.version) throw new SupersededError(options.guard.projection, current);
        }
        const stored = options.checkpoint ? (sql.checkpoint.get(options.checkpoint.name) as bigint | undefined) : undefined;
        runSync(work, stored);
        if (options.checkpoint) save(options.checkpoint);
        if (options.deleteParked !== undefined) sql.deleteParked.run(options.deleteParked);
      });
    },
    async park(input, advance) {
      await write(() => {
        sql.park.run(
          input.consumer,
          input.event.position,
          eventToJson(input.event),
          errorMessage(input.error),
          errorStack(input.error),
          input.attempts,
          new Date().toISOString(),
        );
        if (advance) save(advance);
      });
    },
    async listParked(consumer) {
      const rows = (consumer === undefined ? sql.parkedAll.all() : sql.parkedOf.all(consumer)) as Parameters<typeof toParked>[0][];
      return rows.map(toParked);
    },
    async deleteParked(id) {
      await write(() => sql.deleteParked.run(id));
    },
    async activeVersion(projection) {
      return sql.active.get(projection) as number | undefined;
    },
    async prepareVersion(projection, version, tables, setup) {
      let created = false;
      await write(() => {
        if (sql.version.get(projection, version) !== undefined) return;
        runSync(setup);
        sql.addVersion.run(projection, version, JSON.stringify(tables), new Date().toISOString());
        created = true;
      });
      return created;
    },
    async activate(projection, version, tables) {
      let previous: number | undefined;
      await write(() => {
        previous = sql.active.get(projection) as number | undefined;
        // Same rules as PostgreSQL: never switch back to an older version; a version another
        // process activated first needs nothing more.
        if (previous !== undefined && previous > version) throw new SupersededError(projection, previous);
        if (previous === version) return;
        // Views keep the logical names; DDL is transactional in SQLite, so readers see the old
        // view or the new one, never neither.
        for (const table of tables) {
          db.exec(`DROP VIEW IF EXISTS ${quote(table)}`);
          db.exec(`CREATE VIEW ${quote(table)} AS SELECT * FROM ${quote(versionedTable(table, version))}`);
        }
        sql.setActive.run(projection, version, new Date().toISOString());
      });
      return previous;
    },
    async dropVersion(projection, version) {
      await write(() => {
        const tables = sql.version.get(projection, version) as string | undefined;
        for (const table of tables ? (JSON.parse(tables) as string[]) : []) {
          db.exec(`DROP TABLE IF EXISTS ${quote(versionedTable(table, version))}`);
        }
        sql.deleteVersion.run(projection, version);
        sql.deleteCheckpoint.run(`${projection}@v${version}`);
      });
    },
    async balanceLeases(group, member, partitions, ttlMs, now) {
      let plan: LeasePlan = { owned: [], surplus: [] };
      await write(() => {
        sql.renewMember.run(group, member, now + ttlMs);
        sql.deadMembers.run(group, now);
        const live = sql.liveMembers.all(group, now) as string[];
        const leases = (sql.leases.all(group) as [number, string, number][]).map(
          ([partition, owner, expiresAt]): LeaseRow => ({ partition, owner, expiresAt }),
        );
        const { keep, claim, release } = planLeases(leases, live, member, partitions, now);
        for (const partition of [...keep, ...claim, ...release]) sql.setLease.run(group, partition, member, now + ttlMs);
        plan = { owned: [...keep, ...claim].sort((a, b) => a - b), surplus: release };
      });
      return plan;
    },
    async releaseLeases(group, member, partitions) {
      await write(() => {
        for (const partition of partitions) sql.releaseLease.run(group, partition, member);
      });
    },
    async saveGroupCheckpoints(group, member, partitions, position, now) {
      const held: number[] = [];
      await write(() => {
        for (const partition of partitions) {
          if (sql.heldLease.get(group, partition, member, now) === undefined) continue;
          held.push(partition);
          save({ name: `${group}#${partition}`, kind: 'group', position });
        }
      });
      return held;
    },
    async leaveGroup(group, member) {
      await write(() => {
        sql.leaveLeases.run(group, member);
        sql.leaveMember.run(group, member);
      });
    },
    async listLeases(group) {
      const rows = (group === undefined ? sql.allLeases.all() : sql.groupLeases.all(group)) as [string, number, string, number][];
      return rows.map(([name, partition, owner, expiresAt]) => ({ group: name, partition, owner, expiresAt }));
    },
    attachInline: (projection) => attachSqliteInline(store, projection),
  };
}

/**
 * Inline projection on SQLite: a hook inside every append's transaction, on the store's own
 * synchronous connection, that applies what this process did not see and then the append's own
 * events, and moves the checkpoint; a failure of the append's own events fails the append.
 */
async function attachSqliteInline(
  store: Pick<SqliteEventStore, 'database' | 'addInlineHook' | 'writesSettled' | 'openSealed'>,
  projection: InlineProjection,
): Promise<{ detach(): void } | undefined> {
  const { key, guard, wants, apply, advance } = projection;
  const db = store.database;
  const readCheckpoint = db.prepare('SELECT position FROM logline_checkpoints WHERE name = ?').pluck().safeIntegers();
  const missed = db
    .prepare(
      // Reads the events table directly: inline hooks run inside the append's transaction.
      `SELECT ${COLUMNS} FROM events WHERE position > ? AND position < ? ORDER BY position`,
    )
    .raw();

  const activeVersion = db.prepare('SELECT active_version FROM logline_projections WHERE name = ?').pluck();
  const saveCheckpoint = db.prepare(
    `INSERT INTO logline_checkpoints (name, kind, position, updated_at) VALUES (?, 'projection', ?, ?)
     ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at
     WHERE excluded.position > logline_checkpoints.position`,
  );

  /** Applies events this append did not write in a savepoint of it; false (rolled back) when one fails. */
  const inSavepoint = db.transaction((missedEvents: RecordedEvent[]) => apply(db, missedEvents));
  const appliedMissed = (missedEvents: RecordedEvent[]): boolean => {
    try {
      inSavepoint(missedEvents);
      return true;
    } catch (error) {
      if (error instanceof EventFailure) return false;
      throw error;
    }
  };

  // Runs inside the append's transaction, synchronously: first whatever this process did not
  // see (appends by other processes, the gap since the catch-up), then the append's own events.
  // A throw of the append's own events fails the append: the read model and the log never
  // disagree. A failure of an event written elsewhere is not this append's fault: the hook
  // detaches, the append goes through, and the consumer retries, parks, stops or skips it.
  let detached = false;
  const hook = (_db: Database, appended: RecordedEvent[]) => {
    if (detached) return;
    const active = activeVersion.get(guard.projection) as number | undefined;
    if (active !== undefined && active > guard.version) {
      queueMicrotask(projection.superseded);
      return;
    }
    const first = (appended[0] as RecordedEvent).position;
    const last = (appended[appended.length - 1] as RecordedEvent).position;
    const stored = (readCheckpoint.get(key) as bigint | undefined) ?? 0n;
    const gap = first - 1n > stored ? store.openSealed((missed.all(stored, first) as Row[]).map(toRecorded)) : [];
    const isNew = (event: RecordedEvent) => event.position > stored && wants(event);
    const missedEvents = gap.filter(isNew);
    if (missedEvents.length > 0 && !appliedMissed(missedEvents)) {
      detached = true;
      detach();
      queueMicrotask(projection.fellBehind);
      return;
    }
    try {
      apply(db, appended.filter(isNew));
    } catch (error) {
      throw error instanceof EventFailure ? error.cause : error;
    }
    saveCheckpoint.run(key, last, new Date().toISOString());
    // After the append's COMMIT (the flush is synchronous), publish what is stored.
    queueMicrotask(() => {
      const committed = readCheckpoint.get(key) as bigint | undefined;
      if (committed !== undefined) advance(committed);
    });
  };
  const detach = store.addInlineHook(hook);
  // A batch already in the writer thread commits without the hook: wait for it, so the catch-up
  // below sees it. Appends from now on run the hook (which catches up on its own first).
  await store.writesSettled();
  // Catch up to the head now, synchronously: no append of this process can interleave.
  const stored = (readCheckpoint.get(key) as bigint | undefined) ?? 0n;
  const rest = store.openSealed((missed.all(stored, Number.MAX_SAFE_INTEGER) as Row[]).map(toRecorded));
  if (rest.length > 0) {
    const through = (rest[rest.length - 1] as RecordedEvent).position;
    const caughtUp = await projection
      .applyAndCheckpoint(rest.filter(wants), { name: key, kind: 'projection', position: through })
      .catch((error) => {
        // No half-attached hook: the caller may try the whole hand-over again.
        detach();
        // An event since the async catch-up fails: the consumer reaches it next, with its policy.
        if (error instanceof EventFailure) return 'fell behind' as const;
        throw error;
      });
    if (caughtUp === 'fell behind') return undefined;
    advance(through);
  }
  return { detach };
}
