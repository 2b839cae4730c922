/**
 * Crash test: a writer process appends batches of events and prints each acknowledged append;
 * we kill -9 it at random moments. After every kill the file must open cleanly, every stream must
 * be contiguous, every append all-or-nothing, and every acknowledged append present. Every other
 * kill hits a writer whose appends are coalesced: four appends committed in one transaction, which
 * a kill leaves whole or absent.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../../src/sqlite.js';
import { onLines, spawnTs } from '../../helpers/process.js';

const dir = mkdtempSync(join(tmpdir(), 'logline-crash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const KILLS = 20;

interface Ack {
  batch: string;
  stream: string;
  version: number;
  events: number;
}

async function runAndKill(file: string, prefix: string, mode: 'single' | 'coalesced'): Promise<{ acks: Ack[]; inFlight: boolean }> {
  const child = spawnTs(join(import.meta.dirname, 'children', 'batch-writer.ts'), [file, prefix, mode]);
  const acks: Ack[] = [];
  let sentSinceAck = 0;
  let ready: () => void;
  const isReady = new Promise<void>((resolve) => (ready = resolve));
  onLines(child, (line) => {
    if (line === 'ready') ready();
    const [tag, batch = '', stream = '', version = ''] = line.split(' ');
    if (tag === 'sent') sentSinceAck = 4;
    if (tag === 'ack') {
      acks.push({ batch, stream, version: Number(version), events: mode === 'coalesced' ? 25 : 100 });
      sentSinceAck--;
    }
  });
  const exited = new Promise<void>((resolve) => child.stdout?.on('close', () => resolve()));
  child.stderr?.resume();
  await isReady;
  await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 300));
  child.kill('SIGKILL');
  await exited; // everything the child printed before dying has been read
  // Whether the kill landed while a coalesced group was requested but not all acknowledged.
  return { acks, inFlight: sentSinceAck > 0 };
}

describe('sqlite: kill -9 during appends', () => {
  it(`keeps every acknowledged batch and never a partial one (${KILLS} kills)`, async () => {
    const file = join(dir, 'crash.db');
    const acked: Ack[] = [];
    let coalescedInFlight = 0;
    for (let kill = 0; kill < KILLS; kill++) {
      const { acks, inFlight } = await runAndKill(file, `k${kill}`, kill % 2 ? 'coalesced' : 'single');
      acked.push(...acks);
      if (inFlight) coalescedInFlight++;

      const db = new Database(file);
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      const partial = db
        .prepare(
          "SELECT json_extract(data, '$.batch') AS batch FROM events GROUP BY batch HAVING count(*) != max(json_extract(data, '$.n'))",
        )
        .all();
      expect(partial).toEqual([]);
      // A coalesced group is one transaction: all four of its appends, or none.
      const split = db
        .prepare(
          "SELECT json_extract(data, '$.group') AS g FROM events WHERE json_extract(data, '$.n') = 25 GROUP BY g HAVING count(DISTINCT json_extract(data, '$.batch')) != 4",
        )
        .all();
      expect(split).toEqual([]);
      const streams = db
        .prepare('SELECT stream_id, count(*) AS n, min(stream_version) AS lo, max(stream_version) AS hi FROM events GROUP BY stream_id')
        .all() as {
        n: number;
        lo: number;
        hi: number;
      }[];
      for (const s of streams) expect([s.lo, s.hi]).toEqual([1, s.n]);
      const stored = new Map(
        (
          db
            .prepare("SELECT json_extract(data, '$.batch') AS batch, stream_id, max(stream_version) AS v FROM events GROUP BY batch")
            .all() as {
            batch: string;
            stream_id: string;
            v: number;
          }[]
        ).map((row) => [row.batch, `${row.stream_id}@${row.v}`]),
      );
      const missing = acked.filter((ack) => stored.get(ack.batch) !== `${ack.stream}@${ack.version}`);
      expect(missing).toEqual([]);
      db.close();
    }
    expect(acked.length).toBeGreaterThan(KILLS); // the writer did get work done between kills
    expect(coalescedInFlight).toBeGreaterThanOrEqual(3); // kills did land on coalesced commits in flight
    const store = await openSqliteStore({ path: file });
    const stats = await store.stats();
    expect(stats.events % 100).toBe(0);
    expect(stats.events).toBeGreaterThanOrEqual(acked.reduce((sum, ack) => sum + ack.events, 0));
    await store.close();
  }, 180_000);
});
