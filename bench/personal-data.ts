/**
 * npm run bench -- personal-data [--quick]
 * What declaring personal data costs (docs/lifecycle.md#forget-a-person): the bench order event
 * appended and read plain, and with its `customer` field declared personal (sealed with the
 * subject's key; 1,000 subjects, so the first append of each also creates its key), side by side
 * on SQLite (file, WAL, synchronous=full) and PostgreSQL.
 *   LOGLINE_BENCH_PG_URL=postgres://postgres@127.0.0.1:5432/postgres (a schema is created and dropped)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { type EventStore, type NewEvent, openStore } from '../src/index.js';
import { benchEvent, countEvents, flags, interleave, measureRead, printScenario, type Result } from './harness.js';

const SERVER_URL = process.env.LOGLINE_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const SCHEMA = 'logline_bench_personal';
const PLAIN = 'plain';
const PERSONAL = 'customer declared personal';

const personalEvent = (i: number): NewEvent => ({
  ...benchEvent(i),
  metadata: { correlationId: `c-${i}`, subject: `customer-${i % 1000}`, personal: ['customer'] },
});

async function scenarios(backend: string, store: EventStore): Promise<void> {
  const single = flags.quick ? 500 : 2000;
  const batches = flags.quick ? 40 : 200;
  const makers = [
    [PLAIN, benchEvent],
    [PERSONAL, personalEvent],
  ] as const;
  printScenario(
    `${backend}, 1 event/append, 1 writer`,
    await interleave(
      makers.map(([label, make]) => ({
        label,
        operations: single,
        eventsPerOperation: 1,
        concurrency: 1,
        operation: (i: number) => store.append(`one-${label.length}-${i % 50}`, [make(i)]),
      })),
    ),
    PLAIN,
  );
  printScenario(
    `${backend}, 100 events/append, 4 writers`,
    await interleave(
      makers.map(([label, make]) => ({
        label,
        operations: batches,
        eventsPerOperation: 100,
        concurrency: 4,
        operation: (i: number, worker: number) =>
          store.append(
            `batch-${label.length}-${worker}`,
            Array.from({ length: 100 }, (_, k) => make(i * 100 + k)),
          ),
      })),
    ),
    PLAIN,
  );
  // Short streams, many readers: what a command handler does (load one aggregate's events), where
  // a page's key lookup is a second round trip on PostgreSQL unless the page's query reads the keys.
  const shortStreams = 200;
  for (const [label, make] of makers) {
    for (let s = 0; s < shortStreams; s++)
      await store.append(
        `short-${label.length}-${s}`,
        Array.from({ length: 10 }, (_, k) => make(s * 10 + k)),
      );
  }
  printScenario(
    `${backend}, read a 10-event stream, 16 readers`,
    await interleave(
      makers.map(([label]) => ({
        label,
        operations: flags.quick ? 1000 : 5000,
        eventsPerOperation: 10,
        concurrency: 16,
        operation: (i: number) => countEvents(store.read(`short-${label.length}-${i % shortStreams}`)),
      })),
    ),
    PLAIN,
  );
  const total = flags.quick ? 2000 : 10_000;
  for (const [label, make] of makers) {
    for (let v = 0; v < total; v += 500)
      await store.append(
        `read-${label.length}`,
        Array.from({ length: 500 }, (_, k) => make(v + k)),
      );
  }
  const reads: Result[] = [];
  for (let round = 0; round < 3; round++) {
    for (const [label] of makers) {
      reads.push(await measureRead(label, () => countEvents(store.read(`read-${label.length}`))));
    }
  }
  // The best of three rounds each: the first read of a stream also warms caches.
  const best = (label: string) => reads.filter((r) => r.label === label).sort((a, b) => b.eventsPerSec - a.eventsPerSec)[0] as Result;
  printScenario(`${backend}, read a ${total.toLocaleString('en-US')}-event stream`, [best(PLAIN), best(PERSONAL)], PLAIN);
}

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'logline-bench-personal-'));
  const sqlite = await openStore(`sqlite:${join(dir, 'personal.db')}`);
  try {
    await scenarios('SQLite', sqlite);
  } finally {
    await sqlite.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const admin = postgres(SERVER_URL, { max: 1, onnotice: () => {} });
  await admin`DROP SCHEMA IF EXISTS ${admin(SCHEMA)} CASCADE`;
  const url = new URL(SERVER_URL);
  url.searchParams.set('schema', SCHEMA);
  const pg = await openStore(url.toString());
  try {
    await scenarios('PostgreSQL', pg);
  } finally {
    await pg.close();
    await admin`DROP SCHEMA IF EXISTS ${admin(SCHEMA)} CASCADE`;
    await admin.end();
  }
}
