/**
 * npm run bench -- http [--quick]
 * The HTTP server on loopback under autocannon (64 connections): appends and reads, req/s and
 * p99, then stored == acknowledged; then the fast-check fuzz (10k cases; 1k with --quick):
 * never a 5xx, nothing stored on a 4xx. The server is a real `logline serve` child process.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { freshSchemaUrl, requirePostgres } from '../test/helpers/postgres.js';
import { fuzzRead, fuzzRequest, sendFuzz, sendFuzzRead } from '../test/server/fuzz.js';
import { type ServerProcess, startServerProcess } from '../test/server/process.js';
import { flags } from './harness.js';

interface AutocannonResult {
  requests: { average: number };
  latency: { p50: number; p99: number };
  '2xx': number;
  non2xx: number;
  errors: number;
  duration: number;
}
interface AutocannonRequest {
  method?: string;
  path?: string;
  body?: string;
  headers?: Record<string, string>;
  setupRequest?: (request: AutocannonRequest) => AutocannonRequest;
}
interface AutocannonOptions {
  url: string;
  connections: number;
  amount: number;
  requests?: AutocannonRequest[];
}
type Autocannon = (
  opts: AutocannonOptions,
  done: (error: Error | null, result: AutocannonResult) => void,
) => { on(event: 'response', listener: () => void): void };

const CONNECTIONS = 64;
const DATA_DIR = '.bench-data/http';

// autocannon ships no types; a non-literal specifier keeps TypeScript from looking for them.
const autocannonModule = 'autocannon';
const loadAutocannon = async (): Promise<Autocannon> => ((await import(autocannonModule)) as { default: Autocannon }).default;

/**
 * Runs a fixed number of requests. autocannon only reports on whole-second ticks, so the
 * elapsed time is taken from the first request to the last response instead.
 */
function load(autocannon: Autocannon, opts: AutocannonOptions): Promise<{ result: AutocannonResult; seconds: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let last = started;
    const instance = autocannon(opts, (error, result) => (error ? reject(error) : resolve({ result, seconds: (last - started) / 1000 })));
    instance.on('response', () => {
      last = performance.now();
    });
  });
}

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
  const { result, seconds } = await load(autocannon, {
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
  const { result, seconds } = await load(autocannon, { url: `${base}${path}`, connections: CONNECTIONS, amount });
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

async function scenarios(autocannon: Autocannon, storeUrl: string, backend: string): Promise<Row[]> {
  const server: ServerProcess = await startServerProcess(['--store', storeUrl]);
  // The server logs each request (pino, info): drain its stdout and keep nothing.
  server.logs.length = 0;
  server.child.stdout?.on('data', () => {
    server.logs.length = 0;
  });
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

export async function run(): Promise<void> {
  const autocannon = await loadAutocannon();
  rmSync(DATA_DIR, { recursive: true, force: true });
  mkdirSync(DATA_DIR, { recursive: true });
  const rows = await scenarios(autocannon, `sqlite:${join(DATA_DIR, 'bench.db')}`, 'sqlite');
  if (await requirePostgres()) {
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
  rmSync(DATA_DIR, { recursive: true, force: true });
}
