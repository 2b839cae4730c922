/**
 * A live subscription survives its connections being killed (pg_terminate_backend on every
 * session of the store, the LISTEN connection included) and resumes with nothing lost or repeated;
 * appends cut off by a kill are retried by the store itself, never failed to the caller.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../../../src/index.js';
import { openPostgresStore } from '../../../src/postgres.js';
import { collect, event, sleep } from '../../helpers/collect.js';
import { freshSchemaUrl, PG_URL, requirePostgres } from '../../helpers/postgres.js';

const reachable = await requirePostgres();
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

describe.skipIf(!reachable)('postgres dropped connections', () => {
  it('keeps a subscription and appends going across pg_terminate_backend', async () => {
    const { url, schema, drop } = await freshSchemaUrl();
    cleanups.push(drop);
    const writer = await openPostgresStore({ url, poolSize: 2 });
    cleanups.push(() => writer.close());
    // Polling out of the way: only NOTIFY (re-LISTENed after each kill) wakes this reader in time.
    const reader = await openPostgresStore({ url, poolSize: 2, pollMs: 60_000 });
    cleanups.push(() => reader.close());
    // An outside admin connection that kills the store's sessions.
    const { default: postgres } = await import('postgres');
    const admin = postgres(PG_URL, { max: 1, onnotice: () => {} });
    cleanups.push(() => admin.end({ timeout: 1 }));
    const killAll = async () => {
      // Filter first (MATERIALIZED), so pg_terminate_backend only ever sees this store's sessions.
      const killed = await admin<{ ok: boolean }[]>`
        WITH mine AS MATERIALIZED (
          SELECT pid FROM pg_stat_activity WHERE application_name = ${`logline:${schema}`} AND pid <> pg_backend_pid())
        SELECT pg_terminate_backend(pid) AS ok FROM mine`;
      return killed.filter((k) => k.ok).length;
    };

    const live: RecordedEvent[] = [];
    const controller = new AbortController();
    const subscriber = (async () => {
      for await (const e of reader.subscribe({ signal: controller.signal })) {
        live.push(e);
        if (live.length % 50 === 0) await sleep(5); // a consumer that is sometimes mid-page when the kill lands
      }
    })();

    let stopWriting = false;
    const ids: string[] = [];
    const failures: unknown[] = [];
    const writing = (async () => {
      for (let i = 0; !stopWriting; i++) {
        const events = [event('E', { i }), event('F', { i })].map((e) => ({ ...e, id: crypto.randomUUID() }));
        // An append cut off by a kill is re-sent by the store itself (idempotent): the caller sees no failure.
        try {
          await writer.append(`w-${i % 7}`, events);
        } catch (error) {
          failures.push(error);
          continue;
        }
        ids.push(...events.map((e) => e.id));
        await sleep(2);
      }
    })();

    // Each kill lands once the writer has appended 40 more times (however loaded the machine).
    const progress = async (appends: number) => {
      const target = ids.length + 2 * appends;
      for (let waited = 0; ids.length < target && waited < 20_000; waited += 20) await sleep(20);
    };
    let killed = 0;
    for (let round = 0; round < 3; round++) {
      await progress(40);
      killed += await killAll();
    }
    await progress(40);
    stopWriting = true;
    await writing;
    expect(killed).toBeGreaterThanOrEqual(6); // both pools and the LISTEN connection, each round
    expect(failures.map(String)).toEqual([]);

    const all = await collect(writer.readAll());
    expect(all.map((e) => e.id).sort()).toEqual([...ids].sort());
    expect(all.length).toBeGreaterThan(100);
    for (let waited = 0; live.length < all.length && waited < 10_000; waited += 20) await sleep(20);
    expect(live.map((e) => e.id)).toEqual(all.map((e) => e.id));
    // The LISTEN connection came back: a NOTIFY from the other store wakes the reader within
    // milliseconds (its poll is a minute away).
    const latencies: number[] = [];
    for (let i = 0; i < 5; i++) {
      const start = performance.now();
      await writer.append('probe', [event('Probe', { i })]);
      while (live.length < all.length + i + 1) {
        if (performance.now() - start > 5000) throw new Error(`probe ${i} not delivered within 5 s: NOTIFY did not wake the reader`);
        await sleep(2);
      }
      latencies.push(performance.now() - start);
    }
    expect(Math.max(...latencies)).toBeLessThan(1000);
    controller.abort();
    await subscriber;
  }, 30_000);
});
