/**
 * Design §5: global order that never skips, under real concurrency. Several store instances
 * (separate pools, so their commits race in PostgreSQL), 32 writers, some append transactions
 * held open with pg_sleep, while a live subscriber and a polling readAll loop watch.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../../../src/index.js';
import { openPostgresStore, type PostgresEventStore } from '../../../src/postgres.js';
import { collect, event, sleep, take } from '../../helpers/collect.js';
import { freshSchemaUrl, requirePostgres } from '../../helpers/postgres.js';

const reachable = await requirePostgres();
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

const STORES = 8;
const WRITERS_PER_STORE = 4;
const RUN_MS = 3000;

describe.skipIf(!reachable)('postgres global order', () => {
  it('never lets a reader miss or repeat an event while 32 writers race and some commits are held open', async () => {
    const { url, drop } = await freshSchemaUrl();
    cleanups.push(drop);
    let held = 0;
    const writersStores: PostgresEventStore[] = [];
    for (let s = 0; s < STORES; s++) {
      const store = await openPostgresStore({
        url,
        poolSize: 2,
        testHooks: {
          // Roughly one commit in eight stays open 20–120 ms after its rows are inserted.
          beforeCommit: async (tx) => {
            if (Math.random() < 0.125) {
              held++;
              await tx`SELECT pg_sleep(${0.02 + Math.random() * 0.1})`;
            }
          },
        },
      });
      writersStores.push(store);
      cleanups.push(() => store.close());
    }
    const reader = await openPostgresStore({ url, poolSize: 2, pollMs: 50 });
    cleanups.push(() => reader.close());

    // A polling reader that checks the "never lower than seen" rule on every page.
    let stopPolling = false;
    let pollingViolations = 0;
    let polledCount = 0;
    const polling = (async () => {
      let highest = 0n;
      let from = 0n;
      while (!stopPolling) {
        const page = await collect(reader.readAll({ from, limit: 200 }));
        for (const e of page) {
          if (e.position <= highest) pollingViolations++;
          highest = e.position > highest ? e.position : highest;
          polledCount++;
        }
        if (page.length) from = (page[page.length - 1] as RecordedEvent).position;
        else await sleep(2);
      }
    })();

    // A live subscriber, started before any write.
    const live: RecordedEvent[] = [];
    const controller = new AbortController();
    const subscriber = (async () => {
      for await (const e of reader.subscribe({ signal: controller.signal })) live.push(e);
    })();

    const deadline = Date.now() + RUN_MS;
    let acknowledged = 0;
    await Promise.all(
      writersStores.flatMap((store, s) =>
        Array.from({ length: WRITERS_PER_STORE }, async (_, w) => {
          for (let i = 0; Date.now() < deadline; i++) {
            // Half the writers share streams across stores, so group commits mix contended streams.
            const stream = w % 2 ? `own-${s}-${w}` : `shared-${w}`;
            const count = 1 + (i % 3);
            await store.append(
              stream,
              Array.from({ length: count }, (_, k) => event('E', { s, w, i, k })),
            );
            acknowledged += count;
          }
        }),
      ),
    );
    expect(held).toBeGreaterThan(5);

    const all = await collect(reader.readAll());
    expect(all).toHaveLength(acknowledged);
    // Wait for the subscriber and the poller to reach the end of the log.
    const head = (all[all.length - 1] as RecordedEvent).position;
    for (let waited = 0; (live.at(-1)?.position ?? 0n) < head && waited < 10_000; waited += 20) await sleep(20);
    stopPolling = true;
    controller.abort();
    await Promise.all([polling, subscriber]);

    expect(pollingViolations).toBe(0);
    expect(polledCount).toBe(all.length);
    expect(live.map((e) => e.id)).toEqual(all.map((e) => e.id));
    for (let i = 1; i < all.length; i++) expect((all[i] as RecordedEvent).position > (all[i - 1] as RecordedEvent).position).toBe(true);
    // Versions stay contiguous on the streams every store wrote to.
    for (let w = 0; w < WRITERS_PER_STORE; w += 2) {
      const versions = (await collect(reader.read(`shared-${w}`))).map((e) => e.streamVersion);
      expect(versions).toEqual(versions.map((_, i) => i + 1));
    }
    // And a late subscriber replays exactly the same log.
    expect((await take(reader.subscribe(), all.length)).map((e) => e.id)).toEqual(all.map((e) => e.id));
  }, 60_000);
});
