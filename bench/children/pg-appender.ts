/**
 * Bench child for `npm run bench -- postgres-procs`: one application process appending 1-event
 * appends with `writers` concurrent callers through one contender (logline, raw postgres.js,
 * emmett or castore). It prints READY once connected; then each stdin line `RUN <count>` runs
 * `count` appends spread over its writers and answers `DONE <latencies ms, JSON>`; `EXIT` ends it.
 *
 *   node --import tsx pg-appender.ts <kind> <db url> <tag> <writers>
 */
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { PostgresEventStorageAdapter } from '@castore/event-storage-adapter-postgres';
import { getPostgreSQLEventStore } from '@event-driven-io/emmett-postgresql';
import postgres from 'postgres';
import { openPostgresStore } from '../../src/postgres.js';
import { benchEvent } from '../harness.js';

const [kind = '', url = '', tag = '', writersArg = '4'] = process.argv.slice(2);
const writers = Number(writersArg);

/** Appends one event to `stream` (each stream belongs to one writer, so versions are known). */
type Append = (stream: string, i: number) => Promise<void>;

async function contender(): Promise<{ append: Append; close(): Promise<unknown> }> {
  const versions = new Map<string, number>();
  if (kind === 'logline') {
    const store = await openPostgresStore({ url, poolSize: 2 });
    return {
      append: async (stream, i) => {
        const result = await store.append(stream, [benchEvent(i)], { expectedVersion: versions.get(stream) ?? 'no_stream' });
        versions.set(stream, result.streamVersion);
      },
      close: () => store.close(),
    };
  }
  if (kind === 'raw') {
    // As in bench/postgres.ts: autocommit INSERT into the same columns, no checks, no order.
    const sql = postgres(url, { max: writers, onnotice: () => {} });
    return {
      append: async (stream, i) => {
        const version = (versions.get(stream) ?? 0) + 1;
        const e = benchEvent(i);
        await sql`INSERT INTO raw_procs (stream_id, stream_version, id, type, data, metadata)
                  VALUES (${stream}, ${version}, ${randomUUID()}, ${e.type}, ${JSON.stringify(e.data)}::text::json,
                          ${JSON.stringify(e.metadata)}::text::json)`;
        versions.set(stream, version);
      },
      close: () => sql.end({ timeout: 1 }),
    };
  }
  if (kind === 'emmett') {
    const store = getPostgreSQLEventStore(url);
    return {
      append: async (stream, i) => {
        const e = benchEvent(i);
        const result = await store.appendToStream(
          stream,
          [{ type: e.type, data: e.data as Record<string, unknown>, metadata: e.metadata as Record<string, unknown> }],
          { expectedStreamVersion: BigInt(versions.get(stream) ?? 0) },
        );
        versions.set(stream, Number(result.nextExpectedStreamVersion));
      },
      close: () => store.close(),
    };
  }
  if (kind === 'castore') {
    const adapter = new PostgresEventStorageAdapter({ connectionString: url, tableName: 'castore_events' });
    const ids = new Map<string, string>();
    return {
      append: async (stream, i) => {
        let aggregateId = ids.get(stream);
        if (!aggregateId) ids.set(stream, (aggregateId = randomUUID()));
        const version = (versions.get(stream) ?? 0) + 1;
        const e = benchEvent(i);
        await adapter.pushEvent({ aggregateId, version, type: e.type, payload: e.data, metadata: e.metadata }, { eventStoreId: 'orders' });
        versions.set(stream, version);
      },
      // The adapter has no close(); its postgres.js client is private.
      close: () => (adapter as unknown as { _sql: postgres.Sql })._sql.end({ timeout: 1 }),
    };
  }
  throw new Error(`unknown contender '${kind}'`);
}

const { append, close } = await contender();
let next = 0;
process.stdout.write('READY\n');
for await (const line of createInterface({ input: process.stdin })) {
  const [command, countArg] = line.split(' ');
  if (command === 'EXIT') break;
  const count = Number(countArg);
  const latencies: number[] = [];
  let done = 0;
  await Promise.all(
    Array.from({ length: writers }, async (_, worker) => {
      while (done < count) {
        done++;
        const i = next++;
        const t0 = performance.now();
        await append(`${tag}-${worker}-${i % 7}`, i);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  process.stdout.write(`DONE ${JSON.stringify(latencies.map((ms) => Math.round(ms * 1000) / 1000))}\n`);
}
await close();
process.exit(0);
