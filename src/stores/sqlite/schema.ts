/**
 * The SQLite schema, as numbered migrations. `PRAGMA user_version` records how many have run;
 * opening a store applies the missing ones inside one write transaction, so several processes
 * opening the same new file at once migrate it exactly once.
 */
import type { Database } from 'better-sqlite3';
import { SchemaTooNewError } from '../../core/errors.js';
import { SUBJECT_KEYS_SCHEMA } from './subject-keys.js';

/**
 * A stream's category (docs/store.md, categories): its id before the first '-'; '' for an id
 * without '-', which no category read asks for (a category is never empty). Queries must spell it
 * exactly like this for SQLite to use the index on it.
 */
export const CATEGORY_SQL = "substr(stream_id, 1, instr(stream_id, '-') - 1)";

export const MIGRATIONS: readonly string[] = [
  // 1: the log, snapshots.
  `CREATE TABLE events (
     position       INTEGER PRIMARY KEY,
     stream_id      TEXT    NOT NULL,
     stream_version INTEGER NOT NULL,
     id             TEXT    NOT NULL,
     type           TEXT    NOT NULL,
     data           TEXT    NOT NULL,
     metadata       TEXT    NOT NULL,
     occurred_at    TEXT    NOT NULL,
     recorded_at    TEXT    NOT NULL
   ) STRICT;
   CREATE UNIQUE INDEX events_stream ON events (stream_id, stream_version);
   CREATE UNIQUE INDEX events_id ON events (id);
   CREATE TABLE snapshots (
     stream_id        TEXT    NOT NULL,
     name             TEXT    NOT NULL,
     stream_version   INTEGER NOT NULL,
     snapshot_version INTEGER NOT NULL,
     state            TEXT    NOT NULL,
     taken_at         TEXT    NOT NULL,
     PRIMARY KEY (stream_id, name)
   ) STRICT, WITHOUT ROWID;`,
  // 2: subject keys of personal data (docs/lifecycle.md#forget-a-person).
  SUBJECT_KEYS_SCHEMA,
  // 3: retention and deletion per stream (retention.ts). scavenged_version keeps a stream's version
  // once a scavenge has removed its newest events.
  `CREATE TABLE stream_lifecycles (
     stream_id         TEXT    PRIMARY KEY,
     max_count         INTEGER,
     max_age_seconds   INTEGER,
     truncate_before   INTEGER,
     deleted_version   INTEGER,
     tombstoned        INTEGER NOT NULL DEFAULT 0,
     scavenged_version INTEGER NOT NULL DEFAULT 0
   ) STRICT, WITHOUT ROWID;`,
  // 4: category and event-type reads from $all through an index each. Every SQLite index ends
  // with the rowid (= position), so each is ordered by (category or type, position) without
  // naming position (naming it would store it twice).
  `CREATE INDEX events_category ON events (${CATEGORY_SQL});
   CREATE INDEX events_type ON events (type);`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export function migrate(db: Database): void {
  db.transaction(() => {
    const current = db.pragma('user_version', { simple: true }) as number;
    if (current > SCHEMA_VERSION) throw new SchemaTooNewError('sqlite', current, SCHEMA_VERSION);
    for (let version = current; version < SCHEMA_VERSION; version++) {
      db.exec(MIGRATIONS[version] as string);
    }
    if (current !== SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}
