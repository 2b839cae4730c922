/**
 * npm run bench -- grpc [--quick]
 * The same SQLite store three ways, in one run: the official KurrentDB client over gRPC against a
 * real `logline serve --grpc-port` child process, Logline's HTTP API on that same process, and the
 * library in this process (its own store file). Appends (1 and 10 events per call, 16 concurrent
 * callers) and reads of one 10,000-event stream. The figures are ratios from one run.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { jsonEvent, KurrentDBClient } from '@kurrent/kurrentdb-client';
import { openStore } from '../src/index.js';
import { startServerProcess } from '../test/server/process.js';
import { benchEvent, benchPayload, countEvents, flags, interleave, measureRead, printScenario, type Result } from './harness.js';

const DATA_DIR = '.bench-data/grpc';
const CONCURRENCY = 16;
const READ_STREAM_EVENTS = 10_000;
const HTTP_PAGE = 1000;

const kurrentEvent = (i: number) => jsonEvent({ type: 'OrderPlaced', data: benchPayload(i), metadata: { correlationId: `c-${i}` } });

async function httpAppend(base: string, stream: string, events: unknown[]): Promise<void> {
  const response = await fetch(`${base}/v1/streams/${stream}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ events }),
  });
  if (response.status !== 201) throw new Error(`HTTP append answered ${response.status}: ${await response.text()}`);
  await response.arrayBuffer();
}

async function httpReadStream(base: string, stream: string): Promise<number> {
  let count = 0;
  let from: number | null = 1;
  while (from !== null) {
    const page = (await (await fetch(`${base}/v1/streams/${stream}?from=${from}&limit=${HTTP_PAGE}`)).json()) as {
      events: unknown[];
      next: number | null;
    };
    count += page.events.length;
    from = page.next;
  }
  return count;
}

export async function run(): Promise<void> {
  rmSync(DATA_DIR, { recursive: true, force: true });
  mkdirSync(DATA_DIR, { recursive: true });
  const server = await startServerProcess(['--store', `sqlite:${join(DATA_DIR, 'server.db')}`, '--grpc-port', '0']);
  const grpcPort = (JSON.parse(server.logs.find((line) => line.includes('"listening"')) ?? '{}') as { grpcPort: number }).grpcPort;
  const client = KurrentDBClient.connectionString(`kurrentdb://127.0.0.1:${grpcPort}?tls=false`);
  const library = await openStore(`sqlite:${join(DATA_DIR, 'library.db')}`);
  const base = server.url;
  const scale = flags.quick ? 0.2 : 1;
  try {
    for (const perCall of [1, 10]) {
      const operations = Math.round((perCall === 1 ? 4000 : 1000) * scale);
      const batch = (i: number) => Array.from({ length: perCall }, (_, k) => i * perCall + k);
      const results = await interleave([
        {
          label: 'KurrentDB client → gRPC',
          operations,
          eventsPerOperation: perCall,
          concurrency: CONCURRENCY,
          operation: (i) => client.appendToStream(`grpc-${i % 1000}`, batch(i).map(kurrentEvent)),
        },
        {
          label: 'HTTP API (fetch)',
          operations,
          eventsPerOperation: perCall,
          concurrency: CONCURRENCY,
          operation: (i) => httpAppend(base, `http-${i % 1000}`, batch(i).map(benchEvent)),
        },
        {
          label: 'library (in process)',
          operations,
          eventsPerOperation: perCall,
          concurrency: CONCURRENCY,
          operation: (i) => library.append(`lib-${i % 1000}`, batch(i).map(benchEvent)),
        },
      ]);
      printScenario(
        `SQLite: append ${perCall} event${perCall > 1 ? 's' : ''} per call, ${CONCURRENCY} concurrent callers`,
        results,
        'library (in process)',
      );
    }

    // One long stream, written through the library API of each side (setup, not measured).
    const events = Math.round(READ_STREAM_EVENTS * scale);
    for (let i = 0; i < events; i += 500) {
      const chunk = Array.from({ length: Math.min(500, events - i) }, (_, k) => i + k);
      await client.appendToStream('read-long', chunk.map(kurrentEvent));
      await library.append('read-long', chunk.map(benchEvent));
    }
    const reads: Result[] = [];
    const rounds = 3;
    const best = async (label: string, read: () => Promise<number>) => {
      let top: Result | undefined;
      for (let round = 0; round < rounds; round++) {
        const result = await measureRead(label, read);
        if (result.events !== events) throw new Error(`${label} read ${result.events} events, expected ${events}`);
        if (!top || result.eventsPerSec > top.eventsPerSec) top = result;
      }
      reads.push(top as Result);
    };
    await best('KurrentDB client → gRPC', () => countEvents(client.readStream('read-long')));
    await best(`HTTP API (fetch, ${HTTP_PAGE}/page)`, () => httpReadStream(base, 'read-long'));
    await best('library (in process)', () => countEvents(library.read('read-long')));
    printScenario(`SQLite: read one ${events.toLocaleString('en-US')}-event stream (best of ${rounds})`, reads, 'library (in process)');
  } finally {
    await client.dispose();
    await library.close();
    await server.stop();
    rmSync(DATA_DIR, { recursive: true, force: true });
  }
}
