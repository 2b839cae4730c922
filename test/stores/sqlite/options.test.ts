/**
 * The SQLite settings that durability and liveness rest on, as SQLite reports them in effect:
 * kill -9 cannot tell `synchronous=full` from `off` (the OS page cache survives a killed
 * process), so the defaults and the URL options that set them are checked here directly, on the
 * store's connection and on the writer thread's, which commits the appends.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type EventStore, openStore } from '../../../src/index.js';
import { openSqliteStore, type SqliteEventStore } from '../../../src/sqlite.js';
import { take } from '../../helpers/collect.js';

const dir = mkdtempSync(join(tmpdir(), 'logline-options-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const freshFile = () => join(dir, `s-${files++}.db`);

/** SQLite's numbers for PRAGMA synchronous. */
const SYNCHRONOUS = { off: 0, normal: 1, full: 2, extra: 3 } as const;

/** The settings in effect, the same on both connections: the store's own (reads, projections) and the writer's (appends). */
async function effective(store: EventStore) {
  const sqlite = store as SqliteEventStore;
  const db = sqlite.database;
  const own = {
    synchronous: db.pragma('synchronous', { simple: true }),
    busyTimeout: db.pragma('busy_timeout', { simple: true }),
    journalMode: db.pragma('journal_mode', { simple: true }),
  };
  const writer = {
    synchronous: await sqlite.writerPragma('synchronous'),
    busyTimeout: await sqlite.writerPragma('busy_timeout'),
    journalMode: await sqlite.writerPragma('journal_mode'),
  };
  expect(writer).toEqual(own);
  return own;
}

/**
 * How long a live subscriber takes to see a row written behind the store's back: on the store's
 * own connection, so neither the store's append signal nor the cross-process wake-up (PRAGMA
 * data_version only counts other connections' commits) fires, and only the poll can deliver it.
 */
async function pollDelay(store: EventStore): Promise<number> {
  const db = (store as SqliteEventStore).database;
  const received = take(store.subscribe({ from: 'end' }), 1, 10_000);
  await new Promise((resolve) => setTimeout(resolve, 50)); // the subscriber is asleep, waiting
  const at = new Date().toISOString();
  db.prepare(
    `INSERT INTO events (stream_id, stream_version, id, type, data, metadata, occurred_at, recorded_at)
     VALUES (?, 1, ?, 'Sneaked', '{}', '{}', ?, ?)`,
  ).run(`behind-${randomUUID()}`, randomUUID(), at, at);
  const start = performance.now();
  const [event] = await received;
  expect(event?.type).toBe('Sneaked');
  return performance.now() - start;
}

describe('sqlite: effective settings', () => {
  it('defaults: synchronous=FULL, WAL, a 5 s busy timeout, through openSqliteStore and openStore', async () => {
    for (const store of [await openSqliteStore({ path: freshFile() }), await openStore(`sqlite:${freshFile()}`)]) {
      expect(await effective(store)).toEqual({ synchronous: SYNCHRONOUS.full, busyTimeout: 5000, journalMode: 'wal' });
      await store.close();
    }
  });

  it.each(['off', 'normal', 'full', 'extra'] as const)('synchronous=%s and busyTimeoutMs take effect (options and URL)', async (mode) => {
    const direct = await openSqliteStore({ path: freshFile(), synchronous: mode, busyTimeoutMs: 1234 });
    const byUrl = await openStore(`sqlite:${freshFile()}?synchronous=${mode}&busyTimeoutMs=4321`);
    expect(await effective(direct)).toEqual({ synchronous: SYNCHRONOUS[mode], busyTimeout: 1234, journalMode: 'wal' });
    expect(await effective(byUrl)).toEqual({ synchronous: SYNCHRONOUS[mode], busyTimeout: 4321, journalMode: 'wal' });
    await direct.close();
    await byUrl.close();
  });

  it('pollMs sets how long a subscriber sleeps without a wake-up (options and URL)', async () => {
    // 1500 ms instead of the 250 ms default: a row no wake-up announces is seen only after ~1.5 s.
    const direct = await openSqliteStore({ path: freshFile(), pollMs: 1500 });
    const byUrl = await openStore(`sqlite:${freshFile()}?pollMs=1500`);
    const delays = await Promise.all([pollDelay(direct), pollDelay(byUrl)]);
    for (const delay of delays) {
      expect(delay).toBeGreaterThan(900);
      expect(delay).toBeLessThan(4000);
    }
    // And a short poll is short: the default would take up to 250 ms.
    const quick = await openStore(`sqlite:${freshFile()}?pollMs=20`);
    const quickDelays = [await pollDelay(quick), await pollDelay(quick), await pollDelay(quick)];
    expect(Math.min(...quickDelays)).toBeLessThan(150);
    for (const store of [direct, byUrl, quick]) await store.close();
  });
});
