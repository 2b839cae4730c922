/**
 * The store's read pool (src/stores/postgres/pool.ts): `poolSize` one-connection postgres.js
 * instances behind one `store.sql`. What a user of `store.sql` relies on: queries made together
 * share a connection up to a depth, then spread; a quiet store keeps one connection; a reserved
 * session or a transaction holds up nothing else; fragments and transactions work as on a plain
 * pool; close ends every connection.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresStore, type PostgresEventStore } from '../../../src/postgres.js';
import { DEPTH } from '../../../src/stores/postgres/pool.js';
import { freshSchemaUrl, PG_URL, requirePostgres } from '../../helpers/postgres.js';

const reachable = await requirePostgres();

describe.skipIf(!reachable)('postgres store: the read pool', () => {
  let store: PostgresEventStore;
  let drop: () => Promise<void>;
  let schema: string;
  const admin = postgres(PG_URL, { max: 1, onnotice: () => {} });
  /** This store's read connections (the writer's has another isolation setting; it opens on the first append). */
  const sessions = async () =>
    (await admin<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = ${`logline:${schema}`}`)[0]?.n;

  beforeAll(async () => {
    const fresh = await freshSchemaUrl();
    drop = fresh.drop;
    schema = fresh.schema;
    store = await openPostgresStore({ url: fresh.url, poolSize: 4 });
  });
  afterAll(async () => {
    await store?.close();
    await drop?.();
    await admin.end({ timeout: 5 });
  });

  const backend = async () => (await store.sql<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`)[0]?.pid;

  /** How many of `results` (one row each) ran on each connection, largest first. */
  const perConnection = (results: { pid: number }[][]) => {
    const counts = new Map<number, number>();
    for (const [row] of results) counts.set(row?.pid as number, (counts.get(row?.pid as number) ?? 0) + 1);
    return [...counts.values()].sort((a, b) => b - a);
  };
  const together = (n: number) =>
    Promise.all(Array.from({ length: n }, () => store.sql<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`));

  it('fills one connection up to DEPTH queries before the next, and spreads evenly once all are that full', async () => {
    const sequential = new Set<number | undefined>();
    for (let i = 0; i < 20; i++) sequential.add(await backend());
    expect(sequential.size).toBe(1);
    // Made together, up to DEPTH share a connection (one socket write, one server process).
    expect(perConnection(await together(DEPTH))).toEqual([DEPTH]);
    expect(perConnection(await together(2 * DEPTH + 2))).toEqual([DEPTH, DEPTH, 2]);
    // Past DEPTH on each of the four, the rest go to the least loaded.
    expect(perConnection(await together(4 * DEPTH + 4))).toEqual([DEPTH + 1, DEPTH + 1, DEPTH + 1, DEPTH + 1]);
  });

  it('a transaction holds its connection: a query outside it, awaited inside it, runs on another', async () => {
    const pids = await store.sql.begin(async (tx) => {
      const [inside] = await tx<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
      // On the transaction's own connection this would wait for the transaction to end: forever.
      const [outside] = await store.sql<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
      return [inside?.pid, outside?.pid];
    });
    expect(pids[0]).not.toBe(pids[1]);
    // Queries made while a transaction runs all avoid its connection.
    const results = await store.sql.begin(async (tx) => {
      const [mine] = await tx<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
      return { mine: mine?.pid, others: (await together(8)).map(([row]) => row?.pid) };
    });
    expect(results.others).not.toContain(results.mine);
  });

  it('a reserved session holds up no other query, and its connection serves again once released', async () => {
    const sessionsBefore = await sessions();
    const reserved = await store.sql.reserve();
    const [mine] = await reserved<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
    // While it is reserved, eight queries at once all run on the other connections.
    const others = await Promise.all(Array.from({ length: 8 }, () => backend()));
    expect(others).not.toContain(mine?.pid);
    reserved.release();
    // Released, it is the first connection again: queries made together go there.
    expect((await together(4)).map(([row]) => row?.pid)).toEqual([mine?.pid, mine?.pid, mine?.pid, mine?.pid]);
    expect(await sessions()).toBe(sessionsBefore);
  });

  it('nests fragments, runs transactions and unsafe text like a plain postgres.js pool', async () => {
    const sql = store.sql;
    const above = sql`WHERE x > ${2}`;
    const [count] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM generate_series(1, 5) AS x ${above}`;
    expect(count?.n).toBe(3);
    await sql`CREATE TABLE ${sql(schema)}.pool_probe (id int PRIMARY KEY)`;
    await expect(
      sql.begin(async (tx) => {
        await tx`INSERT INTO ${sql(schema)}.pool_probe VALUES (1)`;
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    await sql.begin(async (tx) => tx`INSERT INTO ${sql(schema)}.pool_probe ${sql([{ id: 2 }, { id: 3 }])}`);
    expect(await sql.unsafe(`SELECT id FROM "${schema}".pool_probe ORDER BY id`)).toEqual([{ id: 2 }, { id: 3 }]);
    const [json] = await sql<{ v: { a: number } }[]>`SELECT ${sql.json({ a: 1 })}::jsonb AS v`;
    expect(json?.v).toEqual({ a: 1 });
  });

  it('close ends every connection', async () => {
    // Enough at once to fill all four connections.
    expect(perConnection(await together(4 * DEPTH))).toEqual([DEPTH, DEPTH, DEPTH, DEPTH]);
    expect(await sessions()).toBeGreaterThanOrEqual(4);
    await store.close();
    await expect.poll(sessions).toBe(0);
  });
});

describe.skipIf(!reachable)('postgres store: a one-connection read pool', () => {
  it('an inline projection attaching over sealed events does not wait on its own connection', async () => {
    const fresh = await freshSchemaUrl();
    const store = await openPostgresStore({ url: fresh.url, poolSize: 1 });
    try {
      // Sealed personal data in the attach's gap: opening it needs the subjects' keys, and the
      // attach's transaction holds the pool's only connection.
      for (const name of ['homer', 'marge']) {
        await store.append(`user-${name}`, [
          { type: 'UserSignedUp', data: { email: `${name}@example.com` }, metadata: { subject: name, personal: ['email'] } },
        ]);
      }
      const backend = await store.projectionBackend();
      const seen: string[] = [];
      let advanced = 0n;
      const attached = backend.attachInline?.({
        key: 'emails',
        guard: { projection: 'emails', version: 1 },
        wants: () => true,
        apply: (_tx, events) => seen.push(...events.map((e) => String((e.data as { email?: string }).email))),
        applyAndCheckpoint: async () => {},
        advance: (position) => {
          advanced = position;
        },
        superseded: () => {},
        fellBehind: () => {},
      });
      const stalled = new Promise((_, reject) => setTimeout(() => reject(new Error('attach stalled for 5 s')), 5000));
      const hook = await Promise.race([attached, stalled]);
      expect(hook).toBeDefined();
      expect(seen).toEqual(['homer@example.com', 'marge@example.com']);
      expect(advanced).toBe(2n);
      // The hook runs in appends from now on, and the one connection serves other reads again.
      await store.append('user-bart', [
        { type: 'UserSignedUp', data: { email: 'bart@example.com' }, metadata: { subject: 'bart', personal: ['email'] } },
      ]);
      expect(seen).toEqual(['homer@example.com', 'marge@example.com', 'bart@example.com']);
      expect(await store.headPosition()).toBe(3n);
      (hook as { detach(): void }).detach();
    } finally {
      await store.close();
      await fresh.drop();
    }
  });
});
