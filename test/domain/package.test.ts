/** `logline/testing` as a user imports it: plain Node, the built package, by name (npm test builds dist first). */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url).pathname;

describe('package subpath logline/testing', () => {
  it('imports by name next to logline and runs a decider spec', () => {
    const script = `
      import { DomainError, handleCommand, openStore } from 'logline';
      import { deciderSpec, handlerSpec } from 'logline/testing';
      const counter = {
        name: 'counter',
        initialState: () => 0,
        evolve: (n, e) => n + e.data.by,
        decide: (c, n) => { if (n + c.data.by > 3) throw new DomainError('TooMany', 'max 3'); return { type: 'Counted', data: { by: c.data.by } }; },
      };
      await deciderSpec(counter)([{ type: 'Counted', data: { by: 1 } }]).when({ type: 'Count', data: { by: 2 } }).then({ type: 'Counted', data: { by: 2 } });
      const error = await deciderSpec(counter)([]).when({ type: 'Count', data: { by: 4 } }).thenThrows(DomainError);
      const store = await openStore('memory:');
      const { result } = await handlerSpec(store, counter)([]).when({ type: 'Count', data: { by: 3 } }).then({ type: 'Counted', data: { by: 3 } });
      const again = await handleCommand(store, 'c', { type: 'Count', data: { by: 1 } }, counter);
      console.log(JSON.stringify({ code: error.code, state: result.state, again: again.state }));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ code: 'TooMany', state: 3, again: 1 });
  });
});
