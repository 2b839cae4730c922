/** Read-model table names against PostgreSQL's 63-byte identifier limit (issue 10, item 13). */
import type postgres from 'postgres';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/index.js';
import type { PostgresEventStore } from '../../src/postgres.js';
import { defineProjection, startProjection, waitForPosition } from '../../src/projections.js';
import { event } from '../helpers/collect.js';
import { postgresBackend, postgresReachable, type TestStore } from './stores.js';

const handlers = { A: () => {} };

describe('read-model table names', () => {
  it('refuses a table whose versioned name would exceed 63 bytes, with a typed error', () => {
    // 61 + '_v1' = 64 bytes: PostgreSQL would cut it to 63, the same cut as '_v2'.
    expect(() => defineProjection({ name: 'long', tables: ['t'.repeat(61)], handlers })).toThrow(InvalidArgumentError);
    expect(() => defineProjection({ name: 'long', tables: ['t'.repeat(62)], version: 2, handlers })).toThrow(/exceeds 63 bytes/);
    // The suffix grows with the version: 60 characters fit up to version 9.
    expect(defineProjection({ name: 'long', tables: ['t'.repeat(60)], version: 9, handlers }).tables).toEqual(['t'.repeat(60)]);
    expect(() => defineProjection({ name: 'long', tables: ['t'.repeat(60)], version: 10, handlers })).toThrow(InvalidArgumentError);
  });
});

describe.skipIf(!postgresReachable)('read-model table names on postgres', () => {
  let opened: TestStore[] = [];
  afterEach(async () => {
    for (const t of opened) await t.dispose();
    opened = [];
  });

  it('two versions of a table of the longest allowed name are two tables; the switch drops only the old one', async () => {
    const t = await postgresBackend.open();
    opened.push(t);
    const store = t.store as PostgresEventStore;
    const table = 'x'.repeat(60);
    const counting = (version: number) =>
      defineProjection<postgres.TransactionSql>({
        name: 'longnames',
        version,
        tables: [table],
        setup: async ({ tx, table: physical }) => {
          await tx.unsafe(`CREATE TABLE ${physical(table)} (type text PRIMARY KEY, n integer NOT NULL)`);
        },
        handlers: {
          A: async (e, { tx, table: physical }) => {
            await tx.unsafe(`INSERT INTO ${physical(table)} AS t (type, n) VALUES ($1, 1) ON CONFLICT (type) DO UPDATE SET n = t.n + 1`, [
              e.type,
            ]);
          },
        },
      });
    await store.append('s', [event('A'), event('A')]);
    const v1 = await startProjection(store, counting(1));
    await waitForPosition(v1, 2n);
    const v2 = await startProjection(store, counting(2));
    await v2.active;
    await v1.stop();
    const tables = await store.sql<{ name: string }[]>`
      SELECT table_name AS name FROM information_schema.tables WHERE table_schema = ${store.schema} AND table_name LIKE 'xxx%'
      AND table_type = 'BASE TABLE'`;
    expect(tables.map((row) => row.name)).toEqual([`${table}_v2`]);
    const [row] = await store.sql.unsafe(`SELECT n FROM ${store.schema}.${table} WHERE type = 'A'`);
    expect(row?.n).toBe(2);
    await v2.stop();
  });
});
