/** Type tests: event and command unions drive inference; wrong shapes do not compile. */
import { describe, expectTypeOf, it } from 'vitest';
import { type AccountCommand, type AccountEvent, bankAccount } from '../../examples/bank-account.js';
import {
  type CommandOf,
  type CommandResult,
  type Decider,
  type Event,
  type EventOf,
  type EventStore,
  handleCommand,
  loadAggregate,
  type Recorded,
  type StateOf,
} from '../../src/index.js';
import { deciderSpec, handlerSpec } from '../../src/testing.js';

declare const store: EventStore;

type Ev = Event<'Opened', { owner: string }> | Event<'Deposited', { amount: number }>;
type Cmd = { type: 'Open'; data: { owner: string } } | { type: 'Deposit'; data: { amount: number } };

describe('deciders', () => {
  it('narrow event data in evolve and command data in decide', () => {
    const d: Decider<number, Cmd, Ev> = {
      initialState: () => 0,
      evolve: (state, event) => {
        expectTypeOf(event.streamVersion).toEqualTypeOf<number>();
        expectTypeOf(event.position).toEqualTypeOf<bigint>();
        expectTypeOf(event.occurredAt).toEqualTypeOf<string>();
        if (event.type === 'Deposited') {
          expectTypeOf(event.data).toEqualTypeOf<{ amount: number }>();
          return state + event.data.amount;
        }
        expectTypeOf(event.data).toEqualTypeOf<{ owner: string }>();
        return state;
      },
      decide: (command) => {
        if (command.type === 'Deposit') {
          expectTypeOf(command.data).toEqualTypeOf<{ amount: number }>();
          return { type: 'Deposited', data: { amount: command.data.amount } };
        }
        return [{ type: 'Opened', data: { owner: command.data.owner } }];
      },
    };
    expectTypeOf<StateOf<typeof d>>().toEqualTypeOf<number>();
    expectTypeOf<CommandOf<typeof bankAccount>>().toEqualTypeOf<AccountCommand>();
    expectTypeOf<EventOf<typeof bankAccount>>().toEqualTypeOf<AccountEvent>();
    expectTypeOf<Recorded<Ev>>().toEqualTypeOf<
      Recorded<Event<'Opened', { owner: string }>> | Recorded<Event<'Deposited', { amount: number }>>
    >();
  });

  it('reject a decide that returns an event outside the union or with the wrong data', () => {
    const _wrongType: Decider<number, Cmd, Ev> = {
      initialState: () => 0,
      evolve: (s) => s,
      // @ts-expect-error 'Withdrawn' is not one of the decider's events
      decide: () => ({ type: 'Withdrawn', data: { amount: 1 } }),
    };
    const _wrongData: Decider<number, Cmd, Ev> = {
      initialState: () => 0,
      evolve: (s) => s,
      // @ts-expect-error Deposited carries { amount: number }, not a string
      decide: () => ({ type: 'Deposited', data: { amount: '1' } }),
    };
    const _wrongCase: Decider<number, Cmd, Ev> = {
      initialState: () => 0,
      evolve: (s, e) => {
        switch (e.type) {
          // @ts-expect-error no such event type
          case 'Closed':
            return s;
        }
        return s;
      },
      decide: () => [],
    };
  });

  it('event data must be JSON', () => {
    // @ts-expect-error a Date is not a JSON value: store an ISO string
    type _Bad = Event<'At', { when: Date }>;
    expectTypeOf<Event<'Ok', { when: string; n: number; tags: string[]; nested: { a: null } }>>().toHaveProperty('data');
  });
});

describe('handleCommand and loads', () => {
  it('accept only the decider’s commands and return typed results', async () => {
    const result = await handleCommand(store, 'a-1', { type: 'Deposit', data: { amount: 5 } }, bankAccount);
    expectTypeOf(result).toEqualTypeOf<CommandResult<StateOf<typeof bankAccount>, AccountEvent>>();
    expectTypeOf(result.state.balance).toEqualTypeOf<number>();
    expectTypeOf(result.events).toEqualTypeOf<Recorded<AccountEvent>[]>();
    // @ts-expect-error not a command of the bank account
    await handleCommand(store, 'a-1', { type: 'Transfer', data: { amount: 5 } }, bankAccount);
    // @ts-expect-error Deposit's amount is a number
    await handleCommand(store, 'a-1', { type: 'Deposit', data: { amount: 'five' } }, bankAccount);
    // @ts-expect-error Deposit needs its data
    await handleCommand(store, 'a-1', { type: 'Deposit' }, bankAccount);
    const loaded = await loadAggregate(store, 'a-1', bankAccount, { asOf: { occurredAt: new Date() } });
    expectTypeOf(loaded.state.status).toEqualTypeOf<'new' | 'open' | 'closed'>();
  });
});

describe('test kit', () => {
  it('types given events and when commands from the decider', async () => {
    const given = deciderSpec(bankAccount);
    await given([{ type: 'AccountOpened', data: { owner: 'x' } }])
      .when({ type: 'Deposit', data: { amount: 1 } })
      .then({ type: 'MoneyDeposited', data: { amount: 1 } });
    // @ts-expect-error not an event of the bank account
    given([{ type: 'UserCreated', data: {} }]);
    // @ts-expect-error not a command of the bank account
    given([]).when({ type: 'Explode', data: {} });
    const when = given([]).when({ type: 'Deposit', data: { amount: 1 } });
    // @ts-expect-error expected events are checked too
    await when.then({ type: 'MoneyDeposited', data: { cents: 1 } });
    const onStore = handlerSpec(store, bankAccount);
    // @ts-expect-error not a command of the bank account
    onStore([]).when({ type: 'Explode', data: {} });
  });
});
