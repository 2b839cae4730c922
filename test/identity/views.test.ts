/**
 * The users view applies events one at a time on SQLite and a whole batch at once on PostgreSQL
 * (apps/identity/src/sql.ts: the search-term replacements of a batch become a DELETE per source
 * and one INSERT, the last one per user and source winning). Both must end in the same rows for any log:
 * a random log of user events (names with quotes, backslashes, commas and braces, which the
 * PostgreSQL path sends as array literals) is appended to a SQLite and a PostgreSQL store, the
 * view is built on each, and the two are compared row for row.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import fc from 'fast-check';
import { type EventStore, type NewEvent, openStore } from 'logline';
import { startProjection, waitForPosition } from 'logline/projections';
import { afterAll, describe, expect, it } from 'vitest';
import { queriesFor } from '../../apps/identity/src/sql.js';
import { usersProjection } from '../../apps/identity/src/views.js';
import { freshSchemaUrl, requirePostgres } from '../helpers/postgres.js';
import { tempDir } from '../server/process.js';

const reachable = await requirePostgres();

const word = fc.constantFrom('ann', 'bo', 'Çelik', 'an"na', 'b\\o', 'a,b', '{x}', 'NULL', "o'hara", 'ann');
const text = fc.array(word, { minLength: 1, maxLength: 3 }).map((words) => words.join(' '));
type Step = { user: number; kind: 'name' | 'username' | 'email' | 'deactivate'; value: string };
const step: fc.Arbitrary<Step> = fc.record({
  user: fc.integer({ min: 0, max: 3 }),
  kind: fc.constantFrom('name', 'username', 'email', 'deactivate'),
  value: text,
});

/** Events of a log: each user created on first mention, then the step's change (none after deactivation). */
function eventsOf(steps: Step[]): Array<{ stream: string; event: NewEvent }> {
  const ids = Array.from({ length: 4 }, () => randomUUID());
  const state = ids.map(() => ({ created: false, active: true }));
  const out: Array<{ stream: string; event: NewEvent }> = [];
  for (const { user, kind, value } of steps) {
    const stream = `user-${ids[user]}`;
    const s = state[user] as { created: boolean; active: boolean };
    if (!s.created) {
      s.created = true;
      out.push({ stream, event: { type: 'UserCreated', data: { name: value, username: `${value}.${user}`, email: `${user}@x.test` } } });
      continue;
    }
    if (!s.active) continue;
    if (kind === 'deactivate') {
      s.active = false;
      out.push({ stream, event: { type: 'UserDeactivated', data: {} } });
    } else {
      const type = { name: 'UserNameSet', username: 'UserUsernameSet', email: 'UserEmailSet' }[kind];
      out.push({ stream, event: { type, data: { [kind]: value } } });
    }
  }
  return out;
}

async function viewRows(
  store: EventStore,
  dialect: 'sqlite' | 'postgres',
  log: Array<{ stream: string; event: NewEvent }>,
  batchSize: number,
) {
  for (const { stream, event } of log) await store.append(stream, [event]);
  const handle = await startProjection(store, usersProjection(dialect, 2), { batchSize });
  try {
    await waitForPosition(handle, await store.headPosition(), { timeout: 20_000 });
    const q = queriesFor(store);
    const terms = await q.all<Record<string, unknown>>(`SELECT term, user_id, source, rank FROM ${q.view('user_terms')}`);
    const users = await q.all<Record<string, unknown>>(
      `SELECT id, name, username, email, name_key, username_key, active, version, position, display_name FROM ${q.view('users')}`,
    );
    const line = (row: Record<string, unknown>) => JSON.stringify(Object.values(row).map((v) => (v === null ? null : String(v))));
    return { terms: terms.map(line).sort(), users: users.map(line).sort() };
  } finally {
    await handle.stop();
  }
}

describe.skipIf(!reachable)('users view: batched on PostgreSQL, one event at a time on SQLite', () => {
  const dir = tempDir();
  const drops: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const drop of drops) await drop();
    dir.remove();
  });

  it('ends in the same users and search terms for any log (property)', async () => {
    let run = 0;
    await fc.assert(
      // Small batches too: a batch's statements must leave the rows of earlier batches alone.
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 50 }), async (steps, batchSize) => {
        const log = eventsOf(steps);
        const sqlite = await openStore(`sqlite:${join(dir.path, `views-${run++}.db`)}`);
        const pg = await freshSchemaUrl();
        drops.push(pg.drop);
        const postgres = await openStore(pg.url);
        try {
          const [a, b] = [await viewRows(sqlite, 'sqlite', log, batchSize), await viewRows(postgres, 'postgres', log, batchSize)];
          expect(b.users).toEqual(a.users);
          expect(b.terms).toEqual(a.terms);
          // Not vacuous: every created, active user has terms.
          if (log.length > 0) expect(a.users.length).toBeGreaterThan(0);
        } finally {
          await sqlite.close();
          await postgres.close();
        }
      }),
      { numRuns: 12 },
    );
  }, 120_000);
});
