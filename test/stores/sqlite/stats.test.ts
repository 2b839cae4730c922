/**
 * stats() on a large SQLite store never blocks the event loop (issue 10, item 10: /metrics calls
 * it on every scrape). CPU time is measured between event-loop turns, so the check holds on a
 * busy machine: what matters is how long one synchronous stretch computes, not the wall clock.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../../src/sqlite.js';

const EVENTS = 500_000;
const PER_STREAM = 10;

/** The longest CPU time (ms) spent between two turns of the event loop while `work` runs. */
async function longestStretch(work: () => Promise<unknown>): Promise<number> {
  let longest = 0;
  let last = process.cpuUsage();
  let running = true;
  const tick = () => {
    const used = process.cpuUsage(last);
    longest = Math.max(longest, (used.user + used.system) / 1000);
    last = process.cpuUsage();
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  try {
    await work();
  } finally {
    running = false;
  }
  tick();
  return longest;
}

describe('SQLite stats() on a large store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'logline-stats-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(`${EVENTS.toLocaleString('en-US')} events: counts are exact and no call blocks the event loop`, async () => {
    const file = join(dir, 'big.db');
    await (await openSqliteStore({ path: file })).close();
    // Filled directly (the store's append path is not under test): 50,000 streams of 10 events.
    const db = new Database(file);
    db.prepare(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
       INSERT INTO events (position, stream_id, stream_version, id, type, data, metadata, occurred_at, recorded_at)
       SELECT i, 'stream-' || ((i - 1) / ${PER_STREAM}), ((i - 1) % ${PER_STREAM}) + 1,
              printf('00000000-0000-4000-8000-%012x', i), 'Filled', '{}', '{}', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'
       FROM n`,
    ).run(EVENTS);
    db.close();

    const store = await openSqliteStore({ path: file });
    try {
      let stats = { events: 0, streams: 0, headPosition: 0n };
      const first = await longestStretch(async () => {
        stats = await store.stats();
      });
      expect(stats).toEqual({ events: EVENTS, streams: EVENTS / PER_STREAM, headPosition: BigInt(EVENTS) });
      // A full-table count takes well over 50 ms of CPU here; one slice of the catch-up a few ms.
      expect(first).toBeLessThan(40);

      await store.append('stream-0', [{ type: 'More', data: {} }]);
      await store.append('fresh-1', [{ type: 'More', data: {} }]);
      const again = await longestStretch(async () => {
        stats = await store.stats();
      });
      expect(stats).toEqual({ events: EVENTS + 2, streams: EVENTS / PER_STREAM + 1, headPosition: BigInt(EVENTS + 2) });
      expect(again).toBeLessThan(10);
    } finally {
      await store.close();
    }
  }, 60_000);
});
