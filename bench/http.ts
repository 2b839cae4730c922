/**
 * npm run bench -- http [--quick] [--appends]
 * First 1-event appends over 64 connections to a bare Hono app (the HTTP stack alone) and to
 * `logline serve` on SQLite and on PostgreSQL, side by side in alternating rounds, as a ratio to
 * the bare app (`--appends` runs only this). Then the HTTP server on loopback under autocannon
 * (64 connections): appends and reads, req/s and p99, then stored == acknowledged; then the fast-check fuzz (10k cases; 1k with --quick):
 * never a 5xx, nothing stored on a 4xx; then /metrics scraped over a 1M-event SQLite store
 * (100k with --quick; `--scrape` runs only this), p99 target < 5 ms. The server is a real `logline serve` child process.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { openSqliteStore } from '../src/sqlite.js';
import { freshSchemaUrl, requirePostgres } from '../test/helpers/postgres.js';
import { fuzzRead, fuzzRequest, sendFuzz, sendFuzzRead } from '../test/server/fuzz.js';
import { type ServerProcess, startListeningProcess, startServerProcess } from '../test/server/process.js';
import { type Autocannon, loadAutocannon, runLoad } from './autocannon.js';
import { benchEvent, flags, percentile } from './harness.js';

const CONNECTIONS = 64;
const DATA_DIR = '.bench-data/http';

async function stats(base: string): Promise<{ events: number }> {
  return (await (await fetch(`${base}/v1/stats`)).json()) as { events: number };
}

interface Row {
  scenario: string;
  requests: number;
  reqPerSec: number;
  eventsPerSec: number;
  p50: number;
  p99: number;
  check: string;
}

async function appendScenario(autocannon: Autocannon, base: string, label: string, eventsPerRequest: number, amount: number): Promise<Row> {
  const before = (await stats(base)).events;
  let n = 0;
  const body = JSON.stringify({
    events: Array.from({ length: eventsPerRequest }, (_, i) => ({ type: 'Benchmarked', data: { i, note: 'x'.repeat(100) } })),
  });
  const { result, seconds } = await runLoad(autocannon, {
    url: base,
    connections: CONNECTIONS,
    amount,
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        // 1,000 streams, spread over the connections.
        setupRequest: (request) => ({ ...request, path: `/v1/streams/bench-${label.replace(/\W+/g, '-')}-${n++ % 1000}` }),
      },
    ],
  });
  const after = (await stats(base)).events;
  const acknowledged = result['2xx'] * eventsPerRequest;
  const stored = after - before;
  if (stored !== acknowledged || result.non2xx || result.errors) {
    throw new Error(`${label}: stored ${stored} events, acknowledged ${acknowledged}; non-2xx ${result.non2xx}, errors ${result.errors}`);
  }
  return {
    scenario: label,
    requests: result['2xx'],
    reqPerSec: result['2xx'] / seconds,
    eventsPerSec: (result['2xx'] * eventsPerRequest) / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    check: `stored ${stored} = acknowledged ${acknowledged}`,
  };
}

async function readScenario(autocannon: Autocannon, base: string, label: string, path: string, amount: number): Promise<Row> {
  const { result, seconds } = await runLoad(autocannon, { url: `${base}${path}`, connections: CONNECTIONS, amount });
  if (result.non2xx || result.errors) throw new Error(`${label}: non-2xx ${result.non2xx}, errors ${result.errors}`);
  return {
    scenario: label,
    requests: result['2xx'],
    reqPerSec: result['2xx'] / seconds,
    eventsPerSec: (result['2xx'] * 100) / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    check: '100 events per response',
  };
}

/** The server logs each request (pino, info): drain its stdout and keep nothing. */
function drainLogs(server: ServerProcess): ServerProcess {
  server.logs.length = 0;
  server.child.stdout?.on('data', () => {
    server.logs.length = 0;
  });
  return server;
}

const BARE_HONO = join(import.meta.dirname, 'children', 'bare-hono.ts');

/**
 * 1-event appends over 64 connections: the bare Hono app, then `logline serve` on SQLite and on
 * PostgreSQL, in alternating rounds (bare, sqlite, postgres, bare, …) so a busy neighbour weighs
 * on all alike. req/s is over all rounds; p50 is the median round's, p99 the worst round's.
 */
async function appendComparison(autocannon: Autocannon, pgUrl: string | undefined): Promise<string> {
  const servers: { label: string; server: ServerProcess }[] = [];
  try {
    servers.push({ label: 'bare Hono (no store)', server: drainLogs(await startListeningProcess([BARE_HONO])) });
    servers.push({
      label: 'logline serve, sqlite',
      server: drainLogs(await startServerProcess(['--store', `sqlite:${join(DATA_DIR, 'compare.db')}`])),
    });
    if (pgUrl) servers.push({ label: 'logline serve, postgres', server: drainLogs(await startServerProcess(['--store', pgUrl])) });
    const rounds = 3;
    const amount = Math.round((flags.quick ? 6000 : 30_000) / rounds);
    const results = servers.map(() => [] as Row[]);
    // What each request cost the server's CPU (ms over all rounds): whole process, and its main thread.
    const cpu = servers.map(() => ({ total: 0, main: 0 }));
    // One warm-up round, not counted (JIT, page cache, connection pools).
    for (const { label, server } of servers) await appendScenario(autocannon, server.url, label, 1, 1000);
    for (let round = 0; round < rounds; round++) {
      for (const [k, { label, server }] of servers.entries()) {
        const pid = server.child.pid as number;
        const before = { total: cpuMs(pid), main: cpuMs(pid, 'main thread') };
        (results[k] as Row[]).push(await appendScenario(autocannon, server.url, label, 1, amount));
        const used = cpu[k] as { total: number; main: number };
        used.total += cpuMs(pid) - before.total;
        used.main += cpuMs(pid, 'main thread') - before.main;
      }
    }
    const summary = results.map((rows, k) => {
      const requests = rows.reduce((sum, r) => sum + r.requests, 0);
      const used = cpu[k] as { total: number; main: number };
      const seconds = rows.reduce((sum, r) => sum + r.requests / r.reqPerSec, 0);
      const p50s = rows.map((r) => r.p50).sort((a, b) => a - b);
      return {
        requests,
        reqPerSec: requests / seconds,
        rounds: rows.map((r) => Math.round(r.reqPerSec).toLocaleString('en-US')).join(' / '),
        p50: p50s[Math.floor(p50s.length / 2)] as number,
        p99: Math.max(...rows.map((r) => r.p99)),
        cpuMicros: `${Math.round((used.total * 1000) / requests)} (${Math.round((used.main * 1000) / requests)})`,
      };
    });
    const bare = summary[0]?.reqPerSec ?? Number.NaN;
    const load = loadavg()
      .map((n) => n.toFixed(1))
      .join(' ');
    return [
      `\n### HTTP 1-event appends, ${CONNECTIONS} connections, vs the bare HTTP stack (${rounds} alternating rounds; load average ${load} on ${availableParallelism()} cores at the end)\n`,
      '| server | requests | req/s | req/s per round | p50 ms | p99 ms | server CPU µs per request (main thread) | vs bare Hono |',
      '|---|---|---|---|---|---|---|---|',
      ...summary.map(
        (s, k) =>
          `| ${servers[k]?.label} | ${s.requests} | ${Math.round(s.reqPerSec).toLocaleString('en-US')} | ${s.rounds} | ${s.p50} | ${s.p99} | ${s.cpuMicros} | ${((s.reqPerSec / bare) * 100).toFixed(0)}% |`,
      ),
    ].join('\n');
  } finally {
    await Promise.all(servers.map(({ server }) => server.stop()));
  }
}

async function scenarios(autocannon: Autocannon, storeUrl: string, backend: string): Promise<Row[]> {
  const server = drainLogs(await startServerProcess(['--store', storeUrl]));
  try {
    const base = server.url;
    const amount = flags.quick ? 3000 : 20_000;
    const rows = [
      await appendScenario(autocannon, base, `${backend}: append 1 event`, 1, amount),
      await appendScenario(autocannon, base, `${backend}: append 10 events`, 10, Math.round(amount / 2)),
    ];
    await fetch(`${base}/v1/streams/read-100`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ events: Array.from({ length: 100 }, (_, i) => ({ type: 'Read', data: { i } })) }),
    });
    rows.push(await readScenario(autocannon, base, `${backend}: read a stream (100/page)`, '/v1/streams/read-100?limit=100', amount));
    rows.push(await readScenario(autocannon, base, `${backend}: read $all (100/page)`, '/v1/all?from=0&limit=100', amount));
    return rows;
  } finally {
    await server.stop();
  }
}

async function fuzz(storeUrl: string): Promise<string> {
  const server = await startServerProcess(['--store', storeUrl]);
  server.child.stdout?.on('data', () => {
    server.logs.length = 0;
  });
  try {
    const numRuns = flags.quick ? 1000 : 10_000;
    const before = (await stats(server.url)).events;
    let acknowledged = 0;
    const statuses = new Map<number, number>();
    const started = performance.now();
    await fc.assert(
      fc.asyncProperty(fuzzRequest, async (request) => {
        const outcome = await sendFuzz(server.url, request);
        statuses.set(outcome.status, (statuses.get(outcome.status) ?? 0) + 1);
        acknowledged += outcome.stored;
        if (outcome.problem) throw new Error(outcome.problem);
      }),
      { numRuns },
    );
    // Reads with random query parameters against what the appends left behind.
    await fc.assert(
      fc.asyncProperty(fuzzRead, async (request) => {
        const outcome = await sendFuzzRead(server.url, request);
        if (outcome.problem) throw new Error(outcome.problem);
      }),
      { numRuns: numRuns / 2 },
    );
    const stored = (await stats(server.url)).events - before;
    if (stored !== acknowledged) throw new Error(`fuzz: stored ${stored} events, acknowledged ${acknowledged}`);
    const seconds = (performance.now() - started) / 1000;
    const byStatus = [...statuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s}: ${n}`);
    return `\n### HTTP fuzz\n\n${numRuns} random appends and ${numRuns / 2} random reads in ${seconds.toFixed(1)} s; no 5xx; stored ${stored} = acknowledged ${acknowledged}; statuses ${byStatus.join(', ')}`;
  } finally {
    await server.stop();
  }
}

/** Fills a SQLite store through the store API: 10,000-event appends over 100 streams. */
async function fillSqlite(file: string, events: number): Promise<void> {
  const store = await openSqliteStore({ path: file });
  try {
    for (let i = 0; i < events; i += 10_000) {
      await store.append(
        `scrape-${i / 10_000}`,
        Array.from({ length: 10_000 }, (_, k) => benchEvent(i + k)),
      );
    }
  } finally {
    await store.close();
  }
}

/**
 * CPU time a process (or only its main thread) has used so far, ms (Linux: utime + stime from
 * /proc, in clock ticks of 10 ms).
 */
const cpuMs = (pid: number, only?: 'main thread') => {
  const fields =
    readFileSync(only ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8')
      .split(') ')[1]
      ?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
};

/** The gauge `name` in a Prometheus text page. */
const gauge = (page: string, name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(page)?.[1]);

/**
 * /metrics over a large SQLite store (issue 10, item 10): one scrape after another, with a small
 * append before every tenth, so each scrape has new events to count. Target: p99 < 5 ms.
 */
async function scrapeScenario(): Promise<string> {
  const events = flags.quick ? 100_000 : 1_000_000;
  const file = join(DATA_DIR, 'scrape.db');
  const filling = performance.now();
  await fillSqlite(file, events);
  const fillSeconds = (performance.now() - filling) / 1000;
  const server = await startServerProcess(['--store', `sqlite:${file}`]);
  // The server's own time per scrape, from its request log: what the event loop spent, without the client.
  const serverMs: number[] = [];
  server.child.stdout?.on('data', () => {
    for (const line of server.logs) {
      if (line.includes('"path":"/metrics"')) serverMs.push((JSON.parse(line) as { ms: number }).ms);
    }
    server.logs.length = 0;
  });
  try {
    const scrape = async () => {
      const started = performance.now();
      const page = await (await fetch(`${server.url}/metrics`)).text();
      return { ms: performance.now() - started, page };
    };
    const first = await scrape();
    const scrapes = flags.quick ? 500 : 2000;
    const cpuBefore = cpuMs(server.child.pid as number);
    const latencies: number[] = [];
    let appended = 0;
    let last = first;
    for (let i = 0; i < scrapes; i++) {
      if (i % 10 === 0) {
        await fetch(`${server.url}/v1/streams/scrape-live`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ events: Array.from({ length: 10 }, (_, k) => benchEvent(k)) }),
        });
        appended += 10;
      }
      last = await scrape();
      latencies.push(last.ms);
    }
    // Load-independent: what the server computed, per request (the scrapes and the few appends).
    const cpuPerRequest = (cpuMs(server.child.pid as number) - cpuBefore) / (scrapes + appended / 10);
    const stored = gauge(last.page, 'logline_events_stored');
    if (stored !== events + appended) throw new Error(`scrape: /metrics says ${stored} events, expected ${events + appended}`);
    latencies.sort((a, b) => a - b);
    // The first scrape (the one-off count, in slices) is reported on its own.
    const inServer = serverMs.slice(1).sort((a, b) => a - b);
    const ms = (n: number) => n.toFixed(2);
    const load = loadavg()
      .map((n) => n.toFixed(1))
      .join(' ');
    return [
      `\n### /metrics at ${events.toLocaleString('en-US')} events (SQLite; load average ${load} on ${availableParallelism()} cores at the end)\n`,
      '| events | fill s | first scrape ms | scrapes | p50 ms | p99 ms | max ms | in-server p50 / p99 ms | server CPU ms per request | check |',
      '|---|---|---|---|---|---|---|---|---|---|',
      `| ${events.toLocaleString('en-US')} | ${fillSeconds.toFixed(1)} | ${ms(first.ms)} | ${scrapes} | ${ms(percentile(latencies, 50))} | ${ms(percentile(latencies, 99))} | ${ms(latencies.at(-1) as number)} | ${ms(percentile(inServer, 50))} / ${ms(percentile(inServer, 99))} | ${ms(cpuPerRequest)} | logline_events_stored ${stored} = ${events} + ${appended} appended |`,
    ].join('\n');
  } finally {
    await server.stop();
  }
}

export async function run(): Promise<void> {
  const autocannon = await loadAutocannon();
  rmSync(DATA_DIR, { recursive: true, force: true });
  mkdirSync(DATA_DIR, { recursive: true });
  if (process.argv.includes('--scrape')) {
    // Only the /metrics scenario: `npm run bench -- http --scrape`.
    console.log(await scrapeScenario());
    rmSync(DATA_DIR, { recursive: true, force: true });
    return;
  }
  const postgres = await requirePostgres();
  const comparePg = postgres ? await freshSchemaUrl() : undefined;
  try {
    console.log(await appendComparison(autocannon, comparePg?.url));
  } finally {
    await comparePg?.drop();
  }
  if (process.argv.includes('--appends')) {
    rmSync(DATA_DIR, { recursive: true, force: true });
    return;
  }
  const rows = await scenarios(autocannon, `sqlite:${join(DATA_DIR, 'bench.db')}`, 'sqlite');
  if (postgres) {
    const pg = await freshSchemaUrl();
    try {
      rows.push(...(await scenarios(autocannon, pg.url, 'postgres')));
    } finally {
      await pg.drop();
    }
  }
  const lines = [
    `\n### HTTP on loopback, ${CONNECTIONS} connections (autocannon), server and client sharing the cores\n`,
    '| scenario | requests | req/s | events/s | p50 ms | p99 ms | check |',
    '|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.scenario} | ${r.requests} | ${Math.round(r.reqPerSec).toLocaleString('en-US')} | ${Math.round(r.eventsPerSec).toLocaleString('en-US')} | ${r.p50} | ${r.p99} | ${r.check} |`,
    ),
  ];
  console.log(lines.join('\n'));
  console.log(await fuzz(`sqlite:${join(DATA_DIR, 'fuzz.db')}`));
  console.log(await scrapeScenario());
  rmSync(DATA_DIR, { recursive: true, force: true });
}
