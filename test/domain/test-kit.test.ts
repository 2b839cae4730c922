/**
 * The test kit's own failure paths: every assertion of deciderSpec and handlerSpec fails when its
 * expectation is wrong, and fails with its own message (so a kit assertion turned into a no-op, or
 * one that fails for another reason, is caught here). The passing cases are next to each failing
 * one, so a kit that always fails is caught too.
 */
import { AssertionError } from 'node:assert';
import { describe, expect, it } from 'vitest';
import { type Account, type AccountCommand, type AccountEvent, bankAccount, InsufficientFunds } from '../../examples/bank-account.js';
import { type Decider, DomainError, type EventStore, type NewEvent } from '../../src/index.js';
import { createMemoryStore } from '../../src/memory.js';
import { deciderSpec, handlerSpec } from '../../src/testing.js';

const opened: AccountEvent = { type: 'AccountOpened', data: { owner: 'Marge' } };
const deposited = (amount: number): AccountEvent => ({ type: 'MoneyDeposited', data: { amount } });
const deposit = (amount: number): AccountCommand => ({ type: 'Deposit', data: { amount } });
const withdraw = (amount: number): AccountCommand => ({ type: 'Withdraw', data: { amount } });
const openAccount: Account = { status: 'open', owner: 'Marge', balance: 0 };

/** Asserts the kit refused with an AssertionError whose message names what went wrong. */
async function expectKitFailure(outcome: Promise<unknown>, message: RegExp): Promise<void> {
  const error = await outcome.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'the kit accepted a wrong expectation').toBeInstanceOf(AssertionError);
  expect((error as AssertionError).message).toMatch(message);
}

/** A bank account whose evolve throws on deposits of 13: the event is stored before evolve sees it. */
const unluckyAccount: Decider<Account, AccountCommand, AccountEvent> = {
  ...bankAccount,
  evolve: (state, event) => {
    if (event.type === 'MoneyDeposited' && event.data.amount === 13) throw new Error('evolve cannot fold 13');
    return bankAccount.evolve(state, event);
  },
};

/**
 * The same real store, except that another writer slips an event into the stream right after
 * each deposit is appended: what handleCommand reports then differs from what the stream holds.
 */
function withInterloper(store: EventStore): EventStore {
  return {
    ...store,
    async append(stream: string, events: NewEvent[], options?: Parameters<EventStore['append']>[2]) {
      const result = await store.append(stream, events, options);
      if (events.some((e) => e.type === 'MoneyDeposited')) await store.append(stream, [{ type: 'Interloped', data: {} }]);
      return result;
    },
  };
}

describe('deciderSpec assertions fail when they should', () => {
  const given = deciderSpec(bankAccount);

  it('then: other data, a missing event, an extra event, another type', async () => {
    await given([opened]).when(deposit(5)).then(deposited(5));
    await expectKitFailure(given([opened]).when(deposit(5)).then(deposited(6)), /the events differ/);
    await expectKitFailure(
      given([opened])
        .when(deposit(5))
        .then([deposited(5), deposited(5)]),
      /the events differ/,
    );
    await expectKitFailure(given([opened]).when(deposit(5)).then([]), /the events differ/);
    await expectKitFailure(
      given([opened])
        .when(deposit(5))
        .then({ type: 'MoneyWithdrawn', data: { amount: 5 } }),
      /the events differ/,
    );
  });

  it('thenState: a state other than the folded one', async () => {
    await given([opened, deposited(70)])
      .when(withdraw(20))
      .thenState({ ...openAccount, balance: 50 });
    await expectKitFailure(
      given([opened, deposited(70)])
        .when(withdraw(20))
        .thenState({ ...openAccount, balance: 70 }),
      /state differs/,
    );
    // The state after the decided events, not the one before them.
    await expectKitFailure(given([opened]).when(deposit(5)).thenState(openAccount), /state differs/);
  });

  it('thenNothingHappened: events were decided', async () => {
    await expectKitFailure(given([opened]).when(deposit(5)).thenNothingHappened(), /the events differ/);
  });

  it('thenThrows: success, another error class, a failed check', async () => {
    await given([opened])
      .when(withdraw(1))
      .thenThrows(InsufficientFunds, (e) => e.details.balance === 0);
    await expectKitFailure(given([opened]).when(deposit(5)).thenThrows(), /expected an error, but it succeeded/);
    await expectKitFailure(given([]).when(deposit(5)).thenThrows(InsufficientFunds), /expected a InsufficientFunds, got/);
    await expectKitFailure(
      given([opened])
        .when(withdraw(1))
        .thenThrows(InsufficientFunds, (e) => e.details.balance === 1),
      /InsufficientFunds failed the check/,
    );
  });
});

describe('handlerSpec assertions fail when they should (on a real store)', () => {
  const store = createMemoryStore();
  const given = handlerSpec(store, bankAccount);

  it('then: events other than the recorded ones', async () => {
    await given([opened]).when(deposit(5)).then(deposited(5));
    await expectKitFailure(given([opened]).when(deposit(5)).then(deposited(6)), /the events differ/);
    await expectKitFailure(given([opened]).when(deposit(5)).then([]), /the events differ/);
  });

  it('thenState: a state other than the command result', async () => {
    await given([opened])
      .when(deposit(5))
      .thenState({ ...openAccount, balance: 5 });
    await expectKitFailure(given([opened]).when(deposit(5)).thenState(openAccount), /state differs/);
  });

  it('thenNothingHappened: the command stored events', async () => {
    await handlerSpec(store, { ...bankAccount, decide: () => [] })([opened])
      .when(deposit(5))
      .thenNothingHappened();
    await expectKitFailure(given([opened]).when(deposit(5)).thenNothingHappened(), /the events differ/);
  });

  it('thenThrows: success, another error class, a failed check', async () => {
    await given([opened]).when(withdraw(1)).thenThrows(DomainError);
    await expectKitFailure(given([opened]).when(deposit(5)).thenThrows(DomainError), /expected a DomainError, but it succeeded/);
    await expectKitFailure(given([]).when(deposit(5)).thenThrows(InsufficientFunds), /expected a InsufficientFunds, got/);
    await expectKitFailure(
      given([opened])
        .when(withdraw(1))
        .thenThrows(InsufficientFunds, (e) => e.details.amount === 2),
      /InsufficientFunds failed the check/,
    );
  });

  it('thenThrows: the command threw but its events were stored', async () => {
    const unlucky = handlerSpec(store, unluckyAccount);
    await unlucky([opened]).when(deposit(12)).then(deposited(12));
    // The error is the expected one; what fails the spec is the event left behind in the stream.
    await expectKitFailure(
      unlucky([opened])
        .when(deposit(13))
        .thenThrows(Error, (e) => /fold 13/.test(e.message)),
      /stored events/,
    );
  });

  it('every outcome: handleCommand reports other events than the stream holds', async () => {
    const interloped = handlerSpec(withInterloper(store), bankAccount);
    await interloped([opened]).when(withdraw(0)).thenThrows(DomainError); // no deposit, no interloper
    await expectKitFailure(interloped([opened]).when(deposit(5)).then(deposited(5)), /other events than the store holds/);
    await expectKitFailure(
      interloped([opened])
        .when(deposit(5))
        .thenState({ ...openAccount, balance: 5 }),
      /other events than the store holds/,
    );
  });
});
