import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { openSqliteStore } from '../../src/sqlite.js';
import { describeContract } from './contract.js';

const dir = mkdtempSync(join(tmpdir(), 'logline-contract-'));
let n = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeContract('sqlite', {
  open: (options) => openSqliteStore({ path: join(dir, `store-${n++}.db`), limits: options?.limits, masterKey: options?.masterKey }),
  propertyRuns: 30,
});
