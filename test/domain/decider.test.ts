/** Deciders through the test kit (logline/testing), without a store. */
import { AssertionError } from 'node:assert';
import { describe, expect, it } from 'vitest';
import { type AccountEvent, bankAccount, InsufficientFunds } from '../../examples/bank-account.js';
import { DomainError, defineUpcasters, upcaster } from '../../src/index.js';
import { deciderSpec } from '../../src/testing.js';

const given = deciderSpec(bankAccount);
const opened: AccountEvent = { type: 'AccountOpened', data: { owner: 'Marge' } };
const deposited = (amount: number): AccountEvent => ({ type: 'MoneyDeposited', data: { amount } });

describe('deciderSpec: given / when / then', () => {
  it('then: the decided events', async () => {
    await given([])
      .when({ type: 'OpenAccount', data: { owner: 'Marge' } })
      .then([opened]);
    await given([opened])
      .when({ type: 'Deposit', data: { amount: 500 } })
      .then(deposited(500));
    const outcome = await given([opened, deposited(500)])
      .when({ type: 'CloseAccount', data: { reason: 'done' } })
      .then([
        { type: 'MoneyWithdrawn', data: { amount: 500 } },
        { type: 'AccountClosed', data: { reason: 'done' } },
      ]);
    expect(outcome.stateBefore.balance).toBe(500);
    expect(outcome.state).toEqual({ status: 'closed', owner: 'Marge', balance: 0 });
  });

  it('thenThrows: a business rule refuses, with its class and code', async () => {
    const error = await given([opened, deposited(100)])
      .when({ type: 'Withdraw', data: { amount: 101 } })
      .thenThrows(InsufficientFunds, (e) => e.details.balance === 100);
    expect(error).toBeInstanceOf(DomainError);
    expect(error.code).toBe('InsufficientFunds');
    expect(error.toJSON()).toMatchObject({ error: 'InsufficientFunds', balance: 100, amount: 101 });
    await given([])
      .when({ type: 'Deposit', data: { amount: 1 } })
      .thenThrows(DomainError, (e) => e.code === 'AccountNotOpen');
  });

  it('thenState and thenNothingHappened', async () => {
    await given([opened, deposited(70)])
      .when({ type: 'Withdraw', data: { amount: 20 } })
      .thenState({ status: 'open', owner: 'Marge', balance: 50 });
    const noop = deciderSpec({ ...bankAccount, decide: () => [] });
    await noop([opened])
      .when({ type: 'Deposit', data: { amount: 5 } })
      .thenNothingHappened();
  });

  it('fails when the expectation is wrong (the kit can fail)', async () => {
    await expect(
      given([opened])
        .when({ type: 'Deposit', data: { amount: 5 } })
        .then(deposited(6)),
    ).rejects.toThrow(AssertionError);
    await expect(
      given([opened])
        .when({ type: 'Deposit', data: { amount: 5 } })
        .thenThrows(InsufficientFunds),
    ).rejects.toThrow(/expected a InsufficientFunds, but it succeeded/);
    await expect(
      given([])
        .when({ type: 'Deposit', data: { amount: 5 } })
        .thenThrows(InsufficientFunds),
    ).rejects.toThrow(/expected a InsufficientFunds, got AccountNotOpenError/);
    await expect(
      given([opened])
        .when({ type: 'Deposit', data: { amount: 5 } })
        .thenNothingHappened(),
    ).rejects.toThrow(AssertionError);
  });

  it('checks metadata keys and occurredAt when the expectation names them', async () => {
    const stamped = deciderSpec({
      ...bankAccount,
      decide: (): AccountEvent => ({
        type: 'MoneyDeposited',
        data: { amount: 1 },
        metadata: { source: 'atm' },
        occurredAt: '2017-06-11T00:00:00Z',
      }),
    });
    const when = () => stamped([opened]).when({ type: 'Deposit', data: { amount: 1 } });
    await when().then({ type: 'MoneyDeposited', data: { amount: 1 } });
    await when().then({ type: 'MoneyDeposited', data: { amount: 1 }, metadata: { source: 'atm' }, occurredAt: '2017-06-11T00:00:00.000Z' });
    await expect(when().then({ type: 'MoneyDeposited', data: { amount: 1 }, metadata: { source: 'web' } })).rejects.toThrow(AssertionError);
  });

  it('awaiting when() without then is refused loudly instead of hanging', async () => {
    // biome-ignore lint/suspicious/noExplicitAny: deliberately misusing the kit
    const thenable = given([opened]).when({ type: 'Deposit', data: { amount: 5 } }) as any;
    await expect(Promise.resolve(thenable)).rejects.toThrow(/not awaitable on its own/);
  });

  it('given events in an old schema version go through the decider upcasters', async () => {
    const upcasted = {
      ...bankAccount,
      upcasters: defineUpcasters([
        upcaster<{ cents: number }, { amount: number }>({ type: 'MoneyDeposited', from: 1, upcast: (d) => ({ amount: d.cents }) }),
      ]),
    };
    const old = { type: 'MoneyDeposited', data: { cents: 300 } } as unknown as AccountEvent;
    await deciderSpec(upcasted)([opened, old])
      .when({ type: 'Withdraw', data: { amount: 300 } })
      .thenState({ status: 'open', owner: 'Marge', balance: 0 });
  });
});
