/**
 * Durability and atomicity across kill -9: a child process appends batches and prints each
 * acknowledged append; the parent kills it at random moments, many times. After each kill every
 * acknowledged append is stored, every append is stored entirely or not at all, and each stream's
 * versions are contiguous.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../../../src/index.js';
import { openPostgresStore } from '../../../src/postgres.js';
import { collect } from '../../helpers/collect.js';
import { freshSchemaUrl, requirePostgres, sessionsGone } from '../../helpers/postgres.js';

const reachable = await requirePostgres();
const writer = fileURLToPath(new URL('./crash-writer.ts', import.meta.url));
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

const KILLS = 15;

interface Ack {
  appendId: string;
  stream: string;
  count: number;
  streamVersion: number;
}

/** Runs the writer until its first acknowledged append, lets it write `writeMs` more, kills it; returns its acknowledgements. */
function runAndKill(url: string, writeMs: number): Promise<Ack[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', writer, url], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acks: Ack[] = [];
    let buffer = '';
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        const [tag, appendId, stream, count, version] = line.split(' ');
        if (tag === 'ACK') {
          acks.push({ appendId: appendId as string, stream: stream as string, count: Number(count), streamVersion: Number(version) });
          // Timed from the first acknowledgement, not from start-up: on a loaded machine a kill
          // timed from READY often landed before anything was written, and tested nothing.
          if (acks.length === 1) setTimeout(() => child.kill('SIGKILL'), writeMs);
        }
      }
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(acks);
      else reject(new Error(`writer exited on its own (code ${code}): ${stderr}`));
    });
  });
}

describe.skipIf(!reachable)('postgres crash safety', () => {
  it(`keeps every acknowledged append, whole, across ${KILLS} kill -9s`, async () => {
    const { url, schema, drop } = await freshSchemaUrl();
    cleanups.push(drop);
    const acked = new Map<string, Ack>();
    let killsWithWrites = 0;
    for (let round = 0; round < KILLS; round++) {
      const acks = await runAndKill(url, 50 + Math.floor(Math.random() * 450));
      if (acks.length > 1) killsWithWrites++; // more than the append the writer makes before READY
      for (const ack of acks) acked.set(ack.appendId, ack);

      // Once the killed process's sessions are gone (a statement or COMMIT it had sent still
      // commits), a fresh store sees all that was committed, and nothing commits during its reads.
      await sessionsGone(schema);
      const store = await openPostgresStore({ url, poolSize: 1 });
      try {
        const all = await collect(store.readAll());
        const byAppend = new Map<string, RecordedEvent[]>();
        for (const e of all) {
          const { appendId } = e.data as { appendId: string };
          byAppend.set(appendId, [...(byAppend.get(appendId) ?? []), e]);
        }
        // All or nothing: every stored append has all its events, consecutive in its stream.
        for (const events of byAppend.values()) {
          const { count } = (events[0] as RecordedEvent).data as { count: number };
          expect(events).toHaveLength(count);
          expect(events.map((e) => e.streamVersion - (events[0] as RecordedEvent).streamVersion)).toEqual(events.map((_, k) => k));
        }
        // Durable: every acknowledged append is there, at the version it was acknowledged with.
        for (const ack of acked.values()) {
          const events = byAppend.get(ack.appendId);
          expect(events, `acknowledged append ${ack.appendId} is missing`).toBeDefined();
          expect((events as RecordedEvent[]).at(-1)?.streamVersion).toBe(ack.streamVersion);
          expect((events as RecordedEvent[])[0]?.streamId).toBe(ack.stream);
        }
        // Contiguous versions in every stream.
        for (const info of await store.listStreams()) {
          const versions = (await collect(store.read(info.streamId))).map((e) => e.streamVersion);
          expect(versions).toEqual(versions.map((_, k) => k + 1));
          expect(info.version).toBe(versions.length);
        }
      } finally {
        await store.close();
      }
    }
    expect(killsWithWrites).toBeGreaterThanOrEqual(KILLS - 2);
    expect(acked.size).toBeGreaterThan(KILLS * 5);
  }, 90_000);
});
