/**
 * The rule for read models that copy personal data (docs/lifecycle.md#forget-a-person): a
 * projection sees personal fields plain, and deletes its copy when the `SubjectForgotten`
 * notification (stream `$subjects`) reaches it; a rebuild after forget never sees the fields.
 * Runs on SQLite and PostgreSQL, as a background consumer and inline in the appends.
 */
import { randomUUID } from 'node:crypto';
import type { Database } from 'better-sqlite3';
import type { TransactionSql } from 'postgres';
import { afterEach, describe, expect, it } from 'vitest';
import { type EventStore, SUBJECT_FORGOTTEN } from '../../src/index.js';
import type { PostgresEventStore } from '../../src/postgres.js';
import { defineProjection, type ProjectionHandle, startProjection, waitForPosition } from '../../src/projections.js';
import type { SqliteEventStore } from '../../src/sqlite.js';
import { type Backend, postgresBackend, postgresReachable, sqliteBackend, type TestStore } from './stores.js';

/** The two SQL dialects the projection writes in: `sql` uses $1, $2 placeholders. */
interface Dialect {
  backend: Backend;
  run(tx: unknown, sql: string, params: (string | null)[]): unknown;
  rows(store: EventStore): Promise<Record<string, string | null>>;
}

const sqlite: Dialect = {
  backend: sqliteBackend,
  run: (tx, sql, params) => (tx as Database).prepare(sql.replace(/\$\d/g, '?')).run(...params),
  rows: async (store) =>
    Object.fromEntries(
      (store as SqliteEventStore).database.prepare('SELECT subject, email FROM emails ORDER BY subject').raw().all() as [string, string][],
    ),
};

const pg: Dialect = {
  backend: postgresBackend,
  run: (tx, sql, params) => (tx as TransactionSql).unsafe(sql, params),
  rows: async (store) => {
    const { sql, schema } = store as PostgresEventStore;
    const rows = await sql<{ subject: string; email: string | null }[]>`SELECT subject, email FROM ${sql(schema)}.emails ORDER BY subject`;
    return Object.fromEntries(rows.map((r) => [r.subject, r.email]));
  },
};

/** A read model of e-mail addresses by subject: it copies personal data, so it obeys the rule. */
const emails = (dialect: Dialect, version = 1) =>
  defineProjection({
    name: 'emails',
    version,
    tables: ['emails'],
    // Limited to user streams, it still receives the notifications of `$subjects`.
    streamPrefix: 'user-',
    setup: ({ tx, table }) => dialect.run(tx, `CREATE TABLE ${table('emails')} (subject TEXT PRIMARY KEY, email TEXT)`, []),
    handlers: {
      UserSignedUp: (e, { tx, table }) => {
        const data = e.data as { email?: string };
        // A forgotten event has no email any more (a rebuild after forget): nothing to copy.
        return dialect.run(
          tx,
          `INSERT INTO ${table('emails')} (subject, email) VALUES ($1, $2) ON CONFLICT (subject) DO UPDATE SET email = excluded.email`,
          [String(e.metadata.subject), data.email ?? null],
        );
      },
      [SUBJECT_FORGOTTEN]: (e, { tx, table }) =>
        dialect.run(tx, `DELETE FROM ${table('emails')} WHERE subject = $1`, [(e.data as { subject: string }).subject]),
    },
  });

const signedUp = (subject: string, email: string) => ({
  type: 'UserSignedUp',
  data: { email, plan: 'pro' },
  metadata: { subject, personal: ['email'] },
});

const dialects = [sqlite, ...(postgresReachable ? [pg] : [])];

for (const dialect of dialects) {
  describe(`a read model of e-mails on ${dialect.backend.name}`, () => {
    let opened: TestStore[] = [];
    let running: ProjectionHandle[] = [];
    afterEach(async () => {
      for (const p of running) await p.stop();
      for (const t of opened) await t.dispose();
      opened = [];
      running = [];
    });
    const open = async () => {
      const t = await dialect.backend.open();
      opened.push(t);
      return t.store;
    };

    for (const mode of ['async', 'inline'] as const) {
      it(`${mode}: copies the plain email, deletes it on SubjectForgotten; a rebuild after forget never sees it`, async () => {
        const store = await open();
        const homer = `homer-${randomUUID()}`;
        const marge = `marge-${randomUUID()}`;
        // One event before the projection starts (its catch-up), the others after.
        await store.append('user-h', [signedUp(homer, 'homer@example.com')]);
        const projection = await startProjection(store, emails(dialect), { mode });
        running.push(projection);
        const { position } = await store.append('user-m', [signedUp(marge, 'marge@example.com')]);
        await waitForPosition(projection, position);
        expect(await dialect.rows(store)).toEqual({ [homer]: 'homer@example.com', [marge]: 'marge@example.com' });

        await store.forget(homer);
        // Inline projections run inside appends: the notification is one.
        await waitForPosition(projection, await store.headPosition());
        expect(await dialect.rows(store)).toEqual({ [marge]: 'marge@example.com' });

        // A new version built from the log after forget sees homer's event without the email.
        await projection.stop();
        running = [];
        const rebuilt = await startProjection(store, emails(dialect, 2), { mode });
        running.push(rebuilt);
        await rebuilt.active;
        await waitForPosition(rebuilt, await store.headPosition());
        expect(await dialect.rows(store)).toEqual({ [marge]: 'marge@example.com' });
      });
    }
  });
}
