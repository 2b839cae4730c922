/**
 * Zero-downtime upgrade (seed slides 8–9, `users_new`): users view version 2 (with a derived
 * displayName) is built beside version 1 while the service serves a mixed load, then switched
 * atomically. Not one request of the load fails, and reads with a write's token keep seeing it.
 */
import { describe, expect, it } from 'vitest';
import { serveDuringTests } from './served.js';
import { call, type IdentityProcess, position, sqliteStore, startIdentity, testStores } from './service.js';

interface UserJson {
  id: string;
  name: string;
  username: string;
  email: string;
  displayName?: string;
}

for (const [backend, open, enabled] of await testStores()) {
  describe.skipIf(!enabled)(`users view upgrade under load on ${backend}`, () => {
    const served = serveDuringTests(open);

    it('builds v2 beside v1 and switches while reads and writes go on: zero failed requests', async () => {
      const base = served.url;
      const users: UserJson[] = [];
      for (let i = 0; i < 100; i += 20) {
        const batch = await Promise.all(
          Array.from({ length: 20 }, (_, j) =>
            call<UserJson>(base, 'POST', '/users', {
              body: { name: `Seed ${i + j}`, username: `seed${i + j}`, email: `seed${i + j}@example.org` },
            }),
          ),
        );
        for (const reply of batch) users.push(reply.body);
      }
      const failures: string[] = [];
      let requests = 0;
      let stop = false;
      let n = 0;
      const check = (what: string, status: number, expected: number, body: unknown) => {
        requests += 1;
        if (status !== expected) failures.push(`${what}: ${status} ${JSON.stringify(body)}`);
      };
      const worker = async () => {
        while (!stop) {
          const i = n++;
          const user = users[i % users.length] as UserJson;
          const created = await call<UserJson>(base, 'POST', '/users', {
            body: { name: `Live ${i}`, username: `live${i}`, email: `live${i}@example.org` },
          });
          check('create', created.status, 201, created.body);
          const token = { 'logline-min-position': String(position(created)) };
          const mine = await call<UserJson>(base, 'GET', `/users/${created.body.id}`, { headers: token });
          check('read own write', mine.status, 200, mine.body);
          const renamed = await call(base, 'PATCH', `/users/${user.id}`, { body: { name: `Seed renamed ${i}` } });
          check('rename', renamed.status, 200, renamed.body);
          const byEmail = await call<{ users: UserJson[] }>(base, 'GET', `/users?email=${user.email}`);
          check('by email', byEmail.status, 200, byEmail.body);
          if (byEmail.body.users?.length !== 1) failures.push(`by email: ${JSON.stringify(byEmail.body)}`);
          const search = await call(base, 'GET', '/users/search?q=seed1&limit=5', { headers: token });
          check('search', search.status, 200, search.body);
        }
      };
      const load = Promise.all(Array.from({ length: 6 }, () => worker()));
      await new Promise((resolve) => setTimeout(resolve, 400));
      const upgrade = await call<{ usersView: number }>(base, 'POST', '/admin/users-view/upgrade');
      expect(upgrade.status).toBe(200);
      expect(upgrade.body.usersView).toBe(2);
      await new Promise((resolve) => setTimeout(resolve, 600));
      stop = true;
      await load;
      expect(failures).toEqual([]);
      expect(requests).toBeGreaterThan(50);

      const health = await call<{ usersView: number; headPosition: string }>(base, 'GET', '/health');
      expect(health.body.usersView).toBe(2);
      const sample = users[3] as UserJson;
      const after = await call<UserJson>(base, 'GET', `/users/${sample.id}`, {
        headers: { 'logline-min-position': health.body.headPosition },
      });
      expect(after.body.displayName).toBe(`${after.body.name} (@${sample.username})`);
      // Version 2 keeps its derived column up to date.
      const renamed = await call(base, 'PATCH', `/users/${sample.id}`, { body: { name: 'Upgraded', username: 'upgraded3' } });
      const seen = await call<UserJson>(base, 'GET', `/users/${sample.id}`, {
        headers: { 'logline-min-position': String(position(renamed)) },
      });
      expect(seen.body.displayName).toBe('Upgraded (@upgraded3)');
    }, 120_000);
  });
}

describe('users view upgrade run by another process (SQLite file shared by two processes)', () => {
  it('a process with --users-view 2 builds and switches; the serving v1 process follows with zero failed requests', async () => {
    const store = await sqliteStore();
    const serving = await startIdentity(store.url);
    let upgrader: IdentityProcess | undefined;
    try {
      const base = serving.url;
      const seeded = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          call<UserJson>(base, 'POST', '/users', { body: { name: `Roll ${i}`, username: `roll${i}`, email: `roll${i}@example.org` } }),
        ),
      );
      const failures: string[] = [];
      let stop = false;
      let n = 0;
      const worker = async () => {
        while (!stop) {
          const i = n++;
          const written = await call(base, 'PATCH', `/users/${seeded[i % 30]?.body.id}`, { body: { name: `Rolled ${i}` } });
          if (written.status !== 200) failures.push(`write ${written.status} ${JSON.stringify(written.body)}`);
          const read = await call<UserJson>(base, 'GET', `/users/${seeded[i % 30]?.body.id}`, {
            headers: { 'logline-min-position': String(position(written)) },
          });
          if (read.status !== 200) failures.push(`read ${read.status} ${JSON.stringify(read.body)}`);
        }
      };
      const load = Promise.all(Array.from({ length: 4 }, () => worker()));
      upgrader = await startIdentity(store.url, ['--users-view', '2']);
      const deadline = Date.now() + 60_000;
      let version = 1;
      while (version !== 2 && Date.now() < deadline) {
        version = (await call<{ usersView: number }>(base, 'GET', '/health')).body.usersView;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      stop = true;
      await load;
      expect(version).toBe(2);
      expect(failures).toEqual([]);
      const health = await call<{ headPosition: string }>(base, 'GET', '/health');
      const user = await call<UserJson>(base, 'GET', `/users/${seeded[0]?.body.id}`, {
        headers: { 'logline-min-position': health.body.headPosition },
      });
      expect(user.body.displayName).toBe(`${user.body.name} (@roll0)`);
    } finally {
      await upgrader?.stop();
      await serving.stop();
      await store.drop();
    }
  }, 120_000);
});
