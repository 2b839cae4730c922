/** The examples run with one command each, and the insurance account reproduces seed 004's numbers on every store. */
import { describe, expect, it } from 'vitest';
import { runBankAccountDemo } from '../../examples/bank-account.js';
import { euro, runInsuranceDemo } from '../../examples/insurance-account.js';
import { openStore } from '../../src/index.js';
import { runTs } from '../helpers/process.js';
import { storeTargets } from './targets.js';

describe.concurrent('examples as commands (node --import tsx examples/<name>.ts)', () => {
  it('bank-account prints balances, the refusal and the events', async () => {
    const out = await runTs('examples/bank-account.ts', []);
    expect(out).toContain('balance after deposit and withdrawal: 7450 (version 3)');
    expect(out).toContain('refused: InsufficientFunds');
    expect(out).toContain('closing recorded MoneyWithdrawn + AccountClosed; balance 0, status closed');
    expect(out).toContain('as of version 3: balance 7450, status open');
  });

  it('insurance-account prints the seed 004 tables', async () => {
    const out = await runTs('examples/insurance-account.ts', []);
    expect(out).toMatch(/2017-08-28 {2}1% Interest payed out +€ 16,50 +€ 1\.666,17/);
    expect(out).toMatch(/2017-08-28 {2}1% Interest payed out +€ 21,60 +€ 2\.181,32/);
    expect(out).toContain('Difference on 28-08: € 515,15 (€ 500,00 payment + € 15,15 interest)');
    expect(out).toMatch(/2017-08-29 {2}Retro Correction 11-06 +€ 15,15 +€ 2\.181,32/);
    expect(out).toMatch(/2017-09-28 {2}1% Interest payed out +€ 23,31 +€ 2\.354,63/);
  });
});

describe('bank account demo', () => {
  it('records one correlationId on every event of the demo', async () => {
    const store = await openStore('memory:');
    const lines = await runBankAccountDemo(store, 'acct-demo');
    expect(lines.filter((l) => l.startsWith('#'))).toHaveLength(5);
    expect(lines.filter((l) => l.includes('correlationId=demo-acct-demo'))).toHaveLength(5);
    await store.close();
  });
});

for (const target of storeTargets()) {
  describe(`insurance account (seed 004) on ${target.name}`, () => {
    it('books €1.666,17, settles the late €500 with €15,15 and ends at €2.354,63', async () => {
      const store = await target.open();
      const demo = await runInsuranceDemo(store, `insurance-${target.name}`);
      expect(euro(demo.bookedBeforeLatePayment)).toBe('€ 1.666,17');
      expect(euro(demo.juneInterestReplayed)).toBe('€ 18,22');
      expect(euro(demo.aug28AsKnownBefore)).toBe('€ 1.666,17');
      expect(euro(demo.aug28AsKnownNow)).toBe('€ 2.181,32');
      expect(euro(demo.correction)).toBe('€ 15,15');
      expect(euro(demo.finalBalance)).toBe('€ 2.354,63');
    });
  });
}
