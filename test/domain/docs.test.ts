/** The copy-pasteable examples in docs/domain.md and README.md run as written (imports pointed at src/). */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { runTs } from '../helpers/process.js';

const dir = mkdtempSync(join(tmpdir(), 'logline-docs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The first ```ts block after `heading` in `file`, with package imports pointed at this checkout. */
function snippet(file: string, heading: string): string {
  const text = readFileSync(file, 'utf8');
  const start = text.indexOf(heading);
  if (start < 0) throw new Error(`${file} has no heading '${heading}'`);
  const match = /```ts\n([\s\S]*?)```/.exec(text.slice(start));
  if (!match?.[1]) throw new Error(`${file} has no ts block after '${heading}'`);
  return match[1]
    .replaceAll("from 'logline/testing'", `from '${pathToFileURL(resolve('src/testing.ts')).href}'`)
    .replaceAll("from 'logline'", `from '${pathToFileURL(resolve('src/index.ts')).href}'`);
}

describe.concurrent('documentation examples', () => {
  it('docs/domain.md: the complete example', async () => {
    const file = join(dir, 'domain-doc.mts');
    writeFileSync(file, snippet('docs/domain.md', '## A complete example'));
    const out = await runTs(file, []);
    expect(out).toMatch(/checkedOut: true/);
    expect(out).toMatch(/ 3 checkout-42/);
    expect(out).toContain('refused: CartClosed');
    expect(out).toMatch(/\{ duff: 6 \}/);
  });

  it('README.md: the domain section', async () => {
    const file = join(dir, 'readme.mts');
    writeFileSync(file, snippet('README.md', '## Domain: deciders and commands'));
    const out = await runTs(file, []);
    expect(out).toContain('balance 70, version 2');
    expect(out).toContain('refused: InsufficientFunds');
  });
});
