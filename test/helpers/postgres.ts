/**
 * Test access to the real PostgreSQL (no mocks). Every test that needs it opens its store in
 * a fresh schema (`freshSchemaUrl`) and drops it afterwards, so tests never see each other's rows.
 *
 *   const reachable = await requirePostgres();      // throws when CI=true and PostgreSQL is down
 *   describe.skipIf(!reachable)('…', () => { … });
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';

export const PG_URL = process.env.LOGLINE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

let reachable: Promise<boolean> | undefined;

/** Whether PostgreSQL at PG_URL answers. With CI=true an unreachable server is an error, never a skip. */
export function requirePostgres(): Promise<boolean> {
  reachable ??= (async () => {
    const sql = postgres(PG_URL, { max: 1, connect_timeout: 5, onnotice: () => {} });
    try {
      await sql`SELECT 1`;
      return true;
    } catch (error) {
      if (process.env.CI === 'true') {
        throw new Error(`PostgreSQL at ${PG_URL} is unreachable, and CI=true forbids skipping: ${String(error)}`, { cause: error });
      }
      console.warn(`PostgreSQL at ${PG_URL} is unreachable; skipping its tests (${String(error)})`);
      return false;
    } finally {
      await sql.end({ timeout: 1 }).catch(() => {});
    }
  })();
  return reachable;
}

/** A unique schema name: t_ + 12 hex chars. */
export const freshSchemaName = (): string => `t_${randomBytes(6).toString('hex')}`;

/**
 * PG_URL with a unique `schema` query parameter (the store creates the schema on open), and a
 * function that drops that schema with everything in it.
 */
export async function freshSchemaUrl(base: string = PG_URL): Promise<{ url: string; schema: string; drop(): Promise<void> }> {
  const schema = freshSchemaName();
  const url = new URL(base);
  url.searchParams.set('schema', schema);
  return {
    url: url.toString(),
    schema,
    async drop() {
      const sql = postgres(base, { max: 1, onnotice: () => {} });
      try {
        // Sessions still attached to the schema (a crashed child, a test's store) must not block the drop.
        await sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                  WHERE pid <> pg_backend_pid() AND application_name = ${`logline:${schema}`}`;
        await sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`;
      } finally {
        await sql.end({ timeout: 5 });
      }
    },
  };
}

/**
 * Waits until no session of a store on `schema` is left (stores name their sessions
 * `logline:<schema>`). A process killed with SIGKILL leaves its server sessions behind for a
 * moment: one running a statement, or holding a COMMIT it had already sent, finishes it and
 * commits before it notices the client is gone. Checks of what a killed writer left must start
 * after that, or a late commit lands between two of their reads.
 */
export async function sessionsGone(schema: string, timeoutMs = 10_000): Promise<void> {
  const sql = postgres(PG_URL, { max: 1, onnotice: () => {} });
  try {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_stat_activity
                                               WHERE pid <> pg_backend_pid() AND application_name = ${`logline:${schema}`}`;
      if (row?.n === 0) return;
      if (Date.now() > until) throw new Error(`${row?.n} sessions on schema ${schema} still open after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    await sql.end({ timeout: 5 });
  }
}
