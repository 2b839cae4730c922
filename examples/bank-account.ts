/**
 * A bank account as a decider: commands in, events out, state folded from events.
 * Run: npx tsx examples/bank-account.ts   (LOGLINE_STORE=memory: or sqlite:./logline-data/bank.db)
 */
import { pathToFileURL } from 'node:url';
import {
  type Command,
  type Decider,
  DomainError,
  type Event,
  type EventStore,
  handleCommand,
  loadAggregate,
  openStore,
} from '../src/index.js';

// Events: past-tense facts. Amounts in cents.
export type AccountEvent =
  | Event<'AccountOpened', { owner: string }>
  | Event<'MoneyDeposited', { amount: number }>
  | Event<'MoneyWithdrawn', { amount: number }>
  | Event<'AccountClosed', { reason: string }>;

// Commands: intentions that may be refused.
export type AccountCommand =
  | Command<'OpenAccount', { owner: string }>
  | Command<'Deposit', { amount: number }>
  | Command<'Withdraw', { amount: number }>
  | Command<'CloseAccount', { reason: string }>;

export interface Account {
  status: 'new' | 'open' | 'closed';
  owner: string;
  balance: number;
}

export class InsufficientFunds extends DomainError {
  constructor(balance: number, amount: number) {
    super('InsufficientFunds', `Cannot withdraw ${amount}: the balance is ${balance}.`, { balance, amount });
  }
}

const requireOpen = (state: Account) => {
  if (state.status !== 'open') throw new DomainError('AccountNotOpen', `The account is ${state.status}.`, { status: state.status });
};

const requirePositive = (amount: number) => {
  if (!(Number.isSafeInteger(amount) && amount > 0))
    throw new DomainError('InvalidAmount', `Amount must be a positive number of cents, got ${amount}.`);
};

export const bankAccount: Decider<Account, AccountCommand, AccountEvent> = {
  name: 'bank-account',
  initialState: () => ({ status: 'new', owner: '', balance: 0 }),
  evolve: (state, event) => {
    switch (event.type) {
      case 'AccountOpened':
        return { ...state, status: 'open', owner: event.data.owner };
      case 'MoneyDeposited':
        return { ...state, balance: state.balance + event.data.amount };
      case 'MoneyWithdrawn':
        return { ...state, balance: state.balance - event.data.amount };
      case 'AccountClosed':
        return { ...state, status: 'closed' };
    }
  },
  decide: (command, state) => {
    switch (command.type) {
      case 'OpenAccount':
        if (state.status !== 'new') throw new DomainError('AccountExists', 'The account is already open.');
        return { type: 'AccountOpened', data: { owner: command.data.owner } };
      case 'Deposit':
        requireOpen(state);
        requirePositive(command.data.amount);
        return { type: 'MoneyDeposited', data: { amount: command.data.amount } };
      case 'Withdraw':
        requireOpen(state);
        requirePositive(command.data.amount);
        if (command.data.amount > state.balance) throw new InsufficientFunds(state.balance, command.data.amount);
        return { type: 'MoneyWithdrawn', data: { amount: command.data.amount } };
      case 'CloseAccount': {
        requireOpen(state);
        const events: AccountEvent[] = [];
        // Closing pays out what is left, then closes: two facts from one command.
        if (state.balance > 0) events.push({ type: 'MoneyWithdrawn', data: { amount: state.balance } });
        events.push({ type: 'AccountClosed', data: { reason: command.data.reason } });
        return events;
      }
    }
  },
  snapshots: { every: 100 },
};

/** Runs the demo on `store`; returns the lines it prints. */
export async function runBankAccountDemo(store: EventStore, streamId = `account-${Date.now()}`): Promise<string[]> {
  const lines: string[] = [];
  const correlationId = `demo-${streamId}`;
  const send = (command: AccountCommand) => handleCommand(store, streamId, command, bankAccount);
  await send({ type: 'OpenAccount', data: { owner: 'Homer' }, metadata: { correlationId } });
  await send({ type: 'Deposit', data: { amount: 10_000 }, metadata: { correlationId } });
  const afterWithdraw = await send({ type: 'Withdraw', data: { amount: 2_550 }, metadata: { correlationId } });
  lines.push(`balance after deposit and withdrawal: ${afterWithdraw.state.balance} (version ${afterWithdraw.streamVersion})`);
  try {
    await send({ type: 'Withdraw', data: { amount: 1_000_000 } });
  } catch (error) {
    if (!(error instanceof InsufficientFunds)) throw error;
    lines.push(`refused: ${error.code}: ${error.message}`);
  }
  const closed = await send({ type: 'CloseAccount', data: { reason: 'moving away' }, metadata: { correlationId } });
  lines.push(
    `closing recorded ${closed.events.map((e) => e.type).join(' + ')}; balance ${closed.state.balance}, status ${closed.state.status}`,
  );
  const { state, streamVersion } = await loadAggregate(store, streamId, bankAccount, { asOf: { version: 3 } });
  lines.push(`as of version ${streamVersion}: balance ${state.balance}, status ${state.status}`);
  for await (const event of store.read(streamId)) {
    lines.push(`#${event.streamVersion} ${event.type} ${JSON.stringify(event.data)} correlationId=${event.metadata.correlationId ?? '-'}`);
  }
  return lines;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const store = await openStore(process.env.LOGLINE_STORE ?? 'memory:');
  for (const line of await runBankAccountDemo(store)) console.log(line);
  await store.close();
}
