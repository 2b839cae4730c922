/**
 * Issue 10 item 6: the store works whatever the database's default isolation level. Each level
 * gets its own scratch database (created and dropped here; the shared `test` database is never
 * altered), with `default_transaction_isolation` set on it, and three store instances that open
 * the schema at once and append concurrently, so the ordering lock is contended.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import { openPostgresStore, type PostgresEventStore } from '../../../src/postgres.js';
import { collect, event } from '../../helpers/collect.js';
import { PG_URL, requirePostgres } from '../../helpers/postgres.js';

const reachable = await requirePostgres();

async function withDatabase(isolation: string, run: (url: string) => Promise<void>): Promise<void> {
  const name = `logline_iso_${randomBytes(5).toString('hex')}`;
  const admin = postgres(PG_URL, { max: 1, onnotice: () => {} });
  try {
    await admin`CREATE DATABASE ${admin(name)}`;
    await admin.unsafe(`ALTER DATABASE ${name} SET default_transaction_isolation = '${isolation}'`);
    const url = new URL(PG_URL);
    url.pathname = `/${name}`;
    url.searchParams.set('schema', 'iso');
    await run(url.toString());
  } finally {
    await admin`DROP DATABASE IF EXISTS ${admin(name)} WITH (FORCE)`;
    await admin.end({ timeout: 5 });
  }
}

describe.skipIf(!reachable)('postgres store under a stricter default isolation level', () => {
  for (const isolation of ['repeatable read', 'serializable']) {
    it(`opens, appends and reads when the database defaults to ${isolation}`, async () => {
      await withDatabase(isolation, async (url) => {
        // Three instances migrate one new schema at once; one of them commits through a
        // transaction held open a little, so the others queue on the ordering lock behind it.
        const stores: PostgresEventStore[] = await Promise.all([
          openPostgresStore({ url, poolSize: 2 }),
          openPostgresStore({ url, poolSize: 2 }),
          openPostgresStore({ url, poolSize: 2, testHooks: { beforeCommit: (tx) => tx`SELECT pg_sleep(0.005)`.then(() => {}) } }),
        ]);
        try {
          const [level] = await (stores[0] as PostgresEventStore).sql<{ transaction_isolation: string }[]>`SHOW transaction_isolation`;
          expect(level?.transaction_isolation).toBe(isolation);
          const rounds = 15;
          for (let round = 0; round < rounds; round++) {
            const results = await Promise.all(
              stores.flatMap((store, s) => [
                store.append(`shared-${round % 3}`, [event('Any', { s, round })]),
                store.append(`own-${s}`, [event('Mine', { s, round })], { expectedVersion: round }),
              ]),
            );
            expect(results).toHaveLength(6);
          }
          const store = stores[0] as PostgresEventStore;
          const log = await collect(store.readAll());
          expect(log.map((e) => e.position)).toEqual(log.map((_, i) => BigInt(i + 1)));
          expect(log).toHaveLength(rounds * 6);
          for (let s = 0; s < 3; s++) {
            const own = await collect(store.read(`own-${s}`));
            expect(own.map((e) => (e.data as { round: number }).round)).toEqual(Array.from({ length: rounds }, (_, i) => i));
          }
          expect((await store.stats()).events).toBe(rounds * 6);
          for (let i = 1; i < log.length; i++)
            expect((log[i] as { recordedAt: string }).recordedAt >= (log[i - 1] as { recordedAt: string }).recordedAt).toBe(true);
        } finally {
          await Promise.all(stores.map((store) => store.close()));
        }
      });
    }, 60_000);
  }
});
