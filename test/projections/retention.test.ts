/**
 * A projection across retention, deletes and scavenges (issue 13; docs/lifecycle.md#retention-and-deletion):
 * it never stalls on the holes, its checkpoint stays valid when the event at it is removed, and a
 * rebuild after a scavenge sees exactly the events still visible.
 */
import type { Database } from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { defineProjection, startProjection, waitForPosition } from '../../src/projections.js';
import type { SqliteEventStore } from '../../src/sqlite.js';
import { event } from '../helpers/collect.js';
import { sqliteBackend, type TestStore } from './stores.js';

/** Counts events per stream. */
const perStream = (version = 1) =>
  defineProjection<Database>({
    name: 'per_stream',
    version,
    tables: ['stream_counts'],
    setup: ({ tx, table }) => tx.exec(`CREATE TABLE ${table('stream_counts')} (stream TEXT PRIMARY KEY, n INTEGER NOT NULL)`),
    handlers: {
      Tick: (e, { tx, table }) => {
        tx.prepare(`INSERT INTO ${table('stream_counts')} (stream, n) VALUES (?, 1) ON CONFLICT (stream) DO UPDATE SET n = n + 1`).run(
          e.streamId,
        );
      },
    },
  });

const countsOf = (db: Database) =>
  Object.fromEntries(
    (db.prepare('SELECT stream, n FROM stream_counts ORDER BY stream').raw().all() as [string, number][]).map(([s, n]) => [s, n]),
  );

const ticks = (n: number) => Array.from({ length: n }, () => event('Tick'));

describe('a projection across retention, deletes and scavenges (sqlite)', () => {
  let opened: TestStore | undefined;
  afterEach(async () => {
    await opened?.dispose();
    opened = undefined;
  });

  it('runs on across the holes, resumes from a removed checkpoint event, and a rebuild sees what is visible', async () => {
    opened = await sqliteBackend.open();
    const store = opened.store as SqliteEventStore;
    const projection = await startProjection(store, perStream());
    await store.append('a-1', ticks(4));
    await store.append('b-1', ticks(3));
    let { position } = await store.append('c-1', ticks(2));
    await waitForPosition(projection, position);
    await store.setStreamMetadata('a-1', { maxCount: 1 });
    await store.deleteStream('b-1');
    expect((await store.scavenge()).removed).toBe(6);
    // Live across the scavenge: new events after the holes arrive.
    ({ position } = await store.append('b-1', ticks(1)));
    await waitForPosition(projection, position, { timeout: 5000 });
    expect(countsOf(store.database)).toEqual({ 'a-1': 4, 'b-1': 4, 'c-1': 2 });
    await projection.stop();

    // The checkpoint's own event goes: a restart resumes after it, nothing twice, nothing missed.
    await store.deleteStream('b-1');
    const checkpoint = store.database.prepare("SELECT position FROM logline_checkpoints WHERE name = 'per_stream@v1'").pluck().get();
    expect(BigInt(checkpoint as number)).toBe(position);
    await store.append('c-1', ticks(1));
    expect((await store.scavenge()).removed).toBe(1);
    expect(store.database.prepare('SELECT count(*) FROM events WHERE position = ?').pluck().get(checkpoint)).toBe(0);
    const again = await startProjection(store, perStream());
    ({ position } = await store.append('c-1', ticks(1)));
    await waitForPosition(again, position, { timeout: 5000 });
    expect(countsOf(store.database)).toEqual({ 'a-1': 4, 'b-1': 4, 'c-1': 4 });
    await again.stop();

    // A rebuild (version 2) reads the log as it is now: removed and hidden events are not in it.
    const rebuilt = await startProjection(store, perStream(2));
    await rebuilt.active;
    await waitForPosition(rebuilt, position, { timeout: 5000 });
    expect(countsOf(store.database)).toEqual({ 'a-1': 1, 'c-1': 4 });
    await rebuilt.stop();
  });
});
