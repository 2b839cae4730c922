/**
 * SQLite suite: Logline's SQLite store side by side with raw better-sqlite3 doing the same
 * inserts and reads (same schema, same pragmas: WAL, synchronous=FULL) in the same process.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { NewEvent } from '../src/index.js';
import { openSqliteStore } from '../src/sqlite.js';
import { MIGRATIONS } from '../src/stores/sqlite/schema.js';
import {
  benchEvent,
  benchPayload,
  countEvents,
  flags,
  interleave,
  measureRead,
  percentile,
  printScenario,
  type Result,
} from './harness.js';

const DIR = join(process.cwd(), '.bench-data', 'sqlite');

function rawDb(file: string) {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  for (const migration of MIGRATIONS) db.exec(migration);
  const insert = db.prepare(
    'INSERT INTO events (stream_id, stream_version, id, type, data, metadata, occurred_at, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const versions = new Map<string, number>();
  /** What an application would do by hand: one transaction per append, JSON text columns. */
  const append = db.transaction((stream: string, events: NewEvent[]) => {
    let version = versions.get(stream) ?? 0;
    const now = new Date().toISOString();
    for (const e of events) {
      insert.run(stream, ++version, randomUUID(), e.type, JSON.stringify(e.data), JSON.stringify(e.metadata ?? {}), now, now);
    }
    versions.set(stream, version);
  });
  return { db, append };
}

async function appendScenario(title: string, appends: number, perAppend: number, concurrency: number): Promise<Result[]> {
  const batches = Array.from({ length: appends }, (_, a) => Array.from({ length: perAppend }, (_, i) => benchEvent(a * perAppend + i)));
  const raw = rawDb(join(DIR, `raw-${perAppend}-${concurrency}.db`));
  // The default (appends written in the writer thread) and the calling thread's own connection (writerThread: false).
  const stores = [
    { label: '', store: await openSqliteStore({ path: join(DIR, `logline-${perAppend}-${concurrency}.db`) }) },
    {
      label: ', writerThread: false',
      store: await openSqliteStore({ path: join(DIR, `logline-main-${perAppend}-${concurrency}.db`), writerThread: false }),
    },
  ];
  const results = await interleave([
    {
      label: 'raw better-sqlite3',
      operations: appends,
      eventsPerOperation: perAppend,
      concurrency: 1, // a synchronous driver: one caller at a time
      operation: async (i) => raw.append(`stream-${i % 100}`, batches[i] as NewEvent[]),
    },
    ...stores.map(({ label, store }) => {
      const versions = new Map<string, number>();
      return {
        label: `logline-sqlite (${concurrency} caller${concurrency > 1 ? 's' : ''}${label})`,
        operations: appends,
        eventsPerOperation: perAppend,
        concurrency,
        operation: async (i: number, worker: number) => {
          // Each caller owns its streams and checks the expected version, as an aggregate would.
          const stream = `stream-${worker}-${i % 7}`;
          const result = await store.append(stream, batches[i] as NewEvent[], { expectedVersion: versions.get(stream) ?? 'no_stream' });
          versions.set(stream, result.streamVersion);
        },
      };
    }),
  ]);
  raw.db.close();
  for (const { store } of stores) await store.close();
  printScenario(title, results, 'raw better-sqlite3');
  return results;
}

/** Fills a store file with `total` events fast (raw multi-row transactions), streams of `perStream`. */
function seed(file: string, total: number, perStream: number): void {
  const store = new Database(file);
  store.pragma('journal_mode = WAL');
  store.pragma('synchronous = OFF');
  for (const migration of MIGRATIONS) store.exec(migration);
  store.pragma(`user_version = ${MIGRATIONS.length}`);
  const insert = store.prepare(
    'INSERT INTO events (stream_id, stream_version, id, type, data, metadata, occurred_at, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const now = new Date().toISOString();
  const chunk = store.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      insert.run(
        `seed-${Math.floor(i / perStream)}`,
        (i % perStream) + 1,
        randomUUID(),
        'OrderPlaced',
        JSON.stringify(benchPayload(i)),
        '{}',
        now,
        now,
      );
    }
  });
  for (let i = 0; i < total; i += 50_000) chunk(i, Math.min(total, i + 50_000));
  store.close();
}

async function readScenarios(): Promise<void> {
  const streamLength = flags.quick ? 20_000 : 100_000;
  const allLength = flags.quick ? 100_000 : 1_000_000;
  const streamFile = join(DIR, 'read-stream.db');
  const allFile = join(DIR, 'read-all.db');
  seed(streamFile, streamLength, streamLength);
  seed(allFile, allLength, 100);

  const rawRead = (file: string, sqlText: string, first: unknown[], next: (last: unknown[]) => unknown[]) => {
    const db = new Database(file, { readonly: true });
    const statement = db.prepare(sqlText).raw();
    let count = 0;
    let params = first;
    for (;;) {
      const rows = statement.all(...params) as unknown[][];
      for (const row of rows) {
        JSON.parse(row[5] as string);
        JSON.parse(row[6] as string);
        count++;
      }
      if (rows.length < 500) break;
      params = next(rows[rows.length - 1] as unknown[]);
    }
    db.close();
    return count;
  };
  const cols = 'position, stream_id, stream_version, id, type, data, metadata, occurred_at, recorded_at';

  const streamResults = [
    await measureRead('raw better-sqlite3', async () =>
      rawRead(
        streamFile,
        `SELECT ${cols} FROM events WHERE stream_id = ? AND stream_version >= ? ORDER BY stream_version LIMIT 500`,
        ['seed-0', 1],
        (last) => ['seed-0', (last[2] as number) + 1],
      ),
    ),
  ];
  {
    const store = await openSqliteStore({ path: streamFile });
    streamResults.push(await measureRead('logline-sqlite read()', () => countEvents(store.read('seed-0'))));
    await store.close();
  }
  printScenario(`read one ${streamLength.toLocaleString('en-US')}-event stream`, streamResults, 'raw better-sqlite3');

  const allResults = [
    await measureRead('raw better-sqlite3', async () =>
      rawRead(allFile, `SELECT ${cols} FROM events WHERE position > ? ORDER BY position LIMIT 500`, [0], (last) => [last[0]]),
    ),
  ];
  {
    const store = await openSqliteStore({ path: allFile });
    allResults.push(await measureRead('logline-sqlite readAll()', () => countEvents(store.readAll())));
    await store.close();
  }
  printScenario(
    `readAll over ${allLength.toLocaleString('en-US')} events (peak RSS must not grow with length)`,
    allResults,
    'raw better-sqlite3',
  );
}

/** Append in another process -> live subscriber here; and what an idle subscriber costs. */
async function crossProcessScenario(): Promise<void> {
  const file = join(DIR, 'cross.db');
  const store = await openSqliteStore({ path: file });
  await store.append('warm', [{ type: 'Warm', data: {} }]);
  const count = flags.quick ? 200 : 1000;
  const latencies: number[] = [];
  const controller = new AbortController();
  const received = (async () => {
    for await (const event of store.subscribe({ from: 'end', signal: controller.signal })) {
      latencies.push(performance.timeOrigin + performance.now() - (event.data as { sentAt: number }).sentAt);
      if (latencies.length === count) controller.abort();
    }
  })();
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'children', 'sqlite-ticker.ts'), file, String(count), '5'],
    {
      stdio: 'inherit',
    },
  );
  await received;
  child.kill();
  latencies.sort((a, b) => a - b);

  // Idle: one live subscriber, nothing appended, for 3 s.
  const idle = new AbortController();
  const idleLoop = (async () => {
    for await (const _ of store.subscribe({ from: 'end', signal: idle.signal })) {
      /* nothing arrives */
    }
  })();
  const cpu0 = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const cpu = process.cpuUsage(cpu0);
  idle.abort();
  await idleLoop;
  await store.close();
  const idlePercent = ((cpu.user + cpu.system) / 1000 / 3000) * 100;
  printScenario(`append in another process -> live subscriber (${count} events, one per 5 ms)`, [
    {
      label: 'logline-sqlite subscribe()',
      events: count,
      seconds: 0,
      eventsPerSec: Number.NaN,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      extra: { 'idle subscriber CPU %': idlePercent.toFixed(2) },
    },
  ]);
}

/**
 * What retention costs (docs/lifecycle.md#retention-and-deletion), one store file read three ways
 * in one run: no stream has settings; half the streams keep only their last 25 events (hidden
 * events skipped by the read); after the scavenge removed them. Then the scavenge's own rate.
 */
async function retentionScenario(): Promise<void> {
  const total = flags.quick ? 100_000 : 1_000_000;
  const perStream = 100;
  const file = join(DIR, 'retention.db');
  seed(file, total, perStream);
  const store = await openSqliteStore({ path: file });
  const readAll = () => countEvents(store.readAll());
  const results = [await measureRead('readAll(), no stream with settings', readAll)];
  for (let i = 0; i < total / perStream; i += 2) await store.setStreamMetadata(`seed-${i}`, { maxCount: 25 });
  results.push(await measureRead('readAll(), half the streams with maxCount 25', readAll));
  const started = performance.now();
  const { removed } = await store.scavenge();
  const seconds = (performance.now() - started) / 1000;
  results.push(await measureRead('readAll() after the scavenge', readAll));
  printScenario(
    `retention: readAll over ${total.toLocaleString('en-US')} events in ${(total / perStream).toLocaleString('en-US')} streams (events/s = events returned)`,
    results,
    'readAll(), no stream with settings',
  );
  printScenario('retention: scavenge (events/s = events removed)', [
    { label: `scavenge() of ${removed.toLocaleString('en-US')} events`, events: removed, seconds, eventsPerSec: removed / seconds },
  ]);
  await store.close();
}

export async function run(): Promise<void> {
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  if (process.argv.includes('--retention')) {
    // Only the retention scenario: `npm run bench -- sqlite --retention`.
    await retentionScenario();
    rmSync(DIR, { recursive: true, force: true });
    return;
  }
  const scale = flags.quick ? 0.25 : 1;
  console.log('\nWAL, synchronous=FULL on both sides; same schema and indexes; ~330-byte events; append runs interleaved in 5 rounds.');
  await appendScenario('1 event per append, single writer', Math.round(3000 * scale), 1, 1);
  await appendScenario('100 events per append, single writer', Math.round(300 * scale), 100, 1);
  await appendScenario('1 event per append, 16 concurrent callers (coalesced commits)', Math.round(8000 * scale), 1, 16);
  await readScenarios();
  await crossProcessScenario();
  rmSync(DIR, { recursive: true, force: true });
}
