/**
 * NATS suite: the PostgreSQL suite's scenarios on Logline's NATS store, on the single server
 * (127.0.0.1:4222) and on a 3-node cluster with R3 streams that this suite starts itself, side by
 * side in one run with Logline's PostgreSQL store (a scratch schema in the test database, dropped
 * afterwards; the NATS streams are deleted afterwards too).
 *
 *   npm run bench -- nats [--quick]
 *   LOGLINE_BENCH_NATS_URL=nats://127.0.0.1:4222   LOGLINE_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/test
 */
import { randomUUID } from 'node:crypto';
import type { EventStore, NewEvent } from '../src/index.js';
import { dropLayout, type NatsEventStore, openNatsStore } from '../src/nats.js';
import { openPostgresStore } from '../src/postgres.js';
import { startCluster, type TestServers } from '../test/helpers/nats-servers.js';
import { freshSchemaUrl } from '../test/helpers/postgres.js';
import {
  type AppendLoad,
  benchEvent,
  countEvents,
  flags,
  interleave,
  measureLiveLatency,
  measureRead,
  printScenario,
  type Result,
} from './harness.js';

const NATS_URL = process.env.LOGLINE_BENCH_NATS_URL ?? 'nats://127.0.0.1:4222';
const PG = 'logline-pg';
const SINGLE = 'logline-nats (1 server)';
const R3 = 'logline-nats (R3 cluster)';

interface Contender {
  label: string;
  store: EventStore;
}

let scenario = 0;

/** Each worker owns 7 streams and appends with the exact expected version, as an aggregate would. */
function load(c: Contender, ops: number, per: number, concurrency: number, batches: NewEvent[][]): AppendLoad {
  const versions = new Map<string, number>();
  const tag = ++scenario;
  return {
    label: c.label,
    operations: ops,
    eventsPerOperation: per,
    concurrency,
    operation: async (i, worker) => {
      const stream = `b-${tag}-${worker}-${i % 7}`;
      const result = await c.store.append(stream, batches[i] as NewEvent[], { expectedVersion: versions.get(stream) ?? 'no_stream' });
      versions.set(stream, result.streamVersion);
    },
  };
}

async function appendScenario(contenders: Contender[], title: string, ops: number, per: number, concurrency: number): Promise<Result[]> {
  const batches = Array.from({ length: ops }, (_, a) => Array.from({ length: per }, (_, i) => benchEvent(a * per + i)));
  const results = await interleave(contenders.map((c) => load(c, ops, per, concurrency, batches)));
  printScenario(title, results, PG);
  return results;
}

const best = (results: Result[]): Result[] => {
  const byLabel = new Map<string, Result>();
  for (const r of results)
    if (!byLabel.has(r.label) || r.eventsPerSec > (byLabel.get(r.label) as Result).eventsPerSec) byLabel.set(r.label, r);
  return [...byLabel.values()];
};

async function readStreamScenario(contenders: Contender[]): Promise<void> {
  const length = 10_000;
  const batches = Array.from({ length: length / 100 }, (_, a) => Array.from({ length: 100 }, (_, i) => benchEvent(a * 100 + i)));
  for (const c of contenders) for (const batch of batches) await c.store.append('long', batch);
  const results: Result[] = [];
  for (let round = 0; round < 3; round++) {
    for (const c of contenders) {
      results.push(await measureRead(`${c.label} read()`, () => countEvents(c.store.read('long'))));
    }
  }
  printScenario(
    `read one ${length.toLocaleString('en-US')}-event stream in 100-event appends (3 rounds, best)`,
    best(results),
    `${PG} read()`,
  );
}

async function readAllScenario(contenders: Contender[]): Promise<void> {
  const results: Result[] = [];
  for (let round = 0; round < 2; round++) {
    for (const c of contenders) {
      results.push(await measureRead(`${c.label} readAll()`, () => countEvents(c.store.readAll())));
    }
  }
  const events = results[0]?.events ?? 0;
  printScenario(
    `readAll over everything written so far (~${events.toLocaleString('en-US')} events, 2 rounds, best)`,
    best(results),
    `${PG} readAll()`,
  );
}

/** Appends at a steady rate from one store; a subscriber on a second store of the same backend measures latency. */
const liveLatency = (label: string, writer: EventStore, reader: EventStore): Promise<Result> =>
  measureLiveLatency(label, writer, reader, 500, flags.quick ? 3 : 8);

export async function run(): Promise<void> {
  const tag = randomUUID().slice(0, 8);
  const pg = await freshSchemaUrl();
  let cluster: TestServers | undefined;
  const nats: NatsEventStore[] = [];
  const openNats = async (url: string, suffix: string) => {
    const store = await openNatsStore({
      url: `${url}${url.includes('?') ? '&' : '?'}stream=BENCH_${tag}_${suffix}&prefix=bench_${tag}_${suffix}`,
    });
    nats.push(store);
    return store;
  };
  try {
    cluster = await startCluster();
    const contenders: Contender[] = [
      { label: PG, store: await openPostgresStore({ url: pg.url, poolSize: 10 }) },
      { label: SINGLE, store: await openNats(NATS_URL, 'one') },
      { label: R3, store: await openNats(`${cluster.url}?replicas=3`, 'r3') },
    ];
    await appendScenario(contenders, 'warm-up (ignore)', 200, 1, 16);
    const q = flags.quick;
    await appendScenario(contenders, '1 event per append, 1 writer', q ? 300 : 1000, 1, 1);
    await appendScenario(contenders, '1 event per append, 16 concurrent writers', q ? 2000 : 8000, 1, 16);
    await appendScenario(contenders, '100 events per append, 4 concurrent writers', q ? 40 : 200, 100, 4);
    await readStreamScenario(contenders);
    await readAllScenario(contenders);
    const live: Result[] = [];
    for (const c of contenders) {
      const reader =
        c.label === PG
          ? await openPostgresStore({ url: pg.url, poolSize: 2 })
          : await openNatsStore({
              url: `${c.label === R3 ? cluster.url : NATS_URL}?stream=${(c.store as NatsEventStore).layout.log}&prefix=${(c.store as NatsEventStore).layout.prefix}`,
            });
      live.push(await liveLatency(c.label, c.store, reader));
      await reader.close();
    }
    printScenario('append -> live subscriber in another store, steady 500 events/s', live);
    for (const c of contenders) await c.store.close();
  } finally {
    for (const store of nats) {
      await store.close().catch(() => {});
    }
    // Delete the single server's bench streams (the cluster goes away with its directory).
    const single = nats.find((s) => s.layout.log.endsWith('_one'));
    if (single) {
      const cleaner = await openNatsStore({ url: `${NATS_URL}?stream=${single.layout.log}&prefix=${single.layout.prefix}` });
      await dropLayout(cleaner.manager, cleaner.layout);
      await cleaner.close();
    }
    await cluster?.stop();
    await pg.drop();
  }
}
