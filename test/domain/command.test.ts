/** handleCommand on every real store: decide + append, metadata flow, business errors, fail-fast versions, conflict retries. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type AccountCommand, type AccountEvent, bankAccount, InsufficientFunds } from '../../examples/bank-account.js';
import {
  CommandRetriesExhaustedError,
  type Decider,
  DomainError,
  type EventStore,
  handleCommand,
  InvalidArgumentError,
  InvalidStreamIdError,
  loadAggregate,
  WrongExpectedVersionError,
} from '../../src/index.js';
import { handlerSpec } from '../../src/testing.js';
import { collect } from '../helpers/collect.js';
import { storeTargets } from './targets.js';

const opened: AccountEvent = { type: 'AccountOpened', data: { owner: 'Homer' } };
const deposit = (amount: number): AccountCommand => ({ type: 'Deposit', data: { amount } });

/** A decider that counts: every Add appends its number; state = the list in stream order. */
type CounterEvent = { type: 'Added'; data: { n: number } };
type CounterCommand = { type: 'Add'; data: { n: number } };
const counter: Decider<number[], CounterCommand, CounterEvent> = {
  name: 'counter',
  initialState: () => [],
  evolve: (state, event) => [...state, event.data.n],
  decide: (command) => ({ type: 'Added', data: { n: command.data.n } }),
};

for (const target of storeTargets()) {
  describe(`handleCommand on ${target.name}`, () => {
    let store: EventStore;
    const getStore = async () => (store ??= await target.open());

    it('decides, appends at the read version and returns state, events, version and position', async () => {
      const s = await getStore();
      const given = handlerSpec(s, bankAccount);
      const { result, stored, streamId } = await given([opened, { type: 'MoneyDeposited', data: { amount: 100 } }])
        .when(deposit(50))
        .then({ type: 'MoneyDeposited', data: { amount: 50 } });
      expect(result.state.balance).toBe(150);
      expect(result.streamVersion).toBe(3);
      expect(result.attempts).toBe(1);
      expect(result.position).toBe(stored[0]?.position);
      expect(result.events[0]).toMatchObject({ streamId, streamVersion: 3, type: 'MoneyDeposited' });
      expect(await s.streamVersion(streamId)).toBe(3);
      const loaded = await loadAggregate(s, streamId, bankAccount);
      expect(loaded.state).toEqual(result.state);
    });

    it('creates the stream on the first command and records several events from one command', async () => {
      const s = await getStore();
      const streamId = `acct-${target.name}-multi`;
      await handleCommand(s, streamId, { type: 'OpenAccount', data: { owner: 'Lisa' } }, bankAccount);
      await handleCommand(s, streamId, deposit(30), bankAccount);
      const closed = await handleCommand(s, streamId, { type: 'CloseAccount', data: { reason: 'college' } }, bankAccount);
      expect(closed.events.map((e) => [e.streamVersion, e.type])).toEqual([
        [3, 'MoneyWithdrawn'],
        [4, 'AccountClosed'],
      ]);
      expect(closed.state).toEqual({ status: 'closed', owner: 'Lisa', balance: 0 });
    });

    it('copies correlationId and causationId from the command onto every event', async () => {
      const s = await getStore();
      const streamId = `acct-${target.name}-meta`;
      await handleCommand(s, streamId, { type: 'OpenAccount', data: { owner: 'Bart' } }, bankAccount);
      await handleCommand(s, streamId, deposit(10), bankAccount);
      const result = await handleCommand(
        s,
        streamId,
        { type: 'CloseAccount', data: { reason: 'x' }, metadata: { correlationId: 'corr-1', causationId: 'cmd-9', userId: 'u1' } },
        bankAccount,
        { metadata: { tenant: 'springfield' } },
      );
      const stored = await collect(s.read(streamId, { from: 3 }));
      expect(stored).toHaveLength(2);
      for (const event of [...stored, ...result.events]) {
        expect(event.metadata).toMatchObject({ correlationId: 'corr-1', causationId: 'cmd-9', tenant: 'springfield' });
      }
    });

    it('a business-rule failure is a DomainError, not retried, and stores nothing', async () => {
      const s = await getStore();
      const error = await handlerSpec(
        s,
        bankAccount,
      )([opened, { type: 'MoneyDeposited', data: { amount: 10 } }])
        .when({ type: 'Withdraw', data: { amount: 11 } })
        .thenThrows(InsufficientFunds);
      expect(error).toBeInstanceOf(DomainError);
      expect(error).not.toBeInstanceOf(WrongExpectedVersionError);
    });

    it('a caller-supplied expectedVersion fails fast with WrongExpectedVersionError', async () => {
      const s = await getStore();
      const streamId = `acct-${target.name}-ifmatch`;
      await handleCommand(s, streamId, { type: 'OpenAccount', data: { owner: 'Moe' } }, bankAccount);
      await handleCommand(s, streamId, deposit(5), bankAccount, { expectedVersion: 1 });
      const error = await handleCommand(s, streamId, deposit(5), bankAccount, { expectedVersion: 1 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(WrongExpectedVersionError);
      expect(error).toMatchObject({ expected: 1, actual: 2 });
      expect(await s.streamVersion(streamId)).toBe(2);
    });

    it('bad input is a typed error', async () => {
      const s = await getStore();
      await expect(handleCommand(s, '$bad', deposit(1), bankAccount)).rejects.toThrow(InvalidStreamIdError);
      await expect(handleCommand(s, 'ok', deposit(1), bankAccount, { retry: { maxAttempts: 0 } })).rejects.toThrow(InvalidArgumentError);
      // biome-ignore lint/suspicious/noExplicitAny: a caller outside TypeScript
      await expect(handleCommand(s, 'ok', null as any, bankAccount)).rejects.toThrow(InvalidArgumentError);
    });

    it('a stream that reads empty while another writer appends is never paired with a later version', async () => {
      const s = await getStore();
      const streamId = `counter-${target.name}-empty-race`;
      // The other writer's append lands right after this load's (empty) read of the stream, just
      // before the load asks for the version: a load that took that version with the initial
      // state would let a command decide without the event and append after it.
      let raced = false;
      const racing: EventStore = Object.create(s, {
        streamVersion: {
          value: async (stream: string) => {
            if (!raced) {
              raced = true;
              await s.append(stream, [{ type: 'Added', data: { n: 7 } }]);
            }
            return s.streamVersion(stream);
          },
        },
      });
      const result = await handleCommand(racing, streamId, { type: 'Add', data: { n: 8 } }, counter);
      expect(raced).toBe(true);
      expect(result.state).toEqual([7, 8]);
      expect((await collect(s.read(streamId))).map((e) => (e.data as { n: number }).n)).toEqual([7, 8]);
    });

    for (const [label, decider] of [
      ['', counter],
      [' (with snapshots every 3)', { ...counter, snapshots: { every: 3 } }],
    ] as const) {
      it(`20 concurrent commands on one stream all land through retries; the state equals a sequential fold${label}`, async () => {
        const s = await getStore();
        const streamId = `counter-${target.name}-race${label ? '-snap' : ''}`;
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, n) =>
            handleCommand(s, streamId, { type: 'Add', data: { n } }, decider, { retry: { maxAttempts: 20 } }),
          ),
        );
        expect(results.some((r) => r.attempts > 1)).toBe(true);
        const stored = await collect(s.read(streamId));
        expect(stored.map((e) => e.streamVersion)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
        expect(stored.map((e) => (e.data as { n: number }).n).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, n) => n));
        const sequential = stored.map((event) => (event.data as { n: number }).n);
        expect((await loadAggregate(s, streamId, decider)).state).toEqual(sequential);
        expect((await loadAggregate(s, streamId, decider, { useSnapshot: false })).state).toEqual(sequential);
        // Each command saw every event before its own: its returned state is a prefix of the final one.
        for (const r of results) expect(r.state).toEqual(sequential.slice(0, r.streamVersion));
      });
    }

    it('gives up with CommandRetriesExhaustedError after maxAttempts lost races', async () => {
      const s = await getStore();
      const streamId = `counter-${target.name}-starved`;
      let decisions = 0;
      // A decide that lets a rival writer in every time: the append can never win.
      const starved: typeof counter = {
        ...counter,
        decide: async (command) => {
          decisions++;
          await s.append(streamId, [{ type: 'Added', data: { n: -1 } }]);
          return { type: 'Added', data: { n: command.data.n } };
        },
      };
      const error = await handleCommand(s, streamId, { type: 'Add', data: { n: 1 } }, starved, {
        retry: { maxAttempts: 3, initialDelayMs: 1 },
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CommandRetriesExhaustedError);
      expect(error).toMatchObject({ code: 'CommandRetriesExhausted', attempts: 3 });
      expect((error as Error).cause).toBeInstanceOf(WrongExpectedVersionError);
      expect(decisions).toBe(3);
      expect((await collect(s.read(streamId))).map((e) => (e.data as { n: number }).n)).toEqual([-1, -1, -1]);
    });

    it('property: any command sequence leaves the stored stream folding to the last returned state', async () => {
      const s = await getStore();
      let run = 0;
      const command = fc.oneof(
        fc.record({ type: fc.constant('Deposit' as const), data: fc.record({ amount: fc.integer({ min: 1, max: 500 }) }) }),
        fc.record({ type: fc.constant('Withdraw' as const), data: fc.record({ amount: fc.integer({ min: 1, max: 500 }) }) }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(command, { maxLength: 12 }), async (commands) => {
          const streamId = `acct-${target.name}-prop-${run++}`;
          let last = await handleCommand(s, streamId, { type: 'OpenAccount', data: { owner: 'P' } }, bankAccount);
          let modelBalance = 0;
          for (const c of commands) {
            try {
              last = await handleCommand(s, streamId, c, bankAccount);
              modelBalance += c.type === 'Deposit' ? c.data.amount : -c.data.amount;
            } catch (error) {
              if (!(error instanceof InsufficientFunds)) throw error;
              expect(c.type === 'Withdraw' && c.data.amount > modelBalance).toBe(true);
            }
          }
          expect(last.state.balance).toBe(modelBalance);
          expect(modelBalance).toBeGreaterThanOrEqual(0);
          expect((await loadAggregate(s, streamId, bankAccount, { useSnapshot: false })).state).toEqual(last.state);
        }),
        { numRuns: target.name === 'memory' ? 40 : 10 },
      );
    });
    it('a soft-deleted stream starts afresh: state from initialState, versions continue (docs/lifecycle.md)', async () => {
      const s = await getStore();
      const streamId = `counter-deleted-${target.name}-${Date.now()}`;
      await handleCommand(s, streamId, { type: 'Add', data: { n: 1 } }, counter);
      await handleCommand(s, streamId, { type: 'Add', data: { n: 2 } }, counter);
      await s.deleteStream(streamId);
      const again = await handleCommand(s, streamId, { type: 'Add', data: { n: 3 } }, counter);
      expect(again.attempts).toBe(1);
      expect(again.state).toEqual([3]);
      expect(again.streamVersion).toBe(3);
      expect((await loadAggregate(s, streamId, counter)).state).toEqual([3]);
    });
  });
}
