/**
 * The production-like dataset and the load test at --quick sizes: the generator is reproducible
 * and its collisions are real; `npm run bench -- identity --quick` (SQLite) loads it through the
 * library, refuses exactly the colliding users, serves every scenario without a failed request,
 * and (--upgrade) switches to users view version 2 under the mixed load without one either.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { dataset } from '../../apps/identity/src/dataset.js';
import { ROOT } from './service.js';

const size = { users: 2000, groups: 100, memberships: 10_000 };

describe('identity dataset', () => {
  it('is a pure function of the seed: the same data twice, other data for another seed', () => {
    const a = dataset(3, size);
    const b = dataset(3, size);
    const c = dataset(4, size);
    for (const i of [0, 1, 17, 999, 1999]) {
      expect(a.user(i)).toEqual(b.user(i));
      expect(a.group(i % 100)).toEqual(b.group(i % 100));
      expect(a.membership(i)).toEqual(b.membership(i));
    }
    expect(a.user(5).id).not.toBe(c.user(5).id);
    expect(a.user(5).id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('has about 1% email and 0.5% username collisions, each with a user that loads, in another letter case', () => {
    const data = dataset(3, size);
    const users = Array.from({ length: size.users }, (_, i) => data.user(i));
    const emails = users.filter((u) => u.collides === 'email');
    const usernames = users.filter((u) => u.collides === 'username');
    expect(emails.length).toBeGreaterThan(5);
    expect(emails.length).toBeLessThan(50);
    expect(usernames.length).toBeGreaterThan(2);
    const loaded = users.filter((u) => !u.collides);
    const loadedEmails = new Set(loaded.map((u) => u.email.toLowerCase()));
    expect(loadedEmails.size).toBe(loaded.length);
    for (const u of emails) {
      expect(loadedEmails.has(u.email.toLowerCase())).toBe(true);
      expect(loadedEmails.has(u.email)).toBe(false);
    }
    for (let i = 0; i < 200; i++) expect(data.user(data.membership(i).userIndex).collides).toBeUndefined();
  });

  it('npm run bench -- identity --quick (SQLite): bulk load refuses exactly the collisions; no scenario fails a request', async () => {
    const data = dataset(3, size);
    const expected = { email: 0, username: 0 };
    for (let i = 0; i < size.users; i++) {
      const collides = data.user(i).collides;
      if (collides) expected[collides] += 1;
    }
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        '--import',
        'tsx',
        'bench/run.ts',
        'identity',
        '--quick',
        '--only',
        'sqlite',
        '--seconds',
        '2',
        '--lookup-rate',
        '1000',
        '--search-rate',
        '200',
        '--upgrade',
      ],
      { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 },
    );
    expect(stdout).toContain(`${expected.email} email and ${expected.username} username collisions refused`);
    const rows = stdout.split('\n').filter((line) => /^\| (lookup|\/health|search|group|writes|mixed)/.test(line));
    expect(rows).toHaveLength(9);
    // The paced rows ran at the rates asked (--lookup-rate, --search-rate), not as fast as answered (thousands a second).
    for (const [label, rate] of [
      ['lookup by email, 1,000 req/s paced', 1000],
      ['/health (one query, no view), 1,000 req/s paced', 1000],
      ['search, 200 req/s paced', 200],
    ] as const) {
      const rated = rows.find((row) => row.includes(label))?.split('|') ?? [];
      expect(Number(rated[3]), label).toBeGreaterThan(0);
      expect(Number(rated[3]), label).toBeLessThanOrEqual(rate * 1.1);
    }
    let answered = 0;
    for (const row of rows) {
      const cells = row.split('|').map((cell) => cell.trim());
      answered += Number(cells[2]);
      expect(cells[6], row).toBe('0'); // failed requests
    }
    // How many depends on how busy the machine is; that requests were answered does not.
    expect(answered).toBeGreaterThan(0);
    expect(stdout).toMatch(/view lag at \d+ writes\/s .*; 0 failed writes/);
    // The upgrade drill: version 2 switched in while the mixed load ran, and no request failed.
    expect(stdout).toMatch(
      /users view upgrade under the mixed load at 500 req\/s asked: 200 \{"usersView":2\} after .*, 0 failed; then a user reads with displayName ".+ \(@.+\)"/,
    );
  }, 180_000);
});
