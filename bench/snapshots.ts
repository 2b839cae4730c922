/**
 * npm run bench -- snapshots [--quick]
 * Load time of one 100k-event aggregate on SQLite (file, WAL, synchronous=full): a full fold
 * versus the latest snapshot plus the events after it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Decider, handleCommand, loadAggregate, type NewEvent, openStore, takeSnapshot } from '../src/index.js';
import { flags, measure, printScenario, type Result } from './harness.js';

type Ev = { type: 'Deposited'; data: { amount: number; note: string } };
type Cmd = { type: 'Deposit'; data: { amount: number } };
interface Account {
  balance: number;
  deposits: number;
  largest: number;
}

const account = (every?: number): Decider<Account, Cmd, Ev> => ({
  name: 'account',
  initialState: () => ({ balance: 0, deposits: 0, largest: 0 }),
  evolve: (s, e) => ({ balance: s.balance + e.data.amount, deposits: s.deposits + 1, largest: Math.max(s.largest, e.data.amount) }),
  decide: (c) => ({ type: 'Deposited', data: { amount: c.data.amount, note: 'bench' } }),
  ...(every ? { snapshots: { every } } : {}),
});

export async function run(): Promise<void> {
  const total = flags.quick ? 10_000 : 100_000;
  const tail = 100;
  const dir = mkdtempSync(join(tmpdir(), 'logline-bench-snapshots-'));
  const store = await openStore(`sqlite:${join(dir, 'snapshots.db')}`);
  try {
    const streamId = 'account-big';
    const batch = 1000;
    for (let v = 0; v < total - tail; v += batch) {
      const events: NewEvent[] = Array.from({ length: Math.min(batch, total - tail - v) }, (_, i) => ({
        type: 'Deposited',
        data: { amount: ((v + i) % 97) + 1, note: 'bench' },
      }));
      await store.append(streamId, events, { expectedVersion: v === 0 ? 'no_stream' : v });
    }
    const withSnapshots = account(1000);
    await takeSnapshot(store, streamId, withSnapshots);
    // The tail a snapshot policy of `every: 1000` could leave behind, written by real commands.
    for (let i = 0; i < tail; i++) await handleCommand(store, streamId, { type: 'Deposit', data: { amount: 1 } }, withSnapshots);

    const full = await loadAggregate(store, streamId, withSnapshots, { useSnapshot: false });
    const fast = await loadAggregate(store, streamId, withSnapshots);
    if (JSON.stringify(full.state) !== JSON.stringify(fast.state)) throw new Error('snapshot load differs from the full fold');

    const runs = flags.quick ? 5 : 10;
    const loads: Result[] = [];
    for (const [label, useSnapshot, folded] of [
      [`full fold of ${total.toLocaleString('en-US')} events`, false, total],
      [`snapshot at ${(total - tail).toLocaleString('en-US')} + ${tail} events`, true, tail],
    ] as const) {
      const result = await measure({
        label,
        operations: runs,
        eventsPerOperation: total,
        concurrency: 1,
        operation: () => loadAggregate(store, streamId, withSnapshots, { useSnapshot }),
      });
      loads.push({ ...result, extra: { 'events folded': folded } });
    }
    printScenario(
      `SQLite: load one ${total.toLocaleString('en-US')}-event aggregate (p50/p99 = one load; events/s = aggregate events covered per second)`,
      loads,
      loads[0]?.label,
    );
    // One command on the big aggregate, each way (load + decide + append + read-back).
    const commands: Result[] = [];
    for (const [label, decider] of [
      ['handleCommand, no snapshots', account()],
      ['handleCommand, snapshots every 1000', withSnapshots],
    ] as const) {
      const result = await measure({
        label,
        operations: runs,
        eventsPerOperation: 1,
        concurrency: 1,
        operation: () => handleCommand(store, streamId, { type: 'Deposit', data: { amount: 1 } }, decider),
      });
      commands.push(result);
    }
    printScenario(
      `SQLite: commands on the ${total.toLocaleString('en-US')}-event aggregate (events/s = commands/s)`,
      commands,
      commands[0]?.label,
    );
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
