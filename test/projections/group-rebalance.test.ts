/**
 * A rebalance only moves partitions: workers of a consumer group join and leave (real processes)
 * while handlers fail and retry; no worker dies, every event is handled, each stream in order,
 * and always-failing events are parked once each.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../../src/index.js';
import { joinGroup, listConsumers, listParked } from '../../src/projections.js';
import { event, sleep } from '../helpers/collect.js';
import { spawnChild } from './children.js';
import { backends, processBackends, tempDir } from './stores.js';

const WORKER = fileURLToPath(new URL('./fixtures/retrying-group-worker.ts', import.meta.url));
/** The fixture's `retry.maxAttempts`. */
const MAX_ATTEMPTS = 3;

interface Line {
  what: 'ok' | 'fail';
  member: string;
  stream: string;
  version: number;
  position: bigint;
}

const readLog = (path: string): Line[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [what, member, stream, version, position] = line.split(' ') as [Line['what'], string, string, string, string];
      return { what, member, stream, version: Number(version), position: BigInt(position) };
    });

/**
 * Whether `member` waits to retry an event: the last line logged for some event is `member`'s
 * failure, and fewer than the fixture's three attempts failed there (after the third the event is
 * parked, and poison is never handled, so "failed and not handled" alone would stay true forever).
 */
function isRetrying(log: string, member: string): boolean {
  const last = new Map<bigint, Line>();
  const failures = new Map<bigint, number>();
  for (const line of readLog(log)) {
    last.set(line.position, line);
    if (line.what === 'fail' && line.member === member) failures.set(line.position, (failures.get(line.position) ?? 0) + 1);
  }
  return [...last.values()].some((l) => l.what === 'fail' && l.member === member && (failures.get(l.position) ?? 0) < MAX_ATTEMPTS);
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * Per stream, every event that is not poison is handled, and each for the first time in version
 * order (a repeat may only re-handle one already handled). Returns the number of repeats.
 */
function checkOrder(handled: Line[], events: RecordedEvent[]): number {
  let repeats = 0;
  const streams = new Set(events.map((e) => e.streamId));
  for (const stream of streams) {
    const expected = events.filter((e) => e.streamId === stream && e.type !== 'Poison').map((e) => e.streamVersion);
    const seen = handled.filter((h) => h.stream === stream).map((h) => h.version);
    let next = 0;
    for (const version of seen) {
      if (version === expected[next]) next++;
      else {
        expect(expected.slice(0, next), `${stream}: version ${version} handled out of order`).toContain(version);
        repeats++;
      }
    }
    expect(next, `${stream}: handled ${seen.join(',')}`).toBe(expected.length);
  }
  return repeats;
}

describe.each(processBackends('rebalance.db'))('consumer-group rebalances during retries ($name)', (backend) => {
  const tmp = tempDir();
  afterAll(() => tmp.remove());

  it('workers join and leave while handlers fail and retry: none dies, every event handled in stream order, poison parked once', async () => {
    const log = join(tmp.dir, 'handled.log');
    writeFileSync(log, '');
    const { url, store, dispose } = await backend.open(tmp.dir);
    const workers: Array<ReturnType<typeof spawnChild> & { member: string; stopping: boolean }> = [];
    const diedEarly: string[] = [];
    const spawnWorker = async (member: string) => {
      const worker = { member, stopping: false, ...spawnChild(WORKER, [url, log, member]) };
      void worker.exited.then((code) => {
        if (!worker.stopping) diedEarly.push(`${member} exited with ${code}`);
      });
      workers.push(worker);
      await worker.ready;
    };
    const leave = async (worker: (typeof workers)[number]) => {
      expect(diedEarly).toEqual([]);
      worker.stopping = true;
      worker.child.kill('SIGTERM');
      expect(await worker.exited, `${worker.member} left cleanly`).toBe(0);
    };

    try {
      // Events keep coming while the group changes: every fifth round has a flaky event, a few are
      // poison; rounds go round-robin over 12 streams, so both land on every stream.
      let appending = true;
      const appender = (async () => {
        for (let round = 0; appending && round < 200; round++) {
          await store.append(`s-${round % 12}`, [
            event('Ok', { round }),
            event(round % 5 === 0 ? 'Flaky' : 'Ok', { round }),
            event(round % 13 === 7 ? 'Poison' : 'Ok', { round }),
          ]);
          await sleep(100);
        }
      })();
      try {
        await Promise.all([spawnWorker('w1'), spawnWorker('w2')]);
        // Each join and each leave moves partitions away from workers that are waiting to retry.
        // (Starting a worker process takes a second or more: the others are at work, and retrying, meanwhile.)
        for (let n = 3; n <= 4; n++) {
          await spawnWorker(`w${n}`);
          // Let the join's rebalance happen (heartbeats every second) before the leave's.
          await sleep(1000);
          const leaver = workers.find((w) => !w.stopping) as (typeof workers)[number];
          // Leave while waiting to retry (the fixture waits 0.5 s, then 1 s), so that another
          // worker finishes the event; the assertions below check that this happened.
          await until(() => isRetrying(log, leaver.member), 15_000, `${leaver.member} waiting to retry`);
          await leave(leaver);
        }
      } finally {
        appending = false;
        await appender;
      }

      const events: RecordedEvent[] = [];
      for await (const e of store.readAll()) events.push(e);
      const poison = events.filter((e) => e.type === 'Poison').map((e) => e.position);
      const wanted = events.filter((e) => e.type !== 'Poison').length;
      const handledOnce = () =>
        new Set(
          readLog(log)
            .filter((l) => l.what === 'ok')
            .map((l) => l.position),
        ).size;
      await until(() => handledOnce() === wanted, 30_000, `all ${wanted} events handled`);
      await until(
        async () => (await listParked(store, { consumer: 'retrying' })).length >= poison.length,
        30_000,
        'every poison event parked',
      );
      const head = await store.headPosition();
      const atHead = async () => {
        const partitions = (await listConsumers(store)).filter((c) => c.kind === 'group');
        return partitions.length === 8 && partitions.every((c) => c.checkpoint === head);
      };
      // Events of other partitions only move a partition's checkpoint when its owner reads past them.
      await until(atHead, 30_000, 'every partition checkpoint at the head');
      for (const worker of workers.filter((w) => !w.stopping)) await leave(worker);

      expect(diedEarly).toEqual([]);
      const lines = readLog(log);
      const handled = lines.filter((l) => l.what === 'ok');
      const repeats = checkOrder(handled, events);
      // Workers only left cleanly: each hand-over saved its checkpoints first, so nothing ran twice.
      expect(repeats).toBe(0);
      const parked = await listParked(store, { consumer: 'retrying' });
      expect(parked.map((p) => p.position).sort((a, b) => Number(a - b))).toEqual(poison);
      // The scenario happened: a rebalance moved events between workers while they were retrying.
      const failedBy = new Map<bigint, Set<string>>();
      for (const l of lines.filter((l) => l.what === 'fail'))
        failedBy.set(l.position, (failedBy.get(l.position) ?? new Set()).add(l.member));
      const movedMidRetry = [...failedBy.values()].filter((members) => members.size > 1);
      expect(movedMidRetry.length).toBeGreaterThan(0);
      expect(await atHead()).toBe(true);
    } finally {
      // A failed run must not leave workers behind (they would poll the store forever).
      for (const worker of workers) if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL');
      await Promise.all(workers.map((w) => w.exited));
      await dispose();
    }
  }, 90_000);
});

for (const backend of backends) {
  describe(`consumer-group rebalance during a retry, in one process (${backend.name})`, () => {
    it('a worker waiting to retry survives a join: it hands over or keeps the partition, and the event is handled', async () => {
      const { store, dispose } = await backend.open();
      const workers: Awaited<ReturnType<typeof joinGroup>>[] = [];
      try {
        let failures = 0;
        const handled: string[] = [];
        const join = async (member: string) => {
          const worker = await joinGroup(store, {
            group: 'g',
            member,
            partitions: 4,
            leaseMs: 600,
            // The retry waits 0.5–1 s: the join's rebalance (within one 200 ms heartbeat) lands in it.
            retry: { maxAttempts: 3, initialDelayMs: 1000, maxDelayMs: 1000 },
            handler(e) {
              if (e.type === 'Flaky' && failures < 2) {
                failures++;
                throw new Error('flaky');
              }
              handled.push(`${member}:${e.streamId}:${e.streamVersion}`);
            },
          });
          workers.push(worker);
          return worker;
        };
        const a = await join('a');
        let aEnded = false;
        void a.done.finally(() => (aEnded = true)).catch(() => {});
        await store.append('x', [event('Ok'), event('Flaky'), event('Ok')]);
        await until(() => failures === 1, 5000, 'the first failure');
        const b = await join('b');
        await until(() => a.partitions.length === 2 && b.partitions.length === 2, 5000, 'a fair split');
        await until(() => handled.length === 3, 10_000, 'the flaky event and the one after it');
        expect(aEnded).toBe(false);
        expect(handled.map((h) => h.split(':').slice(1).join(':'))).toEqual(['x:1', 'x:2', 'x:3']);
        await a.stop();
        await b.stop();
        await expect(a.done).resolves.toBeUndefined();
        await expect(b.done).resolves.toBeUndefined();
      } finally {
        // A worker that died has a rejected done, which its stop() returns: clean up regardless.
        for (const worker of workers) await worker.stop().catch(() => {});
        await dispose();
      }
    });
  });
}
