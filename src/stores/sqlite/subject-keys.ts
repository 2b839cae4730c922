/**
 * The SQLite key table of personal data (docs/lifecycle.md#forget-a-person): one key per subject,
 * raw or wrapped by the master key, and the streams that hold each subject's events (forget drops
 * their snapshots). Forget overwrites the key and drops the snapshots with `secure_delete` on,
 * then checkpoints the WAL with TRUNCATE, so the key bytes leave both files.
 */
import type { Database } from 'better-sqlite3';
import type { LoadedKey, StoredKey, SubjectKeyRow } from '../../core/personal-data.js';
import type { ForgetResult, SubjectStatus } from '../../core/types.js';

/** Migration 2 (src/stores/sqlite/schema.ts). */
export const SUBJECT_KEYS_SCHEMA = `
  CREATE TABLE subject_keys (
    subject      TEXT PRIMARY KEY,
    key          BLOB,
    created_at   TEXT NOT NULL,
    forgotten_at TEXT
  ) STRICT, WITHOUT ROWID;
  CREATE TABLE subject_streams (
    subject   TEXT NOT NULL,
    stream_id TEXT NOT NULL,
    PRIMARY KEY (subject, stream_id)
  ) STRICT, WITHOUT ROWID;`;

/** The KeyTable of src/core/personal-data.ts, answering synchronously (the store's retry check needs that). */
export interface SqliteKeyTable {
  load(subjects: string[], stream?: string): Map<string, LoadedKey>;
  insert(keys: Map<string, Uint8Array>, streams: [string, string][], at: string): void;
  forget(subject: string, at: string): ForgetResult | undefined;
  status(subject: string): SubjectStatus | undefined;
  list(after: string, limit: number): SubjectKeyRow[];
  restore(rows: SubjectKeyRow[]): void;
}

type KeyRow = [string, Uint8Array | null, string, string | null];

export function createSqliteKeyTable(db: Database): SqliteKeyTable {
  const sql = {
    load: db
      .prepare('SELECT subject, key, created_at, forgotten_at FROM subject_keys WHERE subject IN (SELECT value FROM json_each(?))')
      .raw(),
    one: db.prepare('SELECT subject, key, created_at, forgotten_at FROM subject_keys WHERE subject = ?').raw(),
    insertKey: db.prepare('INSERT INTO subject_keys (subject, key, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING'),
    page: db.prepare('SELECT subject, key, created_at, forgotten_at FROM subject_keys WHERE subject > ? ORDER BY subject LIMIT ?').raw(),
    streams: db
      .prepare(
        'SELECT subject, stream_id FROM subject_streams WHERE subject IN (SELECT value FROM json_each(?)) ORDER BY subject, stream_id',
      )
      .raw(),
    restoreKey: db.prepare('INSERT INTO subject_keys (subject, key, created_at, forgotten_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING'),
    insertStream: db.prepare('INSERT INTO subject_streams (subject, stream_id) VALUES (?, ?) ON CONFLICT DO NOTHING'),
    hasStream: db.prepare('SELECT 1 FROM subject_streams WHERE subject = ? AND stream_id = ?').pluck(),
    // Same size first, so the page holds zeros where the key was, then none at all.
    overwrite: db.prepare('UPDATE subject_keys SET key = zeroblob(length(key)) WHERE subject = ?'),
    destroy: db.prepare('UPDATE subject_keys SET key = NULL, forgotten_at = ? WHERE subject = ?'),
    dropSnapshots: db.prepare('DELETE FROM snapshots WHERE stream_id IN (SELECT stream_id FROM subject_streams WHERE subject = ?)'),
  };
  const toStored = ([, key, createdAt, forgottenAt]: KeyRow): StoredKey => ({
    key: key ?? undefined,
    createdAt,
    forgottenAt: forgottenAt ?? undefined,
  });
  const insert = db.transaction((keys: Map<string, Uint8Array>, streams: [string, string][], at: string) => {
    for (const [subject, key] of keys) sql.insertKey.run(subject, key, at);
    for (const [subject, stream] of streams) sql.insertStream.run(subject, stream);
  });
  const restore = db.transaction((rows: SubjectKeyRow[]) => {
    for (const row of rows) {
      sql.restoreKey.run(row.subject, row.key ?? null, row.createdAt, row.forgottenAt ?? null);
      for (const stream of row.streams) sql.insertStream.run(row.subject, stream);
    }
  });
  const forget = db.transaction((subject: string, at: string): ForgetResult | undefined => {
    const row = sql.one.get(subject) as KeyRow | undefined;
    if (!row) return undefined;
    if (row[3] !== null) return { subject, forgottenAt: row[3], alreadyForgotten: true };
    sql.overwrite.run(subject);
    sql.destroy.run(at, subject);
    sql.dropSnapshots.run(subject);
    return { subject, forgottenAt: at, alreadyForgotten: false };
  });
  return {
    load(subjects, stream) {
      const rows = sql.load.all(JSON.stringify(subjects)) as KeyRow[];
      return new Map(
        rows.map((row) => [
          row[0],
          { ...toStored(row), ...(stream !== undefined && { streamNoted: sql.hasStream.get(row[0], stream) !== undefined }) },
        ]),
      );
    },
    insert(keys, streams, at) {
      insert.immediate(keys, streams, at);
    },
    forget(subject, at) {
      const previous = db.pragma('secure_delete', { simple: true }) as number;
      db.pragma('secure_delete = ON');
      try {
        const result = forget.immediate(subject, at);
        // The WAL still holds the page as it was before: copy the new one into the main file
        // and cut the WAL to nothing (other processes' open reads can hold this back).
        // A reader in another process can hold the checkpoint back: a repeated forget tries again.
        if (result) db.pragma('wal_checkpoint(TRUNCATE)');
        return result;
      } finally {
        db.pragma(`secure_delete = ${previous === 2 ? 'FAST' : previous}`);
      }
    },
    list(after, limit) {
      const rows = sql.page.all(after, limit) as KeyRow[];
      const streams = new Map<string, string[]>();
      for (const [subject, stream] of sql.streams.all(JSON.stringify(rows.map((row) => row[0]))) as [string, string][]) {
        streams.set(subject, [...(streams.get(subject) ?? []), stream]);
      }
      return rows.map((row) => ({ subject: row[0], ...toStored(row), streams: streams.get(row[0]) ?? [] }));
    },
    restore(rows) {
      restore.immediate(rows);
    },
    status(subject) {
      const row = sql.one.get(subject) as KeyRow | undefined;
      if (!row) return undefined;
      return { subject, createdAt: row[2], ...(row[3] === null ? {} : { forgottenAt: row[3] }) };
    },
  };
}
