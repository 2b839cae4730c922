/**
 * Forget a person on PostgreSQL, checked outside the store (docs/lifecycle.md#forget-a-person):
 * a `pg_dump` of the store's schema and the tables' own heap files never hold the plaintext of a
 * personal field; after forget they hold no byte of the subject's key (the key table is
 * rewritten with VACUUM FULL). Reading heap files needs a superuser (pg_read_binary_file).
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresStore, type PostgresEventStore } from '../../../src/postgres.js';
import { collect } from '../../helpers/collect.js';
import { holdsKey, signedUp } from '../../helpers/personal-data.js';
import { freshSchemaUrl, PG_URL, requirePostgres } from '../../helpers/postgres.js';

const reachable = await requirePostgres();
const run = promisify(execFile);

describe.skipIf(!reachable)('personal data in PostgreSQL', () => {
  let store: PostgresEventStore;
  let schema: string;
  let storeUrl: string;
  let drop: () => Promise<void>;
  const admin = postgres(PG_URL, { max: 1, onnotice: () => {} });

  beforeAll(async () => {
    const fresh = await freshSchemaUrl();
    ({ schema, drop } = fresh);
    storeUrl = fresh.url;
    store = await openPostgresStore({ url: fresh.url, poolSize: 2 });
  });
  afterAll(async () => {
    await store?.close();
    await drop?.();
    await admin.end({ timeout: 1 });
  });

  const dump = async (): Promise<Buffer> => {
    const url = new URL(PG_URL);
    const { stdout } = await run(
      'pg_dump',
      ['-h', url.hostname, '-p', url.port || '5432', '-U', url.username || 'postgres', '--schema', schema, url.pathname.slice(1)],
      { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 },
    );
    return stdout;
  };

  /** A table's heap file as on disk, after a CHECKPOINT wrote every dirty page. */
  const heapFile = async (table: string): Promise<Buffer> => {
    await admin`CHECKPOINT`;
    const [row] = await admin<{ bytes: Buffer }[]>`
      SELECT pg_read_binary_file(pg_relation_filepath(${`${schema}.${table}`})) AS bytes`;
    return Buffer.from(row?.bytes ?? []);
  };

  /**
   * Waits (at most 15 s) until no session runs a transaction, or holds a snapshot, older than now;
   * false when one stays (another suite's long transaction, in any database of the server: its
   * xid is in every newer snapshot, so it holds VACUUM back here too).
   */
  const olderTransactionsEnded = async (): Promise<boolean> => {
    const [{ now } = { now: '0' }] = await admin<{ now: string }[]>`SELECT pg_current_xact_id()::text AS now`;
    for (let waited = 0; waited < 15_000; waited += 200) {
      const [row] = await admin<{ n: number }[]>`
        SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE pid <> pg_backend_pid() AND (age(backend_xmin) > age(${now}::xid) OR age(backend_xid) > age(${now}::xid))`;
      if (row?.n === 0) return true;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    return false;
  };

  const keyOf = async (subject: string): Promise<Buffer> => {
    const [row] = await admin<
      { key: string }[]
    >`SELECT encode(key, 'hex') AS key FROM ${admin(schema)}.subject_keys WHERE subject = ${subject}`;
    return Buffer.from(row?.key ?? '', 'hex');
  };

  it('no plaintext in a pg_dump, the heap files or an export; after forget no key bytes in the dump or the key table file', async (ctx) => {
    const homer = `homer-${randomUUID()}`;
    const marge = `marge-${randomUUID()}`;
    const homerEmail = `homer-${randomBytes(6).toString('hex')}@example.com`;
    const margeEmail = `marge-${randomBytes(6).toString('hex')}@example.com`;
    for (let i = 0; i < 10; i++) await store.append(`user-${i % 3}`, [signedUp(i % 2 ? homer : marge, i % 2 ? homerEmail : margeEmail)]);
    const homerKey = await keyOf(homer);
    const margeKey = await keyOf(marge);
    expect(homerKey.length).toBe(32);

    const before = await dump();
    expect(before.includes('PLAIN-MARKER')).toBe(true);
    expect(holdsKey(before, homerKey)).toBe(true); // the search finds what is there
    for (const secret of [homerEmail, margeEmail]) expect(before.includes(secret)).toBe(false);
    const events = await heapFile('events');
    expect(events.includes('PLAIN-MARKER')).toBe(true);
    for (const secret of [homerEmail, margeEmail]) expect(events.includes(secret)).toBe(false);
    expect(holdsKey(await heapFile('subject_keys'), homerKey)).toBe(true);

    const exported = Buffer.from(
      (await collect(store.readAll({ sealed: true }))).map((e) => JSON.stringify({ ...e, position: String(e.position) })).join('\n'),
    );
    expect(exported.includes('PLAIN-MARKER')).toBe(true);
    for (const secret of [homerEmail, margeEmail]) expect(exported.includes(secret)).toBe(false);
    expect(holdsKey(exported, homerKey) || holdsKey(exported, margeKey)).toBe(false);

    expect(await store.forget(homer)).toMatchObject({ alreadyForgotten: false });
    // VACUUM keeps the old row version while a transaction older than the forget is open (other
    // suites share this server): wait those out and forget again, which runs the cleanup again;
    // the test itself never vacuums, so without the store's VACUUM FULL the key stays.
    const after = await dump();
    expect(holdsKey(after, homerKey)).toBe(false);
    expect(holdsKey(after, margeKey)).toBe(true);
    const read = await collect(store.readAll());
    expect(read.filter((e) => e.metadata.subject === homer).every((e) => e.metadata.forgotten === true)).toBe(true);
    expect(read.filter((e) => e.metadata.subject === marge).every((e) => (e.data as { email?: string }).email === margeEmail)).toBe(true);

    let keyFile = await heapFile('subject_keys');
    if (holdsKey(keyFile, homerKey)) {
      // The documented limit, not a failure of the store: say so rather than pass or fail silently.
      if (!(await olderTransactionsEnded())) ctx.skip('another session kept a transaction older than the forget open for 15 s');
      expect(await store.forget(homer)).toMatchObject({ alreadyForgotten: true });
      keyFile = await heapFile('subject_keys');
    }
    expect(holdsKey(keyFile, homerKey)).toBe(false); // VACUUM FULL left no old row version
    expect(holdsKey(keyFile, margeKey)).toBe(true);
  }, 60_000);

  it('a transaction holding the key table delays forget by the lock timeout at most, and reads never queue behind it', async () => {
    const bart = `bart-${randomUUID()}`;
    await store.append(`person-${bart}`, [signedUp(bart, 'bart@example.com')]);
    const warnings: string[] = [];
    const onWarning = (warning: Error & { code?: string }) => {
      if (warning.code === 'LOGLINE_FORGET_VACUUM') warnings.push(warning.message);
    };
    process.on('warning', onWarning);
    // A report in another session: its transaction read the key table and stays open.
    const report = postgres(PG_URL, { max: 1, onnotice: () => {} });
    const holder = await report.reserve();
    try {
      await holder`BEGIN`;
      await holder`SELECT count(*) FROM ${holder(schema)}.subject_keys`;

      const timedOut = Symbol('timed out');
      const within = <T>(work: Promise<T>, ms: number) =>
        Promise.race([work, new Promise<typeof timedOut>((resolve) => setTimeout(resolve, ms, timedOut))]);
      // Without the lock timeout forget waits for the report to end, and so does every read
      // of personal data queued behind VACUUM's lock request.
      const forgetting = store.forget(bart);
      const reader = await openPostgresStore({ url: storeUrl, poolSize: 1 });
      try {
        const read = await within(collect(reader.read(`person-${bart}`)), 15_000);
        expect(read).not.toBe(timedOut);
      } finally {
        await reader.close();
      }
      expect(await within(forgetting, 15_000)).toMatchObject({ subject: bart, alreadyForgotten: false });
      await expect.poll(() => warnings.length).toBe(1);
      expect(warnings[0]).toMatch(/lock timeout/);
      expect((await collect(store.read(`person-${bart}`)))[0]?.metadata.forgotten).toBe(true);
    } finally {
      await holder`ROLLBACK`.catch(() => {});
      holder.release();
      await report.end({ timeout: 1 });
      process.off('warning', onWarning);
    }
    // With the report ended, forgetting again runs the rewrite through.
    expect(await store.forget(bart)).toMatchObject({ alreadyForgotten: true });
    await new Promise((resolve) => setImmediate(resolve));
    expect(warnings).toHaveLength(1);
  }, 60_000);
});

describe.skipIf(!reachable)('personal data in PostgreSQL at scale', () => {
  it('reading personal events looks keys up through the key index, never by scanning the key table', async () => {
    const fresh = await freshSchemaUrl();
    // One connection: every key lookup is counted by the backend whose counters are read below.
    const store = await openPostgresStore({ url: fresh.url, poolSize: 1 });
    try {
      const S = store.sql(fresh.schema);
      // A key table of a sizeable user base (planned with up-to-date statistics).
      await store.sql`INSERT INTO ${S}.subject_keys (subject, key, created_at)
        SELECT 'bulk-' || g, decode(md5(g::text), 'hex'), '2026-01-01T00:00:00.000Z' FROM generate_series(1, 30000) g`;
      await store.sql`ANALYZE ${S}.subject_keys`;
      const subjects = Array.from({ length: 3 }, () => randomUUID());
      for (const subject of subjects) await store.append(`person-${subject}`, [signedUp(subject, `${subject}@x.test`)]);
      const scans = async () => {
        // A backend reports its counters when a transaction ends, at most once a second (see
        // append-batch.test.ts): wait that long, end one on the only connection, then read.
        await new Promise((resolve) => setTimeout(resolve, 1_100));
        await store.sql`SELECT 1`;
        const [row] = await store.sql<{ seq: string; idx: string }[]>`
          SELECT seq_scan::text AS seq, coalesce(idx_scan, 0)::text AS idx FROM pg_stat_user_tables
          WHERE schemaname = ${fresh.schema} AND relname = 'subject_keys'`;
        return { seq: Number(row?.seq), idx: Number(row?.idx) };
      };
      const before = await scans();
      for (let i = 0; i < 10; i++) {
        const read = await collect(store.readAll());
        expect(read.map((e) => (e.data as { email: string }).email)).toEqual(subjects.map((s) => `${s}@x.test`));
      }
      const after = await scans();
      expect(after.idx).toBeGreaterThanOrEqual(before.idx + 10);
      expect(after.seq).toBe(before.seq);
    } finally {
      await store.close();
      await fresh.drop();
    }
  }, 30_000);
});
