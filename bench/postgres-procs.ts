/**
 * PostgreSQL with several application processes writing one store (issue 11): real processes
 * (bench/children/pg-appender.ts), 1-event appends, side by side in one run:
 * Logline with 1 process × 16 writers and with 4 processes × 4 writers on one schema, and raw
 * postgres.js, Emmett and Castore with 4 processes × 4 writers each. The contenders take turns in
 * 5 rounds (every process of a contender runs its share of a round at once; the round lasts until
 * the slowest is done). Then: append → live subscriber latency at 1,000 ev/s while 4 processes
 * append, and how long an unrelated idle transaction holds back a committed event.
 *
 *   npm run bench -- postgres-procs [--quick] [--idle (the idle-transaction check alone)]
 *   LOGLINE_BENCH_PG_URL=postgres://postgres@127.0.0.1:5432/postgres (the server; the database part is replaced)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PostgresEventStorageAdapter } from '@castore/event-storage-adapter-postgres';
import { getPostgreSQLEventStore } from '@event-driven-io/emmett-postgresql';
import postgres from 'postgres';
import { openPostgresStore } from '../src/postgres.js';
import { benchEvent, flags, measureLiveLatency, percentile, printScenario, type Result } from './harness.js';

const SERVER_URL = process.env.LOGLINE_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const DB = 'logline_bench_procs';
const dbUrl = (() => {
  const url = new URL(SERVER_URL);
  url.pathname = `/${DB}`;
  return url.toString();
})();
const CHILD = join(import.meta.dirname, 'children', 'pg-appender.ts');
const BASELINE = 'logline-pg, 1 process × 16 writers';

/** One process of a contender, answering `RUN <count>` with its latencies. */
interface Child {
  run(count: number): Promise<number[]>;
  exit(): Promise<void>;
}

async function startChild(kind: string, url: string, tag: string, writers: number): Promise<Child> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', CHILD, kind, url, tag, String(writers)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
  const nextLine = async (): Promise<string> => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`bench child ${kind} ${tag} ended early`);
    return value as string;
  };
  if ((await nextLine()) !== 'READY') throw new Error(`bench child ${kind} ${tag} did not start`);
  return {
    async run(count) {
      child.stdin?.write(`RUN ${count}\n`);
      const line = await nextLine();
      return JSON.parse(line.slice('DONE '.length)) as number[];
    },
    async exit() {
      child.stdin?.write('EXIT\n');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

interface Contender {
  label: string;
  children: Child[];
}

async function contender(label: string, kind: string, url: string, processes: number, writers: number): Promise<Contender> {
  const tag = label.replace(/[^a-z0-9]+/gi, '-');
  const children = await Promise.all(Array.from({ length: processes }, (_, p) => startChild(kind, url, `${tag}-p${p}`, writers)));
  return { label, children };
}

/** Each contender runs `operations` appends in total, cut into `rounds` slices that alternate between contenders. */
async function race(contenders: Contender[], operations: number, rounds = 5): Promise<Result[]> {
  const state = contenders.map(() => ({ ms: 0, latencies: [] as number[] }));
  for (let round = 0; round < rounds; round++) {
    for (const [k, c] of contenders.entries()) {
      const perChild = Math.floor(operations / rounds / c.children.length);
      const start = performance.now();
      const answers = await Promise.all(c.children.map((child) => child.run(perChild)));
      const s = state[k] as (typeof state)[number];
      s.ms += performance.now() - start;
      for (const latencies of answers) s.latencies.push(...latencies);
    }
  }
  return contenders.map((c, k) => {
    const { ms, latencies } = state[k] as (typeof state)[number];
    latencies.sort((a, b) => a - b);
    return {
      label: c.label,
      events: latencies.length,
      seconds: ms / 1000,
      eventsPerSec: latencies.length / (ms / 1000),
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
    };
  });
}

async function recreateDatabase(): Promise<void> {
  const admin = postgres(SERVER_URL, { max: 1, onnotice: () => {} });
  await admin`DROP DATABASE IF EXISTS ${admin(DB)} WITH (FORCE)`;
  await admin`CREATE DATABASE ${admin(DB)}`;
  await admin.end();
}

/** Tables and schemas every contender needs, created once here so that the children do not race to create them. */
async function prepare(sql: postgres.Sql): Promise<void> {
  await sql`CREATE TABLE raw_procs (
    position bigserial PRIMARY KEY, stream_id text COLLATE "C" NOT NULL, stream_version int NOT NULL, id uuid NOT NULL,
    type text NOT NULL, data json NOT NULL, metadata json NOT NULL, occurred_at timestamptz NOT NULL DEFAULT now(),
    recorded_at timestamptz NOT NULL DEFAULT now(), UNIQUE (stream_id, stream_version), UNIQUE (id))`;
  await PostgresEventStorageAdapter.createEventTable({ connectionString: dbUrl, tableName: 'castore_events' });
  const emmett = getPostgreSQLEventStore(dbUrl);
  await emmett.appendToStream('warm-up', [{ type: 'Warm', data: {} }]);
  await emmett.close();
  for (const schema of ['one', 'four', 'live']) {
    const store = await openPostgresStore({ url: `${dbUrl}?schema=${schema}`, poolSize: 1 });
    await store.close();
  }
}

/**
 * A committed event while one unrelated session sits idle in a transaction: how long until a
 * reader of another store sees it (readAll) and a live subscriber gets it.
 */
async function idleTransactionScenario(sql: postgres.Sql): Promise<void> {
  const url = `${dbUrl}?schema=live`;
  const writer = await openPostgresStore({ url, poolSize: 1 });
  const reader = await openPostgresStore({ url, poolSize: 2 });
  // Both stores warm (connections open, statements prepared) and the subscriber live before the clock starts.
  await writer.append('idle-warm', [benchEvent(0)]);
  for await (const _ of reader.readAll({ from: (await reader.headPosition()) - 1n })) break;
  // Both of the reader's pool connections open (a second one opened on demand costs ~25 ms here).
  await Promise.all([reader.headPosition(), reader.headPosition(), reader.headPosition()]);
  const holder = await sql.reserve();
  await holder`BEGIN`;
  await holder`SELECT pg_current_xact_id()`;
  await holder`SELECT count(*) FROM raw_procs`;
  const controller = new AbortController();
  let target: bigint | undefined;
  let liveMs = Number.NaN;
  let t0 = 0;
  const subscribed = reader.subscribe({ from: 'end', signal: controller.signal });
  const live = (async () => {
    for await (const e of subscribed) {
      if (e.streamId === 'idle-check') {
        liveMs = performance.now() - t0;
        target = e.position;
        controller.abort();
      }
    }
  })();
  await new Promise((resolve) => setTimeout(resolve, 200)); // the subscriber is waiting at the head
  t0 = performance.now();
  const { position } = await writer.append('idle-check', [benchEvent(1)]);
  const ackMs = performance.now() - t0;
  let readMs = Number.NaN;
  for (;;) {
    const [e] = await (async () => {
      const seen = [];
      for await (const x of reader.readAll({ from: position - 1n, limit: 1 })) seen.push(x);
      return seen;
    })();
    if (e?.position === position) {
      readMs = performance.now() - t0;
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.race([live, new Promise((resolve) => setTimeout(resolve, 3000))]);
  controller.abort();
  await holder`COMMIT`;
  holder.release();
  console.log(
    `\nUnrelated session idle in a transaction: the append was acknowledged after ${ackMs.toFixed(1)} ms, visible to readAll() in another store after ${readMs.toFixed(1)} ms, and reached a live subscriber there after ${liveMs.toFixed(1)} ms${target === position ? '' : ' (position mismatch!)'} (all from the append call; the bound is 50 ms beyond the acknowledgement).`,
  );
  await writer.close();
  await reader.close();
}

/** Steady 1,000 ev/s from one store while 4 processes × 4 writers append flat out to the same schema. */
async function liveLatencyUnderLoad(procs: Contender): Promise<void> {
  const url = `${dbUrl}?schema=four`;
  const writer = await openPostgresStore({ url, poolSize: 2 });
  const reader = await openPostgresStore({ url, poolSize: 2 });
  const seconds = flags.quick ? 3 : 5;
  const quiet = await measureLiveLatency('logline-pg, nothing else appending', writer, reader, 1000, seconds);
  let loading = true;
  const background = (async () => {
    while (loading) await Promise.all(procs.children.map((child) => child.run(200)));
  })();
  const busy = await measureLiveLatency('logline-pg, 4 processes × 4 writers appending flat out too', writer, reader, 1000, seconds);
  loading = false;
  await background;
  printScenario(`append -> live subscriber in another store, steady 1,000 events/s for ${seconds} s`, [quiet, busy]);
  await writer.close();
  await reader.close();
}

export async function run(): Promise<void> {
  await recreateDatabase();
  const sql = postgres(dbUrl, { max: 2, onnotice: () => {} });
  await prepare(sql);
  if (process.argv.includes('--idle')) {
    await idleTransactionScenario(sql);
    return sql.end();
  }
  const contenders = [
    await contender(BASELINE, 'logline', `${dbUrl}?schema=one`, 1, 16),
    await contender('logline-pg, 4 processes × 4 writers', 'logline', `${dbUrl}?schema=four`, 4, 4),
    await contender('raw postgres.js, 4 processes × 4 writers', 'raw', dbUrl, 4, 4),
    await contender('emmett, 4 processes × 4 writers', 'emmett', dbUrl, 4, 4),
    await contender('castore, 4 processes × 4 writers', 'castore', dbUrl, 4, 4),
  ];
  // Warm-up: connections, prepared statements, plans.
  await race(contenders, 400, 1);
  const results = await race(contenders, flags.quick ? 4000 : 16000);
  printScenario('1 event per append, 16 writers: 1 process vs 4 processes (real processes, one schema)', results, BASELINE);
  await liveLatencyUnderLoad(contenders[1] as Contender);
  for (const c of contenders) await Promise.all(c.children.map((child) => child.exit()));
  await idleTransactionScenario(sql);
  await sql.end();
}
