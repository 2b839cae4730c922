/**
 * Issue 11: several application processes appending to one schema (their commits take turns on
 * the ordering lock; docs/postgres.md). Real processes (crash-writer.ts, live-reader.ts), real PostgreSQL.
 *
 * 1. No skip across processes: 4 processes × 8 writers, some commits held open at random, an
 *    unrelated session idle in a transaction all along, a live subscriber in a fifth process and
 *    a polling reader here. The subscriber's sequence equals the final $all (no gap, duplicate or
 *    reorder), the poller never sees a position below one it saw, and the idle transaction holds
 *    no reader back.
 * 2. kill -9 of one of three writer processes mid-load: acknowledged appends durable, nothing
 *    partial, the other processes go on, and the subscriber is not stalled by the dead session.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../../../src/index.js';
import { openPostgresStore, type PostgresEventStore } from '../../../src/postgres.js';
import { collect, event, sleep } from '../../helpers/collect.js';
import { freshSchemaUrl, PG_URL, requirePostgres } from '../../helpers/postgres.js';
import { onLines, spawnTs } from '../../helpers/process.js';

const reachable = await requirePostgres();
const WRITER = fileURLToPath(new URL('./crash-writer.ts', import.meta.url));
const READER = fileURLToPath(new URL('./live-reader.ts', import.meta.url));
const cleanups: Array<() => Promise<void>> = [];
const children: ChildProcess[] = [];
afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

interface Ack {
  appendId: string;
  stream: string;
  count: number;
  streamVersion: number;
  at: number;
}

/** A writer process: resolves `ready` once its store is open; `done` when it exits (by itself or killed). */
function startWriter(url: string, loops: number, hold: number, runMs: number) {
  const child = spawnTs(WRITER, [url, String(loops), String(hold), String(runMs)]);
  children.push(child);
  const acks: Ack[] = [];
  let stderr = '';
  child.stderr?.on('data', (chunk) => (stderr += chunk));
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  onLines(child, (line) => {
    if (line === 'READY') markReady();
    const [tag, appendId, stream, count, version] = line.split(' ');
    if (tag === 'ACK')
      acks.push({
        appendId: appendId as string,
        stream: stream as string,
        count: Number(count),
        streamVersion: Number(version),
        at: Date.now(),
      });
  });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, acks, ready, done, stderr: () => stderr };
}

/** The live subscriber process: the positions and ids it received, in order. */
function startReader(url: string) {
  const child = spawnTs(READER, [url]);
  children.push(child);
  const received: Array<{ position: bigint; id: string }> = [];
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  onLines(child, (line) => {
    if (line === 'READY') markReady();
    const [tag, position, id] = line.split(' ');
    if (tag === 'EV') received.push({ position: BigInt(position as string), id: id as string });
  });
  return { child, received, ready };
}

/** Waits until the subscriber has received `head`; returns how long that took. */
async function caughtUp(received: Array<{ position: bigint }>, head: bigint, timeoutMs: number): Promise<number> {
  const start = Date.now();
  while ((received.at(-1)?.position ?? 0n) < head && Date.now() - start < timeoutMs) await sleep(20);
  return Date.now() - start;
}

/** Every stored append whole, every acknowledged one stored at its version, versions contiguous. */
async function expectDurableAndWhole(store: PostgresEventStore, all: RecordedEvent[], acks: Ack[]): Promise<void> {
  const byAppend = new Map<string, RecordedEvent[]>();
  for (const e of all) {
    const { appendId } = e.data as { appendId?: string };
    if (appendId === undefined) continue; // not a writer process's (the probe)
    byAppend.set(appendId, [...(byAppend.get(appendId) ?? []), e]);
  }
  for (const events of byAppend.values()) {
    const { count } = (events[0] as RecordedEvent).data as { count: number };
    expect(events).toHaveLength(count);
    expect(events.map((e) => e.streamVersion - (events[0] as RecordedEvent).streamVersion)).toEqual(events.map((_, k) => k));
  }
  for (const ack of acks) {
    const events = byAppend.get(ack.appendId);
    expect(events, `acknowledged append ${ack.appendId} is missing`).toBeDefined();
    expect((events as RecordedEvent[]).at(-1)?.streamVersion).toBe(ack.streamVersion);
    expect((events as RecordedEvent[])[0]?.streamId).toBe(ack.stream);
  }
  expect(acks.length).toBeGreaterThan(20);
  for (const info of await store.listStreams()) {
    const versions = (await collect(store.read(info.streamId))).map((e) => e.streamVersion);
    expect(versions).toEqual(versions.map((_, k) => k + 1));
  }
}

describe.skipIf(!reachable)('postgres: many processes appending to one schema', () => {
  it('never lets a reader miss, repeat or reorder an event: 4 processes × 8 writers, commits held open, an idle transaction', async () => {
    const { url, drop } = await freshSchemaUrl();
    cleanups.push(drop);
    const reader = await openPostgresStore({ url, poolSize: 2, pollMs: 50 });
    cleanups.push(() => reader.close());

    // An unrelated session that sits idle in a transaction (with an xid) the whole time.
    const idle = postgres(PG_URL, { max: 1, onnotice: () => {} });
    cleanups.push(() => idle.end({ timeout: 1 }));
    const holder = await idle.reserve();
    await holder`BEGIN`;
    await holder`SELECT pg_current_xact_id()`;

    const subscriber = startReader(url);
    await subscriber.ready;
    const writers = Array.from({ length: 4 }, () => startWriter(url, 8, 0.125, 3000));
    await Promise.all(writers.map((w) => w.ready));

    // A polling reader that checks "never lower than seen" on every page.
    let stopPolling = false;
    let violations = 0;
    let polled = 0;
    const polling = (async () => {
      let highest = 0n;
      while (!stopPolling) {
        const page = await collect(reader.readAll({ from: highest, limit: 200 }));
        for (const e of page) {
          if (e.position <= highest) violations++;
          highest = e.position > highest ? e.position : highest;
          polled++;
        }
        if (!page.length) await sleep(2);
      }
    })();

    // Mid-run, with the idle transaction open: an append is visible to readers at once.
    await sleep(1000);
    const { position } = await reader.append('probe', [event('Probe')]);
    const probeStart = performance.now();
    while ((await collect(reader.readAll({ from: position - 1n, limit: 1 }))).length === 0) await sleep(1);
    const visibleAfterMs = performance.now() - probeStart;

    const exits = await Promise.all(writers.map((w) => w.done));
    expect(exits.map((e) => e.code)).toEqual([0, 0, 0, 0]);
    const acks = writers.flatMap((w) => w.acks);
    const all = await collect(reader.readAll());
    const head = (all.at(-1) as RecordedEvent).position;
    await caughtUp(subscriber.received, head, 15_000);
    stopPolling = true;
    await polling;
    await holder`COMMIT`;
    holder.release();

    // The idle transaction held nobody back: under the xid filter it would have been its whole life.
    expect(visibleAfterMs).toBeLessThan(1000);
    expect(all.length).toBe(acks.reduce((sum, a) => sum + a.count, 0) + 1);
    expect(subscriber.received.map((e) => e.id)).toEqual(all.map((e) => e.id));
    expect(violations).toBe(0);
    expect(polled).toBe(all.length);
    for (let i = 1; i < all.length; i++) expect((all[i] as RecordedEvent).position > (all[i - 1] as RecordedEvent).position).toBe(true);
    await expectDurableAndWhole(reader, all, acks);
  }, 60_000);

  it('survives kill -9 of one writer process mid-load: acknowledged appends kept, nothing partial, the others and the subscriber go on', async () => {
    const { url, drop } = await freshSchemaUrl();
    cleanups.push(drop);
    const reader = await openPostgresStore({ url, poolSize: 2 });
    cleanups.push(() => reader.close());
    const subscriber = startReader(url);
    await subscriber.ready;
    // The victim holds half its commits open, so the kill likely lands with a commit in flight.
    const victim = startWriter(url, 4, 0.5, 0);
    const others = [startWriter(url, 4, 0, 0), startWriter(url, 4, 0, 0)];
    await Promise.all([victim.ready, ...others.map((w) => w.ready)]);
    await sleep(800);
    victim.child.kill('SIGKILL');
    const killedAt = Date.now();
    expect((await victim.done).signal).toBe('SIGKILL');
    // The others go on for a second after the kill, then stop cleanly (SIGTERM: every append answered).
    await sleep(1000);
    for (const w of others) w.child.kill('SIGTERM');
    const exits = await Promise.all(others.map((w) => w.done));
    expect(exits.map((e) => e.code)).toEqual([0, 0]);

    const acks = [victim, ...others].flatMap((w) => w.acks);
    expect(victim.acks.length).toBeGreaterThan(0);
    // The other processes went on appending after the kill.
    for (const w of others) expect(w.acks.filter((a) => a.at > killedAt + 200).length).toBeGreaterThan(0);
    const all = await collect(reader.readAll());
    const head = (all.at(-1) as RecordedEvent).position;
    // Not stalled: the dead session's locks went with it, and NOTIFY woke the subscriber.
    const waited = await caughtUp(subscriber.received, head, 15_000);
    expect(waited).toBeLessThan(5000);
    expect(subscriber.received.map((e) => e.id)).toEqual(all.map((e) => e.id));
    await expectDurableAndWhole(reader, all, acks);
  }, 60_000);
});
