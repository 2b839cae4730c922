/**
 * High availability (seed slide 17): two identity service processes on one PostgreSQL store
 * serve reads and writes at once. A write through one and a read with its position token through
 * the other sees it; uniqueness holds across them; `kill -9` of one under load leaves the other
 * serving, and no acknowledged write is lost.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requirePostgres } from '../helpers/postgres.js';
import { call, type IdentityProcess, position, postgresStore, type Reply, startIdentity, type TestStore } from './service.js';

interface UserJson {
  id: string;
  name: string;
  email: string;
}

const reachable = await requirePostgres();

describe.skipIf(!reachable)('two identity processes on one PostgreSQL store', () => {
  let store: TestStore;
  let a: IdentityProcess;
  let b: IdentityProcess;

  beforeAll(async () => {
    store = await postgresStore();
    // One after the other: the first creates the views' tables, the second finds them.
    a = await startIdentity(store.url);
    b = await startIdentity(store.url);
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await store?.drop();
  });

  it('read-your-writes across processes: a write through one, a read with its token through the other', async () => {
    for (let i = 0; i < 8; i++) {
      const [writer, reader] = i % 2 === 0 ? [a, b] : [b, a];
      const created = await call<UserJson>(writer.url, 'POST', '/users', {
        body: { name: `Cross ${i}`, username: `cross${i}`, email: `cross${i}@example.org` },
      });
      expect(created.status).toBe(201);
      const token = { 'logline-min-position': String(position(created)) };
      const seen = await call<UserJson>(reader.url, 'GET', `/users/${created.body.id}`, { headers: token });
      expect(seen.status).toBe(200);
      expect(seen.body.email).toBe(`cross${i}@example.org`);
      const renamed = await call(reader.url, 'PATCH', `/users/${created.body.id}`, { body: { name: `Renamed ${i}` } });
      const back = await call<UserJson>(writer.url, 'GET', `/users/${created.body.id}`, {
        headers: { 'logline-min-position': String(position(renamed)) },
      });
      expect(back.body.name).toBe(`Renamed ${i}`);
    }
  });

  it('32 requests racing for one username through both processes: exactly one wins', async () => {
    const replies = await Promise.all(
      Array.from({ length: 32 }, (_, i) =>
        call<UserJson>((i % 2 ? a : b).url, 'POST', '/users', {
          body: { name: `Racer ${i}`, username: i % 3 ? 'Contested' : 'contested', email: `contested${i}@example.org` },
        }),
      ),
    );
    expect(replies.filter((r) => r.status === 201)).toHaveLength(1);
    expect(replies.filter((r) => r.status === 409 && r.body && (r.body as { error?: string }).error === 'UsernameTaken')).toHaveLength(31);
  });

  it('kill -9 of one process under load: the other keeps serving, every acknowledged write is there', async () => {
    const acknowledged: Reply<UserJson>[] = [];
    const failedOnSurvivor: string[] = [];
    let killed = false;
    let afterKill = 0;
    let n = 0;
    // At least 2.5 s, and at least 10 writes acknowledged after the kill (the machine may be slow).
    const deadline = Date.now() + 2500;
    const hardStop = Date.now() + 25_000;
    const worker = async (w: number) => {
      while ((Date.now() < deadline || afterKill < 10) && Date.now() < hardStop) {
        const i = n++;
        const target = !killed && w % 2 === 0 ? a : b;
        try {
          const reply = await call<UserJson>(target.url, 'POST', '/users', {
            body: { name: `Load ${i}`, username: `load${i}`, email: `load${i}@example.org` },
          });
          if (reply.status === 201) {
            acknowledged.push(reply);
            if (killed) afterKill += 1;
          } else if (target === b) failedOnSurvivor.push(`${reply.status} ${JSON.stringify(reply.body)}`);
        } catch (error) {
          // The killed process drops its connections; only failures on the survivor count.
          if (target === b) failedOnSurvivor.push(String(error));
        }
        // Reads through the survivor go on too.
        const read = await call(b.url, 'GET', '/users/search?q=load&limit=5').catch((error) => ({ status: String(error) }));
        if (read.status !== 200) failedOnSurvivor.push(`search ${read.status}`);
      }
    };
    const load = Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
    // Kill once writes flow through both processes.
    while (acknowledged.length < 10 && Date.now() < hardStop) await new Promise((resolve) => setTimeout(resolve, 50));
    killed = true;
    expect(await a.stop('SIGKILL')).toBeNull();
    await load;
    expect(failedOnSurvivor).toEqual([]);
    expect(afterKill).toBeGreaterThanOrEqual(10);
    const head = acknowledged.map(position).reduce((x, y) => (x > y ? x : y));
    for (const reply of acknowledged) {
      const seen = await call<UserJson>(b.url, 'GET', `/users/${reply.body.id}`, { headers: { 'logline-min-position': String(head) } });
      expect(seen.status).toBe(200);
      expect(seen.body.email).toBe(reply.body.email);
    }
    // A restarted process catches up and serves the same answers.
    a = await startIdentity(store.url);
    const sample = acknowledged[acknowledged.length - 1] as Reply<UserJson>;
    const again = await call<UserJson>(a.url, 'GET', `/users/${sample.body.id}`, { headers: { 'logline-min-position': String(head) } });
    expect(again.body).toMatchObject({ id: sample.body.id, email: sample.body.email });
  }, 90_000);
});
