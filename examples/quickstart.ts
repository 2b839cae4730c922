/**
 * A small demo on embedded SQLite: append a few events with optimistic concurrency, read them
 * back, and fold them into state. Run: npx tsx examples/quickstart.ts (`npm start` runs the server)
 */
import { openStore, WrongExpectedVersionError } from '../src/index.js';

const store = await openStore(process.env.LOGLINE_STORE ?? 'sqlite:./logline-data/quickstart.db');
const stream = `account-${Date.now()}`;

await store.append(stream, [{ type: 'AccountOpened', data: { owner: 'Homer' } }], { expectedVersion: 'no_stream' });
await store.append(
  stream,
  [
    { type: 'MoneyDeposited', data: { amount: 100 } },
    { type: 'MoneyWithdrawn', data: { amount: 30 } },
  ],
  {
    expectedVersion: 1,
  },
);
try {
  await store.append(stream, [{ type: 'MoneyWithdrawn', data: { amount: 500 } }], { expectedVersion: 1 });
} catch (error) {
  if (error instanceof WrongExpectedVersionError) console.log(`rejected as expected: ${error.message}`);
  else throw error;
}

let balance = 0;
for await (const event of store.read(stream)) {
  const { amount = 0 } = event.data as { amount?: number };
  if (event.type === 'MoneyDeposited') balance += amount;
  if (event.type === 'MoneyWithdrawn') balance -= amount;
  console.log(`#${event.streamVersion} @${event.position} ${event.type} ${JSON.stringify(event.data)}`);
}
console.log(`balance of ${stream}: ${balance}`);
console.log(await store.stats());
await store.close();
