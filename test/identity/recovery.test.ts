/**
 * The recovery drill (seed slide 17, disaster recovery), on SQLite and PostgreSQL: export the
 * log as of a point (`logline export --until <position>`), restore it into a fresh database
 * (`logline import`), start the service there so its views are rebuilt from the log alone, and
 * get the same answers as the original gave at that point, for every user sampled. What was
 * written after the point is absent.
 *
 * Names, usernames and emails are personal data, sealed under per-user keys that an export never
 * holds (docs/lifecycle.md, "Backups and restores"): the drill backs the keys up with
 * `logline keys export` and restores them with `logline keys import` before the events, so the
 * restored log reads plain when the service rebuilds its views.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../server/process.js';
import { call, position, type Reply, ROOT, startIdentity, type TestStore, testStores } from './service.js';

const logline = (args: string[]) =>
  execFileSync(process.execPath, [join(ROOT, 'dist/cli/main.js'), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** What a client sees of a user, minus the global position (a restored log numbers its events anew). */
async function answersFor(base: string, ids: string[], tag: string, min: bigint) {
  const headers = { 'logline-min-position': String(min) };
  const strip = ({ position: _p, ...rest }: Record<string, unknown>) => rest;
  const out: unknown[] = [];
  for (const id of ids) {
    const user = await call(base, 'GET', `/users/${id}`, { headers });
    const groups = await call(base, 'GET', `/users/${id}/groups`, { headers });
    const audit = await call<{ entries: Array<Record<string, unknown>> }>(base, 'GET', `/users/${id}/audit`);
    out.push({
      status: user.status,
      user: user.status === 200 ? strip(user.body) : user.body,
      groups: groups.body,
      audit: audit.status === 200 ? audit.body.entries.map(strip) : audit.status,
    });
  }
  const search = await call<{ users: Array<Record<string, unknown>> }>(base, 'GET', `/users/search?q=${tag}&limit=100`, { headers });
  out.push(search.body.users.map(strip));
  return out;
}

for (const [backend, open, enabled] of await testStores()) {
  describe.skipIf(!enabled)(`recovery drill on ${backend}`, () => {
    const cleanup: Array<() => Promise<unknown>> = [];
    afterAll(async () => {
      for (const step of cleanup.reverse()) await step().catch(() => {});
    });

    it('export as of a point, restore into a fresh database, rebuild the views: the same answers', async () => {
      const original: TestStore = await open();
      cleanup.push(() => original.drop());
      const service = await startIdentity(original.url);
      cleanup.push(() => service.stop());
      const base = service.url;
      const tag = `drill${Date.now().toString(36)}`;

      const ids: string[] = [];
      let last: Reply<unknown> | undefined;
      const group = await call<{ id: string }>(base, 'POST', '/groups', { body: { name: 'Drill' } });
      for (let i = 0; i < 20; i++) {
        const created = await call<{ id: string }>(base, 'POST', '/users', {
          body: { name: `${tag} User ${i}`, username: `${tag}${i}`, email: `${tag}${i}@example.org` },
          headers: { 'x-actor': 'drill' },
        });
        ids.push(created.body.id);
        last = created;
        if (i % 3 === 0) last = await call(base, 'PATCH', `/users/${created.body.id}`, { body: { name: `${tag} Renamed ${i}` } });
        if (i % 2 === 0) last = await call(base, 'PUT', `/groups/${group.body.id}/members/${created.body.id}`);
        if (i % 7 === 6) last = await call(base, 'POST', `/users/${created.body.id}/deactivate`);
      }
      const point = position(last as Reply<unknown>);
      const before = await answersFor(base, ids, tag, point);

      // Life goes on after the point: none of this may appear in the restore.
      const after = await call<{ id: string }>(base, 'POST', '/users', {
        body: { name: `${tag} Late`, username: `${tag}late`, email: `${tag}late@example.org` },
      });
      await call(base, 'PATCH', `/users/${ids[1]}`, { body: { name: 'Changed after the point' } });

      const dir = tempDir('identity-drill-');
      cleanup.push(async () => dir.remove());
      const file = join(dir.path, 'export.ndjson');
      logline(['export', '--store', original.url, '--until', String(point), '-o', file]);
      // The key backup, taken separately (keys never travel in an event export).
      const keys = join(dir.path, 'keys.ndjson');
      logline(['keys', 'export', '--store', original.url, '-o', keys]);
      const restored: TestStore = await open();
      cleanup.push(() => restored.drop());
      // Keys first, then the events (docs/lifecycle.md#backups-and-restores).
      expect(JSON.parse(logline(['keys', 'import', keys, '--store', restored.url]))).toMatchObject({ imported: 21, conflicts: [] });
      logline(['import', file, '--store', restored.url]);

      const recovered = await startIdentity(restored.url);
      cleanup.push(() => recovered.stop());
      const health = await call<{ headPosition: string }>(recovered.url, 'GET', '/health');
      const answers = await answersFor(recovered.url, ids, tag, BigInt(health.body.headPosition));
      expect(answers).toEqual(before);
      expect((await call(recovered.url, 'GET', `/users/${after.body.id}`)).status).toBe(404);
      // The restored service takes writes, with uniqueness rebuilt from the log too.
      const clash = await call(recovered.url, 'POST', '/users', { body: { name: 'x', username: `${tag}2`, email: 'fresh@example.org' } });
      expect(clash.status).toBe(409);
    });
  });
}
