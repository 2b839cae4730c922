/**
 * The benchmark harness every bench suite uses: run scenarios side by side in one process,
 * measure events/s and per-operation latency, print a table with ratios to a baseline.
 */
import { randomUUID } from 'node:crypto';
import type { EventStore, NewEvent } from '../src/index.js';

/** The ~330-byte order event every append and read scenario writes, for Logline and the baselines alike. */
export const benchPayload = (i: number) => ({
  orderId: `order-${i}`,
  customer: { id: i % 1000, name: 'Marge Simpson', email: 'marge@example.com' },
  lines: [
    { sku: 'DONUT-PINK', quantity: 12, price: 1.25 },
    { sku: 'DUFF-6', quantity: 1, price: 7.99 },
  ],
  total: 22.99,
});

export const benchEvent = (i: number): NewEvent => ({ type: 'OrderPlaced', data: benchPayload(i), metadata: { correlationId: `c-${i}` } });

export interface Result {
  /** Who ran it: 'logline-sqlite', 'raw better-sqlite3', 'emmett', … */
  label: string;
  events: number;
  seconds: number;
  eventsPerSec: number;
  /** Latency of one operation (an append, a read page…), when measured. */
  p50Ms?: number;
  p99Ms?: number;
  /** Extra columns, e.g. { 'peak RSS MB': 61 }. */
  extra?: Record<string, number | string>;
}

export function percentile(sortedMs: number[], p: number): number {
  if (sortedMs.length === 0) return Number.NaN;
  const index = Math.min(sortedMs.length - 1, Math.max(0, Math.ceil((p / 100) * sortedMs.length) - 1));
  return sortedMs[index] as number;
}

export interface AppendLoad {
  label: string;
  /** Total operations to run (split across workers). */
  operations: number;
  eventsPerOperation: number;
  concurrency: number;
  /** Runs operation number `i` (0-based) of worker `worker`. */
  operation: (i: number, worker: number) => Promise<unknown>;
  /**
   * Open loop at this many operations per second instead of `concurrency` closed-loop workers:
   * operation i starts when it is due, whether or not earlier ones have finished, and its latency
   * counts from when it was due (so a stall shows in every operation it delays, not in one).
   */
  perSecond?: number;
}

/** Runs operations [from, to) on `concurrency` workers; returns elapsed ms, pushes latencies. */
async function runSlice(load: AppendLoad, from: number, to: number, latencies: number[]): Promise<number> {
  if (load.perSecond) return runPacedSlice(load, load.perSecond, from, to, latencies);
  let next = from;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: load.concurrency }, async (_, worker) => {
      while (next < to) {
        const i = next++;
        const t0 = performance.now();
        await load.operation(i, worker);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return performance.now() - start;
}

async function runPacedSlice(load: AppendLoad, perSecond: number, from: number, to: number, latencies: number[]): Promise<number> {
  const start = performance.now();
  const inFlight: Promise<void>[] = [];
  for (let i = from; i < to; i++) {
    const due = start + ((i - from) * 1000) / perSecond;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    inFlight.push(
      (async () => {
        await load.operation(i, 0);
        latencies.push(performance.now() - due);
      })(),
    );
  }
  await Promise.all(inFlight);
  return performance.now() - start;
}

/** Runs `operations` operations on `concurrency` concurrent workers; times each one. */
export async function measure(load: AppendLoad): Promise<Result> {
  return (await interleave([load], 1))[0] as Result;
}

/**
 * Runs several loads side by side: each is cut into `rounds` slices and the slices alternate
 * (A1 B1 A2 B2 ...), so a noisy neighbour or a warming disk affects all of them alike.
 */
export async function interleave(loads: AppendLoad[], rounds = 5): Promise<Result[]> {
  const state = loads.map(() => ({ ms: 0, latencies: [] as number[] }));
  for (let round = 0; round < rounds; round++) {
    for (const [k, load] of loads.entries()) {
      const from = Math.floor((load.operations * round) / rounds);
      const to = Math.floor((load.operations * (round + 1)) / rounds);
      const s = state[k] as (typeof state)[number];
      s.ms += await runSlice(load, from, to, s.latencies);
    }
  }
  return loads.map((load, k) => {
    const { ms, latencies } = state[k] as (typeof state)[number];
    latencies.sort((a, b) => a - b);
    const events = load.operations * load.eventsPerOperation;
    const seconds = ms / 1000;
    return {
      label: load.label,
      events,
      seconds,
      eventsPerSec: events / seconds,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
    };
  });
}

/** Reads `events` to the end: how many there were (what measureRead's readers return). */
export async function countEvents(events: AsyncIterable<unknown>): Promise<number> {
  let n = 0;
  for await (const _ of events) n++;
  return n;
}

/** Times a read loop that returns how many events it saw; samples RSS while it runs. */
export async function measureRead(label: string, read: () => Promise<number>): Promise<Result> {
  let peakRss = process.memoryUsage.rss();
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }, 20);
  const start = performance.now();
  const events = await read();
  const seconds = (performance.now() - start) / 1000;
  clearInterval(sampler);
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
  return { label, events, seconds, eventsPerSec: events / seconds, extra: { 'peak RSS MB': Math.round(peakRss / 1e6) } };
}

const fmt = (n: number | undefined, digits = 2) => (n === undefined || Number.isNaN(n) ? '–' : n.toFixed(digits));

/** Prints one scenario as a Markdown table; ratios are relative to the result labelled `baseline`. */
export function printScenario(title: string, results: Result[], baseline?: string): string {
  const base = results.find((r) => r.label === baseline);
  const extras = [...new Set(results.flatMap((r) => Object.keys(r.extra ?? {})))];
  const header = ['who', 'events/s', 'p50 ms', 'p99 ms', ...(base ? [`vs ${base.label}`] : []), ...extras];
  const lines = [`\n### ${title}\n`, `| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const r of results) {
    const ratio = base ? [`${((r.eventsPerSec / base.eventsPerSec) * 100).toFixed(0)}%`] : [];
    lines.push(
      `| ${[r.label, Number.isNaN(r.eventsPerSec) ? '–' : Math.round(r.eventsPerSec).toLocaleString('en-US'), fmt(r.p50Ms, 3), fmt(r.p99Ms, 3), ...ratio, ...extras.map((k) => String(r.extra?.[k] ?? '–'))].join(' | ')} |`,
    );
  }
  const text = lines.join('\n');
  console.log(text);
  return text;
}

/** Command-line flags shared by suites: --quick (small sizes), --large (the big optional cases). */
export const flags = {
  quick: process.argv.includes('--quick'),
  large: process.argv.includes('--large'),
};

/**
 * Appends 1-event appends at a steady `rate` for `seconds` through `writer` while a subscriber on
 * `reader` (another store on the same backend) takes them live: the latency from each append call
 * to its delivery.
 */
export async function measureLiveLatency(
  label: string,
  writer: EventStore,
  reader: EventStore,
  rate: number,
  seconds: number,
): Promise<Result> {
  const total = rate * seconds;
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  const controller = new AbortController();
  const received = (async () => {
    for await (const event of reader.subscribe({ from: 'end', signal: controller.signal })) {
      const t0 = sentAt.get(event.id);
      if (t0 !== undefined) latencies.push(performance.now() - t0);
      if (latencies.length === total) controller.abort();
    }
  })();
  await new Promise((resolve) => setTimeout(resolve, 300));
  const start = performance.now();
  const appends: Promise<unknown>[] = [];
  for (let sent = 0; sent < total; ) {
    // Every 5 ms, the appends due by now.
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
    for (; sent < due; sent++) {
      const id = randomUUID();
      sentAt.set(id, performance.now());
      appends.push(writer.append(`live-${sent % 50}`, [{ ...benchEvent(sent), id }]));
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await Promise.all(appends);
  await received;
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    label,
    events: total,
    seconds: elapsed,
    eventsPerSec: total / elapsed,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}
