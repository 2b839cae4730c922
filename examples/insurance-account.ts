/**
 * Seed 004, "changes in retrospect": an insurance savings account. Premium (€150) is received on
 * the 1st of each month, 1% interest is paid on the 28th (rounded to cents). On 29 Aug 2017 a
 * payment of €500 arrives that was made on 11 June: it is recorded now, dated then, and the
 * interest June..August should have earned on it (€15.15) is settled by a correction event.
 *
 * Run: npx tsx examples/insurance-account.ts   (LOGLINE_STORE=memory: or sqlite:./logline-data/insurance.db)
 */
import { pathToFileURL } from 'node:url';
import {
  type Command,
  type Correct,
  correctRetroactive,
  type Decider,
  DomainError,
  type Event,
  type EventStore,
  handleCommand,
  loadAggregate,
  openStore,
} from '../src/index.js';

export type InsuranceEvent =
  | Event<'AccountOpened', { policyholder: string }>
  | Event<'PaymentReceived', { amount: number }>
  | Event<'PremiumReceived', { amount: number }>
  | Event<'InterestPaid', { amount: number; rate: number }>
  | Event<'InterestCorrected', { amount: number; forPaymentsOn: string[] }>;

/** Dates are days ('2017-06-11'); amounts are cents. */
export type InsuranceCommand =
  | Command<'OpenAccount', { policyholder: string; on: string }>
  | Command<'ReceivePayment', { amount: number; paidOn: string }>
  | Command<'ReceivePremium', { amount: number; on: string }>
  | Command<'PayInterest', { on: string }>;

export interface LedgerLine {
  date: string;
  what: string;
  amount: number;
  balance: number;
}

export interface InsuranceAccount {
  open: boolean;
  policyholder: string;
  balance: number;
  /** One line per event, in the order folded. */
  ledger: LedgerLine[];
}

export const MONTHLY_RATE = 0.01;

/** 1% of the balance, rounded half up to the cent. */
export const interestOn = (balance: number): number => Math.round(balance * MONTHLY_RATE);

const day = (iso: string) => iso.slice(0, 10);
const at = (date: string) => `${date}T00:00:00.000Z`;

const line = (state: InsuranceAccount, date: string, what: string, amount: number): InsuranceAccount => {
  const balance = state.balance + amount;
  return { ...state, balance, ledger: [...state.ledger, { date, what, amount, balance }] };
};

export const insuranceAccount: Decider<InsuranceAccount, InsuranceCommand, InsuranceEvent> = {
  name: 'insurance-account',
  initialState: () => ({ open: false, policyholder: '', balance: 0, ledger: [] }),
  evolve: (state, event) => {
    const date = day(event.occurredAt);
    switch (event.type) {
      case 'AccountOpened':
        return {
          ...state,
          open: true,
          policyholder: event.data.policyholder,
          ledger: [...state.ledger, { date, what: 'Account opened', amount: 0, balance: 0 }],
        };
      case 'PaymentReceived':
        return line(state, date, 'Payment received', event.data.amount);
      case 'PremiumReceived':
        return line(state, date, 'Premium received', event.data.amount);
      case 'InterestPaid':
        // Interest is a function of the balance on that day. Folding in valid-time order with a
        // late payment in place therefore yields what it should have been (the seed's "replay").
        return line(state, date, '1% Interest payed out', interestOn(state.balance));
      case 'InterestCorrected':
        return line(
          state,
          date,
          `Retro Correction ${event.data.forPaymentsOn.map((d) => d.slice(8, 10) + '-' + d.slice(5, 7)).join(', ')}`,
          event.data.amount,
        );
    }
  },
  decide: (command, state) => {
    if (command.type === 'OpenAccount') {
      if (state.open) throw new DomainError('AccountExists', 'The account is already open.');
      return { type: 'AccountOpened', data: { policyholder: command.data.policyholder }, occurredAt: at(command.data.on) };
    }
    if (!state.open) throw new DomainError('AccountNotOpen', 'Open the account first.');
    switch (command.type) {
      case 'ReceivePayment':
        if (!(command.data.amount > 0)) throw new DomainError('InvalidAmount', `A payment must be positive, got ${command.data.amount}.`);
        return { type: 'PaymentReceived', data: { amount: command.data.amount }, occurredAt: at(command.data.paidOn) };
      case 'ReceivePremium':
        if (!command.data.on.endsWith('-01'))
          throw new DomainError('NotPremiumDay', `Premium is received on the 1st, not on ${command.data.on}.`);
        return { type: 'PremiumReceived', data: { amount: command.data.amount }, occurredAt: at(command.data.on) };
      case 'PayInterest':
        if (!command.data.on.endsWith('-28'))
          throw new DomainError('NotInterestDay', `Interest is paid on the 28th, not on ${command.data.on}.`);
        return { type: 'InterestPaid', data: { amount: interestOn(state.balance), rate: MONTHLY_RATE }, occurredAt: at(command.data.on) };
    }
  },
};

/** The correction for late payments: the interest they should have earned, booked today. */
export const settleLatePayments =
  (today: string): Correct<InsuranceAccount, InsuranceEvent> =>
  ({ booked, actual, retroactive }) => {
    const amount = actual.balance - booked.balance;
    if (amount === 0) return [];
    return { type: 'InterestCorrected', data: { amount, forPaymentsOn: retroactive.map((e) => day(e.occurredAt)) }, occurredAt: at(today) };
  };

export const euro = (cents: number): string => {
  const [whole, fraction] = (Math.abs(cents) / 100).toFixed(2).split('.') as [string, string];
  return `${cents < 0 ? '-' : ''}€ ${whole.replace(/\B(?=(\d{3})+(?!\d))/g, '.')},${fraction}`;
};

const table = (ledger: LedgerLine[]) =>
  [...ledger].reverse().map((l) => `${l.date}  ${l.what.padEnd(28)} ${euro(l.amount).padStart(12)} ${euro(l.balance).padStart(12)}`);

export interface InsuranceDemo {
  streamId: string;
  lines: string[];
  /** Balances in cents. */
  bookedBeforeLatePayment: number;
  correction: number;
  finalBalance: number;
  /** The balance on 28 Aug as the ledger knew it before the late payment was recorded, and as it is known now. */
  aug28AsKnownBefore: number;
  aug28AsKnownNow: number;
  /** June interest in the valid-time replay (was 13.22 before the late payment). */
  juneInterestReplayed: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runInsuranceDemo(store: EventStore, streamId = `insurance-${Date.now()}`): Promise<InsuranceDemo> {
  const send = (command: InsuranceCommand) => handleCommand(store, streamId, command, insuranceAccount);
  await send({ type: 'OpenAccount', data: { policyholder: 'Homer', on: '2017-04-01' } });
  await send({ type: 'ReceivePayment', data: { amount: 100_000, paidOn: '2017-04-01' } });
  for (const month of ['04', '05', '06', '07', '08']) {
    if (month !== '04') await send({ type: 'ReceivePremium', data: { amount: 15_000, on: `2017-${month}-01` } });
    await send({ type: 'PayInterest', data: { on: `2017-${month}-28` } });
  }
  const before = await loadAggregate(store, streamId, insuranceAccount);
  // Leave a gap in recorded time, so "what did we know then" can point between the two.
  await sleep(5);
  const knownBefore = new Date().toISOString();
  await sleep(5);

  // 29 Aug: process an additional payment of €500 made on 11 June.
  await send({ type: 'ReceivePayment', data: { amount: 50_000, paidOn: '2017-06-11' } });
  const corrected = await correctRetroactive(store, streamId, insuranceAccount, settleLatePayments('2017-08-29'));
  const [settled] = corrected.events;
  const correction = settled?.type === 'InterestCorrected' ? settled.data.amount : 0;

  await send({ type: 'ReceivePremium', data: { amount: 15_000, on: '2017-09-01' } });
  const final = await send({ type: 'PayInterest', data: { on: '2017-09-28' } });

  const asKnownBefore = await loadAggregate(store, streamId, insuranceAccount, {
    asOf: { occurredAt: '2017-08-28T23:59:59Z', recordedAt: knownBefore },
  });
  const asKnownNow = await loadAggregate(store, streamId, insuranceAccount, { asOf: { occurredAt: '2017-08-28T23:59:59Z' } });
  const juneInterest = asKnownNow.state.ledger.find((l) => l.date === '2017-06-28')?.amount ?? 0;

  const lines = [
    `Ledger of ${streamId} on 29-08-2017, before the late payment:`,
    ...table(before.state.ledger),
    '',
    'Replayed in valid-time order with the €500 of 11-06 in place (what was true):',
    ...table(asKnownNow.state.ledger),
    '',
    `Difference on 28-08: ${euro(asKnownNow.state.balance - before.state.balance)} (€ 500,00 payment + ${euro(correction)} interest)`,
    '',
    'Ledger as recorded, after the correction and September:',
    ...table(final.state.ledger),
  ];
  return {
    streamId,
    lines,
    bookedBeforeLatePayment: before.state.balance,
    correction,
    finalBalance: final.state.balance,
    aug28AsKnownBefore: asKnownBefore.state.balance,
    aug28AsKnownNow: asKnownNow.state.balance,
    juneInterestReplayed: juneInterest,
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const store = await openStore(process.env.LOGLINE_STORE ?? 'memory:');
  const demo = await runInsuranceDemo(store);
  for (const l of demo.lines) console.log(l);
  await store.close();
}
