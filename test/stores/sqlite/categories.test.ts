/**
 * Category and type reads on SQLite go through their indexes (docs/store.md, categories), and a
 * database written before those indexes existed gains them when a store opens it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../../src/sqlite.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../../../src/stores/sqlite/schema.js';
import { pageQuery } from '../../../src/stores/sqlite/store.js';
import { collect } from '../../helpers/collect.js';

describe('SQLite category and type reads', () => {
  const dir = mkdtempSync(join(tmpdir(), 'logline-categories-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('upgrades a database from before the indexes: both are built and reads answer from them', async () => {
    const path = join(dir, 'old.db');
    const old = new Database(path);
    old.exec(MIGRATIONS[0] as string);
    old.pragma('user_version = 1');
    // 3,000 events in one statement, as the first schema stored them: streams user-0..9, order-0..9, and 'user'.
    old.exec(`WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 3000)
      INSERT INTO events (position, stream_id, stream_version, id, type, data, metadata, occurred_at, recorded_at)
      SELECT n, CASE WHEN n % 21 = 0 THEN 'user' WHEN n % 2 THEN 'user-' || (n % 10) ELSE 'order-' || (n % 10) END, n,
             lower(hex(randomblob(16))), CASE WHEN n % 3 THEN 'Often' ELSE 'Rare' END, '{}', '{}',
             '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'
      FROM g`);
    old.close();

    const store = await openSqliteStore({ path });
    try {
      expect(store.database.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      const indexes = store.database.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'").pluck().all();
      expect(indexes).toEqual(expect.arrayContaining(['events_category', 'events_type']));
      const all = await collect(store.readAll());
      const users = await collect(store.readAll({ category: 'user' }));
      expect(users.map((e) => e.position)).toEqual(all.filter((e) => e.streamId.startsWith('user-')).map((e) => e.position));
      expect(users.length).toBeGreaterThan(1000);
      const rare = await collect(store.readAll({ types: ['Rare'] }));
      expect(rare.map((e) => e.position)).toEqual(all.filter((e) => e.type === 'Rare').map((e) => e.position));
    } finally {
      await store.close();
    }
  });

  it('plans every category and type read as a walk of its index in position order, never a sort', async () => {
    const store = await openSqliteStore({ path: join(dir, 'plans.db') });
    try {
      const plan = (filter: Parameters<typeof pageQuery>[0]) => {
        const { text, params, perType } = pageQuery(filter);
        const args = perType ? ['T', 0, ...params, 500] : [0, ...params, 500];
        return (store.database.prepare(`EXPLAIN QUERY PLAN ${text}`).all(...args) as Array<{ detail: string }>)
          .map((r) => r.detail)
          .join(' | ');
      };
      const filters: Array<[Parameters<typeof pageQuery>[0], string]> = [
        [{ types: undefined, streamPrefix: undefined, category: 'user' }, 'events_category'],
        [{ types: undefined, streamPrefix: 'user-1', category: 'user' }, 'events_'],
        [{ types: ['A'], streamPrefix: undefined, category: undefined }, 'events_type'],
        [{ types: ['A', 'B'], streamPrefix: undefined, category: undefined }, 'events_type'],
        [{ types: ['A', 'B'], streamPrefix: 'x-', category: undefined }, 'events_type'],
        [{ types: ['A', 'B'], streamPrefix: undefined, category: 'user' }, 'events_category'],
      ];
      for (const [filter, index] of filters) {
        const detail = plan(filter);
        expect(detail, JSON.stringify(filter)).toMatch(new RegExp(`SEARCH events USING (COVERING )?INDEX ${index}`));
        expect(detail, JSON.stringify(filter)).not.toMatch(/TEMP B-TREE/);
      }
    } finally {
      await store.close();
    }
  });
});
