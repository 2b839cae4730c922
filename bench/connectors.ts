/**
 * Connectors suite.
 *  1. Delivery rate: a SQLite log of N events, then 1 or 8 connectors at once deliver all of it
 *     to each sink (a webhook receiver in a child process, RabbitMQ with publisher confirms
 *     into a durable queue, NATS JetStream with Nats-Msg-Id, MQTT QoS 1): events/s delivered,
 *     summed over the connectors.
 *  2. Append latency: single-event appends to three stores side by side (SQLite, then PostgreSQL;
 *     slices alternate): one without connectors, one with 8 live webhook connectors in the writer's
 *     process, one whose 8 connectors run in a child process. Once flat out (one closed-loop
 *     writer), once open loop at a steady 500 appends/s with latency counted from when each
 *     append was due.
 *     `--appends-only` runs only this part.
 */

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect as connectNats } from '@nats-io/transport-node';
import amqp from 'amqplib';
import { type ConnectorHandle, httpSink, mqttSink, natsSink, rabbitMqSink, type Sink, startConnector } from '../src/connectors.js';
import type { EventStore } from '../src/index.js';
import { openPostgresStore } from '../src/postgres.js';
import { openSqliteStore } from '../src/sqlite.js';
import { benchEvent, flags, interleave, printScenario, type Result } from './harness.js';

const DIR = join(process.cwd(), '.bench-data', 'connectors');
const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';
const PG_URL = process.env.LOGLINE_BENCH_PG_URL ?? process.env.LOGLINE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const EVENTS = flags.quick ? 2_000 : 20_000;
const APPENDS = flags.quick ? 500 : 3_000;
/** The steady-rate part: appends per side at PACED_RATE appends/s (15 s per side in a full run). */
const PACED_RATE = 500;
const PACED_APPENDS = flags.quick ? 1_000 : 7_500;
const tag = randomBytes(3).toString('hex');
/** `--appends-only`: skip the delivery rates, measure only append latency with and without connectors. */
const APPENDS_ONLY = process.argv.includes('--appends-only');

/** The webhook receiver runs in a child process (bench/children/webhook-receiver.ts), off the writer's CPU time. */
async function webhookReceiver(): Promise<{ url: string; close: () => Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'children', 'webhook-receiver.ts')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  return {
    url: line.toString().trim(),
    close: async () => {
      child.kill();
      await once(child, 'exit');
    },
  };
}

/** Starts `count` connectors over the whole log and times until each delivered `total` events. */
async function deliverAll(store: EventStore, label: string, count: number, sinkFor: (k: number) => Sink, total: number): Promise<Result> {
  const started = performance.now();
  const connectors: ConnectorHandle[] = [];
  for (let k = 0; k < count; k++) {
    connectors.push(
      await startConnector(store, {
        name: `bench-${tag}-${label.replace(/\W+/g, '_')}-${count}-${k}`,
        sink: sinkFor(k),
        delivery: { batchSize: 500 },
      }),
    );
  }
  while (connectors.some((c) => c.stats().delivered < total)) {
    const stuck = connectors.find((c) => c.stats().breaker !== 'closed');
    if (stuck) throw new Error(`${label}: breaker ${stuck.stats().breaker}: ${stuck.stats().lastError}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(connectors.map((c) => c.stop()));
  return {
    label: `${label}, ${count} connector${count > 1 ? 's' : ''}`,
    events: total * count,
    seconds,
    eventsPerSec: (total * count) / seconds,
  };
}

export async function run(): Promise<void> {
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  const webhook = await webhookReceiver();
  try {
    if (!APPENDS_ONLY) await deliveryRates(webhook.url);
    await appendLatency('SQLite synchronous=FULL', webhook.url, async () => {
      const path = join(DIR, `${randomBytes(3).toString('hex')}.db`);
      return { store: await openSqliteStore({ path }), url: `sqlite:${path}` };
    });
    await appendLatency('PostgreSQL', webhook.url, async () => {
      const schema = `bench_connectors_${randomBytes(3).toString('hex')}`;
      const pg = await openPostgresStore({ url: PG_URL, schema });
      const close = pg.close.bind(pg);
      const store = Object.assign(pg, {
        close: async () => {
          await pg.sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
          await close();
        },
      });
      return { store, url: `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}` };
    });
  } finally {
    await webhook.close();
    rmSync(DIR, { recursive: true, force: true });
  }
}

/** A SQLite log of EVENTS events, delivered whole by 1 and then 8 connectors to each sink. */
async function deliveryRates(webhookUrl: string): Promise<void> {
  const store = await openSqliteStore({ path: join(DIR, 'source.db') });
  for (let i = 0; i < EVENTS; i += 500) {
    await store.append(
      `order-${i / 500}`,
      Array.from({ length: 500 }, (_, j) => benchEvent(i + j)),
    );
  }
  const rabbit = await amqp.connect(AMQP_URL);
  const channel = await rabbit.createChannel();
  const exchange = `logline-bench-${tag}`;
  await channel.assertExchange(exchange, 'topic', { durable: true });
  await channel.assertQueue(exchange, { durable: true });
  await channel.bindQueue(exchange, exchange, '#');
  const nc = await connectNats({ servers: '127.0.0.1:4222' });
  const jsm = await jetstreamManager(nc);
  // One JetStream stream per connector: a stream de-duplicates by event id, and every connector sends the same ids.
  for (let k = 0; k < 8; k++)
    await jsm.streams.add({ name: `bench-${tag}-${k}`, subjects: [`bench${tag}k${k}.>`], max_bytes: 512 * 1024 * 1024 });

  const sinks: Array<[string, (k: number) => Sink]> = [
    ['webhook', () => httpSink({ url: webhookUrl, connector: 'bench', secret: 'bench-secret-0123456789' })],
    ['RabbitMQ', () => rabbitMqSink({ url: AMQP_URL, exchange })],
    ['NATS JetStream', (k) => natsSink({ servers: 'nats://127.0.0.1:4222', subject: `bench${tag}k${k}` })],
    ['MQTT QoS 1', (k) => mqttSink({ url: 'mqtt://127.0.0.1:1883', topic: `bench-${tag}-${k}` })],
  ];
  const results: Result[] = [];
  try {
    for (const [label, sinkFor] of sinks) {
      for (const count of [1, 8]) results.push(await deliverAll(store, label, count, sinkFor, EVENTS));
      await channel.purgeQueue(exchange);
    }
  } finally {
    await channel.deleteQueue(exchange).catch(() => {});
    await channel.deleteExchange(exchange).catch(() => {});
    await rabbit.close().catch(() => {});
    for (let k = 0; k < 8; k++) await jsm.streams.delete(`bench-${tag}-${k}`).catch(() => {});
    await nc.close();
    await store.close();
  }
  printScenario(`Delivery: the whole log (${EVENTS.toLocaleString('en-US')} events), events/s summed over the connectors`, results);
}

/** 8 live webhook connectors over the store at `url`, in a child process (bench/children/connectors-process.ts). */
async function connectorsProcess(url: string, webhookUrl: string) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'children', 'connectors-process.ts'), url, webhookUrl, '8'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let output = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    output += chunk;
  });
  while (!output.includes('ready')) {
    if (child.exitCode !== null) throw new Error(`the connectors process exited with ${child.exitCode}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return {
    /** Stops it; returns the connectors' lag when the appends ended. */
    async stop(): Promise<string> {
      child.kill('SIGTERM');
      await once(child, 'exit');
      return /lag (.*)/.exec(output)?.[1] ?? '?';
    },
  };
}

/**
 * Single-event appends to three stores side by side (slices alternate): one without connectors,
 * one with 8 live webhook connectors in this (the writer's) process, one whose 8 connectors run
 * in another process.
 */
async function appendLatency(backend: string, webhookUrl: string, open: () => Promise<{ store: EventStore; url: string }>): Promise<void> {
  const plain = (await open()).store;
  const served = (await open()).store;
  const remote = await open();
  const live: ConnectorHandle[] = [];
  for (let k = 0; k < 8; k++) {
    const sink = httpSink({ url: webhookUrl, connector: `live-${k}` });
    live.push(await startConnector(served, { name: `live-${k}`, sink, source: { from: 'end' } }));
  }
  const elsewhere = await connectorsProcess(remote.url, webhookUrl);
  const append = (store: EventStore) => (i: number) => store.append(`order-${i % 100}`, [benchEvent(i)]);
  const sides = (perSecond?: number) =>
    [
      { label: 'no connectors', store: plain },
      { label: '8 webhook connectors, same process', store: served },
      { label: '8 webhook connectors, other process', store: remote.store },
    ].map(({ label, store }) => ({
      label,
      operations: perSecond ? PACED_APPENDS : APPENDS,
      eventsPerOperation: 1,
      concurrency: 1,
      operation: append(store),
      ...(perSecond ? { perSecond } : {}),
    }));
  // Flat out, the writer and the connectors compete for the machine's cores; at a steady rate (how
  // an application appends) the question is only whether the connectors delay an append.
  const flatOut = await interleave(sides());
  const paced = await interleave(sides(PACED_RATE));
  const behind = await Promise.all(live.map(async (c) => (await c.progress()).lag));
  const behindElsewhere = await elsewhere.stop();
  printScenario(`Append latency (1 event per append, 1 writer flat out, ${backend}) with and without connectors`, flatOut, 'no connectors');
  printScenario(
    `Append latency (1 event per append, open loop at ${PACED_RATE} appends/s, latency from when due, ${backend}) with and without connectors`,
    paced,
    'no connectors',
  );
  console.log(`\nconnector lag when the appends ended: same process ${behind.join(', ')}; other process ${behindElsewhere} positions`);
  await Promise.all(live.map((c) => c.stop()));
  await Promise.all([plain.close(), served.close(), remote.store.close()]);
}
