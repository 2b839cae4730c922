/**
 * The identity service (apps/identity, seed 003) over HTTP, as a real process on SQLite and on
 * PostgreSQL: uniqueness under a 32-way race, If-Match 412, tokens and read-your-writes, 304,
 * audit, groups paged, the /changes feed, search, validation.
 */
import { describe, expect, it } from 'vitest';
import { serveDuringTests } from './served.js';
import { call, position, type Reply, testStores } from './service.js';

interface UserJson {
  id: string;
  name: string;
  username: string;
  email: string;
  active: boolean;
  version: number;
  position: string;
  displayName?: string;
}

let unique = 0;
const fresh = (tag: string) => {
  unique += 1;
  const n = `${tag}${unique}${Math.random().toString(36).slice(2, 7)}`;
  return { name: `Test ${n}`, username: n, email: `${n}@example.org` };
};

for (const [backend, open, enabled] of await testStores()) {
  describe.skipIf(!enabled)(`identity service on ${backend}`, () => {
    const served = serveDuringTests(open, ['--min-position-timeout-ms', '400']);
    const get = <T = Record<string, unknown>>(path: string, headers: Record<string, string> = {}) =>
      call<T>(served.url, 'GET', path, { headers });
    /** Reads with the token of a write, so the views have caught up with it. */
    const read = <T = Record<string, unknown>>(path: string, after: Reply<unknown>) =>
      get<T>(path, { 'logline-min-position': String(position(after)) });
    const createUser = (body: unknown, headers: Record<string, string> = {}) =>
      call<UserJson>(served.url, 'POST', '/users', { body, headers });

    it('creates a user: 201 with the user, ETag, Location and Logline-Position; reads it back with the token; 304', async () => {
      const input = fresh('homer');
      const created = await createUser(input);
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ ...input, active: true, version: 1 });
      expect(created.headers.get('etag')).toBe('"1"');
      expect(created.headers.get('location')).toBe(`/users/${created.body.id}`);
      expect(position(created)).toBeGreaterThan(0n);

      const fetched = await read<UserJson>(`/users/${created.body.id}`, created);
      expect(fetched.status).toBe(200);
      expect(fetched.body).toMatchObject({ id: created.body.id, ...input, version: 1, position: String(position(created)) });
      expect(fetched.headers.get('etag')).toBe('"1"');
      const cached = await get(`/users/${created.body.id}`, { 'if-none-match': '"1"' });
      expect(cached.status).toBe(304);
      const byEmail = await get<{ users: UserJson[] }>(`/users?email=${encodeURIComponent(input.email.toUpperCase())}`);
      expect(byEmail.body.users.map((u) => u.id)).toEqual([created.body.id]);
    });

    it('32 concurrent creates with one email (in 32 letter cases): exactly one 201, 31 × 409 EmailTaken, one user in every view', async () => {
      const email = `race-${Date.now()}@example.org`;
      const replies = await Promise.all(
        Array.from({ length: 32 }, (_, i) => {
          const cased = [...email].map((ch, j) => ((i >> (j % 5)) & 1 ? ch.toUpperCase() : ch)).join('');
          return createUser({ name: `Racer ${i}`, username: `racer${i}x${Date.now()}`, email: cased });
        }),
      );
      const won = replies.filter((r) => r.status === 201);
      const lost = replies.filter((r) => r.status === 409);
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(31);
      for (const r of lost) expect(r.body).toMatchObject({ error: 'EmailTaken', field: 'email' });
      const head = replies.map(position).reduce((a, b) => (a > b ? a : b));
      const byEmail = await get<{ users: UserJson[] }>(`/users?email=${email}`, { 'logline-min-position': String(head) });
      expect(byEmail.body.users).toHaveLength(1);
      expect(byEmail.body.users[0]?.id).toBe(won[0]?.body.id);
      const search = await get<{ users: UserJson[] }>('/users/search?q=racer&limit=1000', { 'logline-min-position': String(head) });
      expect(search.body.users.filter((u) => u.email.toLowerCase() === email)).toHaveLength(1);
      const feed = await allChanges(get);
      expect(feed.filter((c) => c.kind === 'user' && c.user?.email.toLowerCase() === email)).toHaveLength(1);
    });

    it('usernames are unique case-insensitively among active users; a deactivated user frees its keys', async () => {
      const first = await createUser(fresh('bart'));
      const taken = await createUser({ ...fresh('other'), username: first.body.username.toUpperCase() });
      expect(taken.status).toBe(409);
      expect(taken.body).toMatchObject({ error: 'UsernameTaken', field: 'username' });
      // Changing one's own username's case is not a clash.
      const recased = await call<UserJson>(served.url, 'PATCH', `/users/${first.body.id}`, {
        body: { username: first.body.username.toUpperCase() },
      });
      expect(recased.status).toBe(200);
      const other = await createUser(fresh('lisa'));
      const clash = await call(served.url, 'PATCH', `/users/${other.body.id}`, { body: { email: first.body.email } });
      expect(clash.status).toBe(409);
      expect(clash.body).toMatchObject({ error: 'EmailTaken' });

      const gone = await call<UserJson>(served.url, 'POST', `/users/${first.body.id}/deactivate`);
      expect(gone.status).toBe(200);
      expect(gone.body.active).toBe(false);
      const reuse = await createUser({ name: 'Reuse', username: first.body.username, email: first.body.email });
      expect(reuse.status).toBe(201);
      const changeDeactivated = await call(served.url, 'PATCH', `/users/${first.body.id}`, { body: { name: 'Zombie' } });
      expect(changeDeactivated.status).toBe(409);
      expect(changeDeactivated.body).toMatchObject({ error: 'UserDeactivated' });
      const both = await read<{ users: UserJson[] }>(`/users?email=${first.body.email}`, reuse);
      expect(both.body.users.map((u) => [u.id, u.active])).toEqual([
        [reuse.body.id, true],
        [first.body.id, false],
      ]);
    });

    it('If-Match: a stale ETag is 412 and stores nothing; the current one writes and returns the next ETag', async () => {
      const created = await createUser(fresh('maggie'));
      const id = created.body.id;
      const first = await call<UserJson>(served.url, 'PATCH', `/users/${id}`, {
        body: { name: 'Maggie One' },
        headers: { 'if-match': '"1"' },
      });
      expect(first.status).toBe(200);
      expect(first.headers.get('etag')).toBe('"2"');
      const stale = await call(served.url, 'PATCH', `/users/${id}`, { body: { name: 'Maggie Stale' }, headers: { 'if-match': '"1"' } });
      expect(stale.status).toBe(412);
      expect(stale.body).toMatchObject({ error: 'WrongExpectedVersion', expected: 1, actual: 2 });
      const audit = await get<{ entries: Array<{ type: string }> }>(`/users/${id}/audit`);
      expect(audit.body.entries.map((e) => e.type)).toEqual(['UserCreated', 'UserNameSet']);
      const view = await read<UserJson>(`/users/${id}`, first);
      expect(view.body.name).toBe('Maggie One');
      expect((await call(served.url, 'PATCH', `/users/${id}`, { body: { name: 'x' }, headers: { 'if-match': 'W/"2"' } })).status).toBe(400);
    });

    it('concurrent unconditional name changes: every view ends with the last one by position', async () => {
      const created = await createUser(fresh('ned'));
      const id = created.body.id;
      const replies = await Promise.all(
        Array.from({ length: 12 }, (_, i) => call<UserJson>(served.url, 'PATCH', `/users/${id}`, { body: { name: `Ned ${i}` } })),
      );
      for (const r of replies) expect(r.status).toBe(200);
      const last = replies.reduce((a, b) => (position(a) > position(b) ? a : b));
      const audit = await get<{ entries: Array<{ changes: Array<{ field: string; new: unknown }> }> }>(`/users/${id}/audit`);
      const lastName = audit.body.entries.at(-1)?.changes.find((c) => c.field === 'name')?.new;
      const view = await read<UserJson>(`/users/${id}`, last);
      expect(view.body.name).toBe(lastName);
      const search = await read<{ users: UserJson[] }>(`/users/search?q=${created.body.username}`, last);
      expect(search.body.users[0]?.name).toBe(lastName);
    });

    it('audit: every change with old → new, when, actor and correlation id', async () => {
      const created = await createUser(fresh('moe'), { 'x-actor': 'admin', 'x-correlation-id': 'signup-1' });
      const id = created.body.id;
      await call(served.url, 'PATCH', `/users/${id}`, {
        body: { name: 'Moe Szyslak', email: `moe-${Date.now()}@tavern.org` },
        headers: { 'x-actor': 'moe', 'x-correlation-id': 'fix-1' },
      });
      const audit = await get<{ entries: Array<Record<string, unknown>> }>(`/users/${id}/audit`);
      expect(audit.body.entries).toHaveLength(3);
      expect(audit.body.entries[0]).toMatchObject({ type: 'UserCreated', actor: 'admin', correlationId: 'signup-1', version: 1 });
      expect(audit.body.entries[1]).toMatchObject({
        type: 'UserNameSet',
        actor: 'moe',
        correlationId: 'fix-1',
        changes: [{ field: 'name', old: created.body.name, new: 'Moe Szyslak' }],
      });
      expect(audit.body.entries[2]).toMatchObject({ type: 'UserEmailSet', changes: [{ field: 'email', old: created.body.email }] });
      const paged = await get<{ entries: Array<{ version: number; changes: Array<{ old: unknown }> }>; next: number | null }>(
        `/users/${id}/audit?from=2&limit=1`,
      );
      expect(paged.body.entries.map((e) => e.version)).toEqual([2]);
      expect(paged.body.entries[0]?.changes[0]?.old).toBe(created.body.name);
      expect(paged.body.next).toBe(3);
    });

    it('groups: create, rename with If-Match, add members idempotently, members and groups paged, remove', async () => {
      const group = await call<{ id: string }>(served.url, 'POST', '/groups', { body: { name: 'Springfield' } });
      expect(group.status).toBe(201);
      expect(group.headers.get('location')).toBe(`/groups/${group.body.id}`);
      const renamed = await call(served.url, 'PATCH', `/groups/${group.body.id}`, {
        body: { name: 'Shelbyville' },
        headers: { 'if-match': '"1"' },
      });
      expect(renamed.status).toBe(200);
      expect(
        (await call(served.url, 'PATCH', `/groups/${group.body.id}`, { body: { name: 'X' }, headers: { 'if-match': '"1"' } })).status,
      ).toBe(412);
      const members: string[] = [];
      for (let i = 0; i < 5; i++) members.push((await createUser(fresh('member'))).body.id);
      let last: Reply<unknown> = renamed;
      for (const userId of members) {
        last = await call(served.url, 'PUT', `/groups/${group.body.id}/members/${userId}`);
        expect(last.status).toBe(201);
      }
      expect((await call(served.url, 'PUT', `/groups/${group.body.id}/members/${members[0]}`)).status).toBe(200);
      const seen: string[] = [];
      let after = '';
      for (let page = 0; page < 5; page++) {
        const reply = await read<{ members: Array<{ userId: string }>; next: string | null }>(
          `/groups/${group.body.id}/members?limit=2${after ? `&after=${after}` : ''}`,
          last,
        );
        seen.push(...reply.body.members.map((m) => m.userId));
        if (!reply.body.next) break;
        after = reply.body.next;
      }
      expect(seen).toEqual([...members].sort());
      const mine = await read<{ groups: Array<{ groupId: string; name: string }> }>(`/users/${members[1]}/groups`, last);
      expect(mine.body.groups).toEqual([{ groupId: group.body.id, name: 'Shelbyville' }]);
      const removed = await call(served.url, 'DELETE', `/groups/${group.body.id}/members/${members[1]}`);
      expect(removed.status).toBe(200);
      expect((await read<{ groups: unknown[] }>(`/users/${members[1]}/groups`, removed)).body.groups).toEqual([]);
      const unknownUser = await call(served.url, 'PUT', `/groups/${group.body.id}/members/00000000-0000-4000-8000-000000000000`);
      expect(unknownUser.status).toBe(404);
      expect(unknownUser.body).toMatchObject({ error: 'UserNotFound' });
    });

    it('search: prefix and substring on name and username, ranked, paged', async () => {
      const tag = `zq${Date.now().toString(36)}`;
      const exact = await createUser({ name: 'Someone Else', username: tag, email: `${tag}@a.org` });
      const prefix = await createUser({ name: 'Another', username: `${tag}_2`, email: `${tag}2@a.org` });
      const namePrefix = await createUser({ name: `${tag}ina Name`, username: `n${tag}x`, email: `${tag}3@a.org` });
      const last = await createUser({ name: `Abe ${tag}son`, username: `abe${Date.now()}`, email: `${tag}4@a.org` });
      const all = await read<{ users: Array<UserJson & { rank: number }>; next: number | null }>(
        `/users/search?q=${tag.toUpperCase()}`,
        last,
      );
      expect(all.body.users.map((u) => u.id)).toEqual([exact.body.id, prefix.body.id, namePrefix.body.id, last.body.id]);
      // The whole username, a username prefix, a name prefix, a later word's prefix.
      expect(all.body.users.map((u) => u.rank)).toEqual([0, 1, 2, 3]);
      const page = await get<{ users: UserJson[]; next: number | null }>(`/users/search?q=${tag}&limit=2&offset=2`);
      expect(page.body.users.map((u) => u.id)).toEqual([namePrefix.body.id, last.body.id]);
      expect(page.body.next).toBeNull();
      expect((await get(`/users/search?q=${tag}&limit=2`)).body.next).toBe(2);
      expect((await get('/users/search?q=%25')).status).toBe(200);
      // Inside words only: every one of them, ranked 4.
      const inner = await get<{ users: Array<UserJson & { rank: number }> }>(`/users/search?q=${tag.slice(2)}`);
      expect(inner.body.users.map((u) => [u.id, u.rank])).toEqual(
        // Ties by the matched text: <q>, <q>_2, <q>ina, <q>son.
        [exact, prefix, namePrefix, last].map((r) => [r.body.id, 4]),
      );
      // Inside a word from three characters on; one or two match only where a word or username starts.
      const ids = async (q: string) => (await get<{ users: UserJson[] }>(`/users/search?q=${q}&limit=1000`)).body.users.map((u) => u.id);
      expect(await ids('son')).toContain(last.body.id);
      expect(await ids('on')).not.toContain(last.body.id);
      expect(await ids('ab')).toContain(last.body.id);
      // Renamed and deactivated users are found by what they are now, or not at all.
      const renamed = await call(served.url, 'PATCH', `/users/${namePrefix.body.id}`, { body: { name: 'Plain Name' } });
      const gone = await call(served.url, 'POST', `/users/${last.body.id}/deactivate`);
      const now = await read<{ users: UserJson[] }>(`/users/search?q=${tag}`, position(gone) > position(renamed) ? gone : renamed);
      expect(now.body.users.map((u) => u.id)).toEqual([exact.body.id, prefix.body.id, namePrefix.body.id]);
      expect((await get<{ users: UserJson[] }>('/users/search?q=plain name')).body.users.map((u) => u.id)).toContain(namePrefix.body.id);
    });

    it('search pages past a user that matches at many places: each user once, none skipped', async () => {
      const tag = `zr${Date.now().toString(36)}`;
      // Five of A's search terms start with the tag (a word repeating it), all ordered before B's and C's.
      const a = await createUser({
        name: `Repeat ${Array(5).fill(`a${tag}`).join('')}`,
        username: `rep${Date.now()}a`,
        email: `${tag}a@a.org`,
      });
      const b = await createUser({ name: `Once b${tag}b`, username: `rep${Date.now()}b`, email: `${tag}b@a.org` });
      const c = await createUser({ name: `Once c${tag}c`, username: `rep${Date.now()}c`, email: `${tag}c@a.org` });
      const all = await read<{ users: Array<UserJson & { rank: number }> }>(`/users/search?q=${tag}`, c);
      expect(all.body.users.map((u) => [u.id, u.rank])).toEqual([a, b, c].map((r) => [r.body.id, 4]));
      for (let offset = 0; offset < 3; offset++) {
        const page = await get<{ users: UserJson[]; next: number | null }>(`/users/search?q=${tag}&limit=1&offset=${offset}`);
        expect(page.body.users.map((u) => u.id)).toEqual([[a, b, c][offset]?.body.id]);
        expect(page.body.next).toBe(offset < 2 ? offset + 1 : null);
      }
    });

    it('/changes: a resumable feed; paging by next sees every user and group once, at its latest state', async () => {
      const a = await createUser(fresh('feed'));
      const b = await createUser(fresh('feed'));
      const changed = await call<UserJson>(served.url, 'PATCH', `/users/${a.body.id}`, { body: { name: 'Changed Feed' } });
      const everything = await allChanges(get, position(changed));
      const users = everything.filter((c) => c.kind === 'user').map((c) => c.user as UserJson);
      expect(new Set(users.map((u) => u.id)).size).toBe(users.length);
      expect(users.find((u) => u.id === a.body.id)?.name).toBe('Changed Feed');
      expect(users.find((u) => u.id === b.body.id)).toBeDefined();
      // Resuming from the last token shows only what changed since.
      const token = everything.at(-1)?.position ?? '0';
      const later = await call<UserJson>(served.url, 'PATCH', `/users/${b.body.id}`, { body: { name: 'Later Feed' } });
      const resumed = await read<{ changes: Array<{ kind: string; user?: UserJson }>; next: string }>(`/changes?since=${token}`, later);
      expect(resumed.body.changes.map((c) => c.user?.name)).toEqual(['Later Feed']);
      expect(BigInt(resumed.body.next)).toBe(position(later));
    });

    it('Logline-Min-Position beyond what the views reach: 503 with Retry-After after the bound', async () => {
      const started = Date.now();
      const reply = await get('/users/search?q=a', { 'logline-min-position': '999999999' });
      expect(reply.status).toBe(503);
      expect(reply.headers.get('retry-after')).toBe('1');
      expect(reply.body).toMatchObject({ error: 'PositionTimeout' });
      expect(Date.now() - started).toBeGreaterThanOrEqual(350);
      expect((await get('/users/search?q=a', { 'logline-min-position': 'soon' })).status).toBe(400);
    });

    it('bad input is a 400 naming the field, and nothing is stored', async () => {
      const bad = fresh('bad');
      const replies = await Promise.all([
        createUser({ ...bad, email: 'not-an-email' }),
        createUser({ ...bad, username: 'has space' }),
        createUser({ ...bad, extra: 1 }),
        createUser({ name: bad.name }),
        call(served.url, 'POST', '/users', { body: 'x', headers: { 'content-type': 'text/plain' } }),
        call(served.url, 'PATCH', '/users/not-a-uuid', { body: { name: 'x' } }),
        call(served.url, 'PATCH', '/users/00000000-0000-4000-8000-000000000000', { body: {} }),
      ]);
      expect(replies.map((r) => r.status)).toEqual([400, 400, 400, 400, 400, 400, 400]);
      expect(replies[0]?.body).toMatchObject({ error: 'InvalidArgument', argument: 'email' });
      expect(replies[2]?.body).toMatchObject({ error: 'InvalidArgument' });
      const missing = await call(served.url, 'PATCH', '/users/00000000-0000-4000-8000-000000000000', { body: { name: 'x' } });
      expect(missing.status).toBe(404);
      const none = await get<{ users: unknown[] }>(`/users?email=${bad.email}`);
      expect(none.body.users).toEqual([]);
    });

    it('serves its OpenAPI document', async () => {
      const doc = await get<{ openapi: string; paths: Record<string, unknown>; components: { schemas: Record<string, unknown> } }>(
        '/openapi.json',
      );
      expect(doc.body.openapi).toBe('3.1.0');
      expect(Object.keys(doc.body.paths)).toEqual(
        expect.arrayContaining(['/users', '/users/{id}', '/changes', '/groups/{id}/members/{userId}']),
      );
      expect(Object.keys(doc.body.components.schemas)).toEqual(expect.arrayContaining(['CreateUser', 'ChangeUser']));
    });
  });
}

interface Change {
  kind: string;
  position: string;
  user?: UserJson;
}

/** Pages the whole /changes feed by its next token (waiting for `min` first). */
async function allChanges(get: <T>(path: string, headers?: Record<string, string>) => Promise<Reply<T>>, min?: bigint): Promise<Change[]> {
  const out: Change[] = [];
  let since = '0';
  for (let page = 0; page < 10_000; page++) {
    const headers: Record<string, string> = min !== undefined ? { 'logline-min-position': String(min) } : {};
    const reply = await get<{ changes: Change[]; next: string }>(`/changes?since=${since}&limit=7`, headers);
    out.push(...reply.body.changes);
    if (reply.body.changes.length === 0) return out;
    since = reply.body.next;
  }
  throw new Error('the feed did not end');
}
