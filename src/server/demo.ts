/** A small demo dataset for `logline serve --demo`: a few accounts, orders and a user, so the admin page has something to show. */
import type { EventStore, NewEvent } from '../core/types.js';

const DEMO: Array<[stream: string, events: NewEvent[]]> = [
  [
    'account-1',
    [
      { type: 'AccountOpened', data: { owner: 'Homer Simpson', currency: 'USD' } },
      { type: 'MoneyDeposited', data: { amount: 500 } },
      { type: 'MoneyWithdrawn', data: { amount: 120 } },
    ],
  ],
  [
    'account-2',
    [
      { type: 'AccountOpened', data: { owner: 'Marge Simpson', currency: 'USD' } },
      { type: 'MoneyDeposited', data: { amount: 2000 } },
    ],
  ],
  [
    'order-1001',
    [
      { type: 'OrderPlaced', data: { customer: 'account-1', lines: [{ sku: 'DONUT-12', qty: 2, price: 6.5 }] } },
      { type: 'OrderPaid', data: { amount: 13 }, metadata: { correlationId: 'checkout-7' } },
      { type: 'OrderShipped', data: { carrier: 'Springfield Post' } },
    ],
  ],
  [
    'user-homer',
    [
      { type: 'UserRegistered', data: { email: 'homer@example.com' } },
      { type: 'EmailChanged', data: { email: 'chunkylover53@example.com' } },
    ],
  ],
  [
    'policy-42',
    [
      { type: 'PolicyIssued', data: { holder: 'account-2', premium: 90 }, occurredAt: '2026-01-01T00:00:00.000Z' },
      // A retroactive correction: it happened before the store learned of it (docs/domain.md, retroactive events).
      { type: 'PremiumAdjusted', data: { premium: 85 }, occurredAt: '2026-02-01T00:00:00.000Z' },
    ],
  ],
];

/** Seeds the demo streams when the store is empty; returns how many events it wrote. */
export async function seedDemo(store: EventStore): Promise<number> {
  if ((await store.headPosition()) > 0n) return 0;
  let written = 0;
  for (const [stream, events] of DEMO) {
    await store.append(stream, events, { expectedVersion: 'no_stream' });
    written += events.length;
  }
  return written;
}
