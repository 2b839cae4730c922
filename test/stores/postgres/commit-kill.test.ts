/**
 * The server kills the appending session in the middle of a commit (pg_terminate_backend, as an
 * operator, a failover or an idle-session reaper would): the coalesced batch that was committing
 * is rolled back whole, the store re-sends it on a new connection, and every caller gets its
 * append acknowledged exactly once, with nothing lost or doubled.
 *
 * The commit is held open deterministically by a deferred constraint trigger (it runs at COMMIT)
 * that sleeps for events of type 'SlowCommit'; only sessions of this test's schema are killed.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { AppendResult } from '../../../src/index.js';
import { openPostgresStore } from '../../../src/postgres.js';
import { collect, event, sleep } from '../../helpers/collect.js';
import { freshSchemaUrl, PG_URL, requirePostgres } from '../../helpers/postgres.js';

const reachable = await requirePostgres();
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

describe.skipIf(!reachable)('postgres: appending session terminated mid-commit', () => {
  it('re-sends the coalesced batch: every append acknowledged once, stored once, whole', async () => {
    const { url, schema, drop } = await freshSchemaUrl();
    cleanups.push(drop);
    const store = await openPostgresStore({ url, poolSize: 2 });
    cleanups.push(() => store.close());
    const { default: postgres } = await import('postgres');
    const admin = postgres(PG_URL, { max: 1, onnotice: () => {} });
    cleanups.push(() => admin.end({ timeout: 1 }));
    const S = admin(schema);
    await admin`CREATE FUNCTION ${S}.slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN PERFORM pg_sleep(0.4); RETURN NULL; END $$`;
    await admin`CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON ${S}.events
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.type = 'SlowCommit')
                EXECUTE FUNCTION ${S}.slow_commit()`;
    /** Terminates this schema's sessions that are sleeping in the commit trigger; waits for one. */
    const killCommitting = async (): Promise<number> => {
      for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(10)) {
        const killed = await admin<{ ok: boolean }[]>`
          WITH committing AS MATERIALIZED (
            SELECT pid FROM pg_stat_activity
            WHERE application_name = ${`logline:${schema}`} AND wait_event = 'PgSleep' AND pid <> pg_backend_pid())
          SELECT pg_terminate_backend(pid) AS ok FROM committing`;
        if (killed.some((k) => k.ok)) return killed.length;
      }
      throw new Error('no appending session of this schema was seen committing within 10 s');
    };

    await store.append('before', [event('Plain')]);
    for (let round = 0; round < 2; round++) {
      // Six appends in one turn of the event loop: one coalesced statement, one commit.
      const appends: Array<{ stream: string; ids: string[]; result: Promise<AppendResult> }> = [];
      for (let a = 0; a < 6; a++) {
        const stream = `round-${round}-${a}`;
        const events = [event(a === 0 ? 'SlowCommit' : 'Plain', { a }), event('Plain', { a })].map((e) => ({
          ...e,
          id: crypto.randomUUID(),
        }));
        const result = store.append(stream, events, { expectedVersion: 'no_stream' });
        appends.push({ stream, ids: events.map((e) => e.id), result });
      }
      const settled = Promise.allSettled(appends.map((a) => a.result));
      expect(await killCommitting()).toBeGreaterThanOrEqual(1);
      const outcomes = await settled;
      // No caller sees the kill: the store re-sent the batch, which was not committed.
      expect(outcomes.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason))).toEqual([]);
      for (const [i, { stream, ids }] of appends.entries()) {
        const stored = await collect(store.read(stream));
        expect(stored.map((e) => e.id)).toEqual(ids);
        expect(stored.map((e) => e.streamVersion)).toEqual([1, 2]);
        expect((outcomes[i] as PromiseFulfilledResult<AppendResult>).value).toEqual({ streamVersion: 2, position: stored[1]?.position });
      }
    }
    // The log has no gap and no duplicate across the kills.
    const all = await collect(store.readAll());
    expect(all).toHaveLength(1 + 2 * 6 * 2);
    expect(all.map((e) => e.position)).toEqual(all.map((_, i) => BigInt(i + 1)));
    expect(new Set(all.map((e) => e.id)).size).toBe(all.length);
  }, 30_000);
});
