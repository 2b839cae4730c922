/**
 * The identity service's HTTP API (Hono). Requests are validated with zod (the same schemas
 * produce /openapi.json); errors are `{ error, message, ...details }` like Logline's own.
 *
 * Tokens (seed slides 51–65): every write answers `ETag: "n"` (the entity's stream version) and
 * `Logline-Position: p` (the global position). `If-Match: "n"` makes a write conditional (412
 * on mismatch); `Logline-Min-Position: p` makes a read wait until every view has processed p
 * (503 with Retry-After when that takes longer than the service's bound).
 */
import { randomUUID } from 'node:crypto';
import { type Context, Hono } from 'hono';
import {
  type Command,
  type Decider,
  DomainError,
  type Event,
  handleCommand,
  InvalidArgumentError,
  LoglineError,
  loadAggregate,
  type RecordedEvent,
  UnknownSubjectError,
  WrongExpectedVersionError,
} from 'logline';
import { z } from 'zod';
import {
  groupNotFound,
  groupStream,
  groups,
  membershipStream,
  memberships,
  normalizeKey,
  type User,
  userDecider,
  userNotFound,
  userStream,
  users,
} from './domain.js';
import type { Service } from './service.js';
import { SHORTEST_INSIDE_MATCH } from './views.js';

export interface HttpOptions {
  /** Longest wait for Logline-Min-Position, ms. */
  minPositionTimeoutMs: number;
}

const name = z.string().trim().min(1).max(200);
const username = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: 'username must be 1 to 64 characters of letters, digits, _ . -' })
  .meta({ description: 'Unique among active users, compared case-insensitively.' });
const email = z
  .email({ error: 'email must be an email address' })
  .max(254)
  .meta({ description: 'Unique among active users, compared case-insensitively.' });

export const createUserBody = z.strictObject({ name, username, email }).meta({ id: 'CreateUser' });
export const changeUserBody = z
  .strictObject({ name: name.optional(), username: username.optional(), email: email.optional() })
  .refine((b) => Object.keys(b).length > 0, { error: 'give at least one of name, username, email' })
  .meta({ id: 'ChangeUser' });
export const groupBody = z.strictObject({ name }).meta({ id: 'GroupName' });
const id = z.uuid({ error: 'ids are UUIDs' });
const limit = z
  .string()
  .regex(/^\d{1,4}$/, { error: 'limit must be an integer from 1 to 1000' })
  .transform(Number)
  .pipe(z.int().min(1).max(1000))
  .optional();
const position = z.string().regex(/^\d{1,19}$/, { error: 'a position is a non-negative integer' });
const searchQuery = z.strictObject({
  q: z.string().trim().min(1, { error: 'q must not be empty' }).max(200),
  limit,
  offset: z
    .string()
    .regex(/^\d{1,6}$/, { error: 'offset must be an integer from 0 to 999999' })
    .transform(Number)
    .optional(),
});
const emailQuery = z.strictObject({ email: z.string().min(1).max(254) });
const pageQuery = z.strictObject({ after: z.string().max(200).optional(), limit });
const changesQuery = z.strictObject({ since: position.optional(), limit });
const auditQuery = z.strictObject({
  from: z
    .string()
    .regex(/^[1-9]\d{0,8}$/, { error: 'from must be a stream version ≥ 1' })
    .transform(Number)
    .optional(),
  limit,
});

function parse<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue?.path.length ? issue.path.join('.') : what;
  throw new InvalidArgumentError(field, issue?.message ?? 'invalid', `a valid ${what} (see /openapi.json)`);
}

async function body<T extends z.ZodType>(c: Context, schema: T): Promise<z.output<T>> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/(.+\+)?json\b/i.test(type)) throw new InvalidArgumentError('Content-Type', `got '${type}'`, 'application/json');
  let json: unknown;
  try {
    json = await c.req.json();
  } catch (error) {
    throw new InvalidArgumentError('body', `it is not valid JSON (${(error as Error).message})`, 'a JSON object');
  }
  return parse(schema, json, 'body');
}

const query = <T extends z.ZodType>(c: Context, schema: T): z.output<T> => parse(schema, c.req.query(), 'query');

/** `If-Match: "n"` → n; absent → undefined (unconditional). */
function ifMatch(c: Context): number | undefined {
  const header = c.req.header('if-match');
  if (header === undefined) return undefined;
  const match = /^"(\d{1,15})"$/.exec(header.trim());
  if (!match) throw new InvalidArgumentError('If-Match', `got ${JSON.stringify(header.slice(0, 100))}`, 'one strong ETag "n" (a version)');
  return Number(match[1]);
}

/** Correlation id and actor of a write: copied onto its events, shown by the audit trail. */
function metadataOf(c: Context): { correlationId: string; actor: string } {
  const correlationId = c.req.header('x-correlation-id') ?? randomUUID();
  const actor = c.req.header('x-actor') ?? 'anonymous';
  if (correlationId.length > 200 || actor.length > 200) {
    throw new InvalidArgumentError('X-Correlation-Id / X-Actor', 'longer than 200 characters', 'at most 200 characters');
  }
  return { correlationId, actor };
}

const STATUS: Record<string, number> = {
  InvalidArgument: 400,
  UserNotFound: 404,
  GroupNotFound: 404,
  NotFound: 404,
  UsernameTaken: 409,
  EmailTaken: 409,
  UserExists: 409,
  GroupExists: 409,
  UserDeactivated: 409,
  // A forgotten user's personal data can never be stored again (a returning person is a new user).
  SubjectForgotten: 409,
  PersonalDataNotDeclared: 409,
  // If-Match did not match the entity's version: 412, the HTTP meaning of a failed precondition.
  WrongExpectedVersion: 412,
  CommandRetriesExhausted: 503,
  PositionTimeout: 503,
  ProjectionStopped: 503,
  StoreUnavailable: 503,
  StoreClosed: 503,
};

const json = (c: Context, value: unknown, status = 200, headers: Record<string, string> = {}) => {
  for (const [key, v] of Object.entries(headers)) c.header(key, v);
  return c.body(JSON.stringify(value), status as 200, { 'content-type': 'application/json; charset=utf-8' });
};

/** name, username and email are NULL once the user's personal data was forgotten. */
interface UserRow {
  id: string;
  name: string | null;
  username: string | null;
  email: string | null;
  active: number | boolean;
  version: number;
  position: number | string;
  created_at: string;
  updated_at: string;
  display_name?: string | null;
}

const userJson = (row: UserRow) => ({
  id: row.id,
  name: row.name,
  username: row.username,
  email: row.email,
  active: Boolean(row.active),
  forgotten: row.name === null,
  version: Number(row.version),
  position: String(row.position),
  createdAt: row.created_at,
  updatedAt: row.updated_at,
  ...(row.display_name !== undefined ? { displayName: row.display_name } : {}),
});

type Env = { Variables: { usersTable?: string } };

export function createHttpApp(service: Service, options: HttpOptions): Hono<Env> {
  const { store, queries } = service;
  const V = (table: string) => queries.view(table);
  const app = new Hono<Env>();
  /** The users table a request reads: the version its Logline-Min-Position wait was satisfied on. */
  const usersTableOf = (c: Context<Env>) => c.get('usersTable') ?? service.usersTable();
  const U = (c: Context<Env>) => queries.view(usersTableOf(c));
  /** The search terms of that same version. */
  const terms = (c: Context<Env>) => queries.view(usersTableOf(c).replace(/^users_/, 'user_terms_'));

  app.onError((error, c) => {
    let status = 500;
    let payload: Record<string, unknown> = { error: 'Internal', message: 'The service failed to handle this request; see its log.' };
    if (error instanceof LoglineError || error instanceof DomainError) {
      status = STATUS[error.code] ?? 500;
      payload = error.toJSON();
    }
    if (status >= 500 && status !== 503) console.error(error);
    return json(c, payload, status, status === 503 ? { 'retry-after': '1' } : {});
  });
  app.notFound((c) => json(c, { error: 'NotFound', message: `Route ${c.req.method} ${c.req.path} not found.` }, 404));

  // Logline-Min-Position on any read: wait (bounded) until every view has processed it.
  app.use(async (c, next) => {
    const header = c.req.header('logline-min-position');
    if (header !== undefined && c.req.method === 'GET') {
      const p = parse(position, header.trim(), 'Logline-Min-Position');
      const { usersTable } = await service.waitForViews(BigInt(p), options.minPositionTimeoutMs);
      c.set('usersTable', usersTable);
    }
    await next();
  });

  /**
   * Only a command that can claim a username or email needs the inline uniqueness hook. The others
   * (a name change, a deactivation, groups and memberships) skip its cost; what they change in
   * `user_keys` (a deactivation frees keys) the hook applies before the next claim's own events.
   */
  const claimsKeys = (command: Command): boolean =>
    command.type === 'CreateUser' ||
    (command.type === 'ChangeUser' && ['username', 'email'].some((key) => key in (command.data as object)));

  /** Runs a command with the request's correlation id and actor in every event's metadata. */
  async function run<S, C extends Command, E extends Event>(
    c: Context,
    stream: string,
    command: C,
    decider: Decider<S, C, E>,
    expectedVersion?: number,
  ) {
    const { correlationId, actor } = metadataOf(c);
    const via = claimsKeys(command) ? store : service.unkeyed;
    return handleCommand(via, stream, { ...command, metadata: { correlationId } }, decider, {
      metadata: { actor },
      ...(expectedVersion !== undefined ? { expectedVersion } : {}),
    });
  }

  const written = (result: { streamVersion: number; position: bigint }) => ({
    etag: `"${result.streamVersion}"`,
    'logline-position': result.position.toString(),
  });

  const stateJson = (userId: string, state: User, result: { streamVersion: number; position: bigint; events: RecordedEvent[] }) => ({
    id: userId,
    // Absent from the events once forgotten (deactivating a forgotten user still works).
    name: state.name ?? null,
    username: state.username ?? null,
    email: state.email ?? null,
    active: state.active,
    version: result.streamVersion,
    position: result.position.toString(),
  });

  // ---- users ----
  app.post('/users', async (c) => {
    const data = await body(c, createUserBody);
    const userId = randomUUID();
    const result = await run(c, userStream(userId), { type: 'CreateUser', data }, userDecider(userId));
    return json(c, stateJson(userId, result.state, result), 201, { ...written(result), location: `/users/${userId}` });
  });

  app.get('/users', async (c) => {
    const { email } = query(c, emailQuery);
    const rows = await queries.all<UserRow>(`SELECT * FROM ${U(c)} WHERE email_key = ? ORDER BY active DESC, id`, [normalizeKey(email)]);
    return json(c, { users: rows.map(userJson) });
  });

  app.get('/users/search', async (c) => {
    const { q, limit = 20, offset = 0 } = query(c, searchQuery);
    const key = normalizeKey(q);
    const end = `${key}\u{10FFFF}`;
    const wanted = offset + limit + 1;
    // Best rank first, and within a rank in index order (matched text, then id), so each step
    // reads only as many index entries as the page needs: the cost does not grow with the
    // number of users that match. A whole username equal to q ranks 0: it is the rank-1 term
    // equal to q (usernames are at most 64 characters, all of them in the term), which sorts
    // first in rank 1, so rank 1's reads find it without a query of its own.
    const ranked: Array<{ id: string; rank: number }> = [];
    const seen = new Set<string>();
    const take = (id: string, rank: number) => {
      if (seen.has(id) || ranked.length >= wanted) return;
      seen.add(id);
      ranked.push({ id, rank });
    };
    // Inside words only from SHORTEST_INSIDE_MATCH characters on: the view keeps no shorter suffixes.
    const ranks = [...key].length < SHORTEST_INSIDE_MATCH ? [1, 2, 3] : [1, 2, 3, 4];
    for (const rank of ranks) {
      let after: { term: string; user_id: string } | undefined;
      while (ranked.length < wanted) {
        // Twice what the page still needs (a user can match at several places, e.g. "an" in "banana"):
        // rows past that are read and dropped, a quarter of a search's time at LIMIT 200 for 21 wanted.
        const size = Math.min(200, 2 * (wanted - ranked.length));
        const batch = await queries.all<{ term: string; user_id: string }>(
          `SELECT term, user_id FROM ${terms(c)} WHERE rank = ? AND term >= ? AND term < ?
           ${after ? 'AND (term > ? OR (term = ? AND user_id > ?))' : ''} ORDER BY term, user_id LIMIT ?`,
          [rank, key, end, ...(after ? [after.term, after.term, after.user_id] : []), size],
        );
        for (const row of batch) take(row.user_id, rank === 1 && row.term === key ? 0 : rank);
        if (batch.length < size) break;
        after = batch[batch.length - 1];
      }
    }
    const pageIds = ranked.slice(offset, offset + limit);
    const userRows = pageIds.length
      ? await queries.all<UserRow>(
          `SELECT * FROM ${U(c)} WHERE id IN (${pageIds.map(() => '?').join(', ')})`,
          pageIds.map((r) => r.id),
        )
      : [];
    const byId = new Map(userRows.map((row) => [row.id, row]));
    const users = pageIds.flatMap(({ id, rank }) => {
      const row = byId.get(id);
      return row ? [{ ...userJson(row), rank }] : [];
    });
    return json(c, { users, next: ranked.length > offset + limit ? offset + limit : null });
  });

  app.get('/users/:id', async (c) => {
    const userId = parse(id, c.req.param('id'), 'user id');
    const [row] = await queries.all<UserRow>(`SELECT * FROM ${U(c)} WHERE id = ?`, [userId]);
    if (!row) throw userNotFound(userId);
    const etag = `"${row.version}"`;
    // Forgetting changes the row but not the user's version: a cached copy is never still valid.
    if (row.name === null) return json(c, userJson(row), 200, { etag, 'cache-control': 'no-store' });
    if (c.req.header('if-none-match')?.trim() === etag) return c.body(null, 304, { etag });
    return json(c, userJson(row), 200, { etag });
  });

  // Forgets the user's personal data (crypto-shredding, docs/lifecycle.md "Forget a person"): the
  // store destroys the user's key, so its events read without name, username and email, and every
  // view drops its copy when the SubjectForgotten notification reaches it. Id, groups, history stay.
  app.delete('/users/:id/personal-data', async (c) => {
    const userId = parse(id, c.req.param('id'), 'user id');
    if ((await store.streamVersion(userStream(userId))) === 0) throw userNotFound(userId);
    // Through the store with the inline uniqueness model: the email and username are free at once.
    const result = await store.forget(userId).catch((error: unknown) => {
      if (!(error instanceof UnknownSubjectError)) throw error;
      throw new DomainError(
        'PersonalDataNotDeclared',
        `User '${userId}' has no declared personal data (written before it was declared), so it cannot be forgotten by erasing a key.`,
        { id: userId },
      );
    });
    // The notification is at or below the head: a token that covers it, for Logline-Min-Position.
    const head = await store.headPosition();
    return json(c, { id: userId, forgottenAt: result.forgottenAt, alreadyForgotten: result.alreadyForgotten }, 200, {
      'logline-position': head.toString(),
    });
  });

  app.patch('/users/:id', async (c) => {
    const userId = parse(id, c.req.param('id'), 'user id');
    const expected = ifMatch(c);
    const data = await body(c, changeUserBody);
    const result = await run(c, userStream(userId), { type: 'ChangeUser', data }, userDecider(userId), expected).catch(
      notFoundAs(() => userNotFound(userId)),
    );
    return json(c, stateJson(userId, result.state, result), 200, written(result));
  });

  app.post('/users/:id/deactivate', async (c) => {
    const userId = parse(id, c.req.param('id'), 'user id');
    const expected = ifMatch(c);
    const result = await run(c, userStream(userId), { type: 'DeactivateUser', data: {} }, userDecider(userId), expected).catch(
      notFoundAs(() => userNotFound(userId)),
    );
    return json(c, stateJson(userId, result.state, result), 200, written(result));
  });

  app.get('/users/:id/groups', async (c) => {
    const userId = parse(id, c.req.param('id'), 'user id');
    const { after = '', limit = 100 } = query(c, pageQuery);
    const rows = await queries.all<{ group_id: string; name: string | null }>(
      `SELECT m.group_id, g.name FROM ${V('memberships')} m LEFT JOIN ${V('groups')} g ON g.id = m.group_id
       WHERE m.user_id = ? AND m.active = 1 AND m.group_id > ? ORDER BY m.group_id LIMIT ?`,
      [userId, after, limit + 1],
    );
    const page = rows.slice(0, limit);
    return json(c, {
      groups: page.map((r) => ({ groupId: r.group_id, name: r.name })),
      next: rows.length > limit ? (page[page.length - 1]?.group_id ?? null) : null,
    });
  });

  // The user's own stream is its audit trail: every change, old → new, when, by whom, why.
  app.get('/users/:id/audit', async (c) => {
    const userId = parse(id, c.req.param('id'), 'user id');
    const { from = 1, limit = 100 } = query(c, auditQuery);
    const stream = userStream(userId);
    const head = await store.streamVersion(stream);
    if (head === 0) throw userNotFound(userId);
    let state = from > 1 ? (await loadAggregate(store, stream, users, { asOf: { version: from - 1 } })).state : users.initialState();
    let streamVersion = from - 1;
    const entries = [];
    for await (const event of store.read(stream, { from, limit })) {
      const before = state;
      state = users.evolve(state, event as never);
      // A forgotten event has no personal values left: its entry names the personal fields it
      // set (metadata.personal stays plain), with null for old and new.
      const forgotten = event.metadata.forgotten === true;
      const declared = Array.isArray(event.metadata.personal) ? event.metadata.personal : [];
      const isPersonal = (field: string) => forgotten && field !== 'active';
      const fields = (['name', 'username', 'email', 'active'] as const).filter((f) =>
        isPersonal(f) ? declared.includes(f) : before[f] !== state[f],
      );
      entries.push({
        version: event.streamVersion,
        position: event.position.toString(),
        type: event.type,
        at: event.occurredAt,
        actor: event.metadata.actor ?? null,
        correlationId: event.metadata.correlationId ?? null,
        ...(forgotten ? { forgotten: true } : {}),
        changes: fields.map((field) => ({
          field,
          old: event.type === 'UserCreated' || isPersonal(field) ? null : before[field],
          new: isPersonal(field) ? null : state[field],
        })),
      });
      streamVersion = event.streamVersion;
    }
    return json(c, { entries, next: entries.length === limit ? streamVersion + 1 : null });
  });

  // ---- groups ----
  app.post('/groups', async (c) => {
    const data = await body(c, groupBody);
    const groupId = randomUUID();
    const result = await run(c, groupStream(groupId), { type: 'CreateGroup', data }, groups);
    return json(c, { id: groupId, name: result.state.name, version: result.streamVersion, position: result.position.toString() }, 201, {
      ...written(result),
      location: `/groups/${groupId}`,
    });
  });

  app.get('/groups/:id', async (c) => {
    const groupId = parse(id, c.req.param('id'), 'group id');
    const [row] = await queries.all<{
      id: string;
      name: string;
      version: number;
      position: string;
      created_at: string;
      updated_at: string;
    }>(`SELECT * FROM ${V('groups')} WHERE id = ?`, [groupId]);
    if (!row) throw groupNotFound(groupId);
    const etag = `"${row.version}"`;
    if (c.req.header('if-none-match')?.trim() === etag) return c.body(null, 304, { etag });
    return json(
      c,
      {
        id: row.id,
        name: row.name,
        version: Number(row.version),
        position: String(row.position),
        createdAt: row.created_at,
        updatedAt: row.updated_at,
      },
      200,
      { etag },
    );
  });

  app.patch('/groups/:id', async (c) => {
    const groupId = parse(id, c.req.param('id'), 'group id');
    const expected = ifMatch(c);
    const data = await body(c, groupBody);
    const result = await run(c, groupStream(groupId), { type: 'RenameGroup', data }, groups, expected).catch(
      notFoundAs(() => groupNotFound(groupId)),
    );
    return json(
      c,
      { id: groupId, name: result.state.name, version: result.streamVersion, position: result.position.toString() },
      200,
      written(result),
    );
  });

  /** Membership writes check, on the streams themselves, that the group exists and the user is active. */
  async function membershipCommand(c: Context, type: 'AddMember' | 'RemoveMember') {
    const groupId = parse(id, c.req.param('id'), 'group id');
    const userId = parse(id, c.req.param('userId'), 'user id');
    const [group, user] = await Promise.all([
      loadAggregate(store, groupStream(groupId), groups),
      loadAggregate(store, userStream(userId), users),
    ]);
    if (!group.state.exists) throw groupNotFound(groupId);
    if (!user.state.exists) throw userNotFound(userId);
    if (type === 'AddMember' && !user.state.active)
      throw new DomainError('UserDeactivated', `User '${userId}' is deactivated.`, { id: userId });
    const result = await run(c, membershipStream(groupId, userId), { type, data: { groupId, userId } }, memberships);
    const headers = { 'logline-position': result.position.toString() };
    return json(c, { groupId, userId, member: result.state.member }, type === 'AddMember' && result.events.length > 0 ? 201 : 200, headers);
  }
  app.put('/groups/:id/members/:userId', (c) => membershipCommand(c, 'AddMember'));
  app.delete('/groups/:id/members/:userId', (c) => membershipCommand(c, 'RemoveMember'));

  app.get('/groups/:id/members', async (c) => {
    const groupId = parse(id, c.req.param('id'), 'group id');
    const { after = '', limit = 100 } = query(c, pageQuery);
    const rows = await queries.all<{ user_id: string; username: string | null; name: string | null }>(
      `SELECT m.user_id, u.username, u.name FROM ${V('memberships')} m LEFT JOIN ${U(c)} u ON u.id = m.user_id
       WHERE m.group_id = ? AND m.active = 1 AND m.user_id > ? ORDER BY m.user_id LIMIT ?`,
      [groupId, after, limit + 1],
    );
    const page = rows.slice(0, limit);
    return json(c, {
      members: page.map((r) => ({ userId: r.user_id, username: r.username, name: r.name })),
      next: rows.length > limit ? (page[page.length - 1]?.user_id ?? null) : null,
    });
  });

  // ---- incremental synchronisation ----
  // Each changed user, group or membership once, in position order, as it is now. `next` is the
  // token to pass as `since` next time. Rows are read only up to the position every view has
  // processed, so a row that a slower view has yet to write is never skipped by a later token.
  app.get('/changes', async (c) => {
    const { since = '0', limit = 100 } = query(c, changesQuery);
    const from = BigInt(since);
    const upTo = service.viewsPosition();
    const params = [from, upTo, limit];
    const window = 'position > ? AND position <= ? ORDER BY position LIMIT ?';
    const [userRows, groupRows, memberRows] = await Promise.all([
      queries.all<UserRow>(`SELECT * FROM ${U(c)} WHERE ${window}`, params),
      queries.all<{ id: string; name: string; version: number; position: string }>(`SELECT * FROM ${V('groups')} WHERE ${window}`, params),
      queries.all<{ group_id: string; user_id: string; active: number; position: string }>(
        `SELECT * FROM ${V('memberships')} WHERE ${window}`,
        params,
      ),
    ]);
    const changes = [
      ...userRows.map((r) => ({ kind: 'user', position: BigInt(r.position), user: userJson(r) })),
      ...groupRows.map((r) => ({
        kind: 'group',
        position: BigInt(r.position),
        group: { id: r.id, name: r.name, version: Number(r.version) },
      })),
      ...memberRows.map((r) => ({
        kind: 'membership',
        position: BigInt(r.position),
        membership: { groupId: r.group_id, userId: r.user_id, member: Boolean(r.active) },
      })),
    ]
      .sort((a, b) => (a.position < b.position ? -1 : a.position > b.position ? 1 : 0))
      .slice(0, limit);
    const last = changes[changes.length - 1];
    const next = last ? last.position : from > upTo ? from : upTo;
    return json(c, {
      changes: changes.map((change) => ({ ...change, position: change.position.toString() })),
      next: next.toString(),
    });
  });

  // ---- operations ----
  // A view whose runner stopped (an event it kept failing on, parked) no longer moves: reads with
  // a token would time out, so a load balancer should send them elsewhere (503).
  app.get('/health', async (c) => {
    const views = service.views();
    const stopped = views.filter((view) => view.status === 'stopped' || view.status === 'failed');
    return json(
      c,
      {
        status: stopped.length ? 'failing' : 'ok',
        backend: store.backend,
        headPosition: (await store.headPosition()).toString(),
        viewsPosition: service.viewsPosition().toString(),
        usersView: service.usersVersion,
        views: views.map((view) => ({ ...view, position: view.position.toString() })),
      },
      stopped.length ? 503 : 200,
    );
  });
  app.get('/openapi.json', (c) => json(c, openApi()));
  // Zero-downtime upgrade: build users view v2 beside v1 while serving, then switch atomically.
  app.post('/admin/users-view/upgrade', async (c) => {
    await service.upgradeUsersView();
    return json(c, { usersView: service.usersVersion });
  });

  return app;
}

/**
 * A command on a stream that does not exist: the decider says UserNotFound; name the id. The
 * replacement is made only then (an error's stack trace costs ~1% of a name change's CPU).
 */
const notFoundAs = (replacement: () => DomainError) => (error: unknown) => {
  if (error instanceof DomainError && (error.code === 'UserNotFound' || error.code === 'GroupNotFound')) throw replacement();
  if (error instanceof WrongExpectedVersionError && error.actual === 0) throw replacement();
  throw error;
};

function openApi(): Record<string, unknown> {
  const registry = z.registry<{ id: string }>();
  for (const schema of [createUserBody, changeUserBody, groupBody]) registry.add(schema, { id: (schema.meta() as { id: string }).id });
  const { schemas } = z.toJSONSchema(registry, { uri: (id) => `#/components/schemas/${id}`, io: 'input', unrepresentable: 'any' });
  const ref = (id: string) => ({ required: true, content: { 'application/json': { schema: { $ref: `#/components/schemas/${id}` } } } });
  const header = (n: string, description: string) => ({ name: n, in: 'header', required: false, schema: { type: 'string' }, description });
  const pathId = (n: string) => ({ name: n, in: 'path', required: true, schema: { type: 'string', format: 'uuid' } });
  const q = (n: string, description: string) => ({ name: n, in: 'query', required: false, schema: { type: 'string' }, description });
  const minPosition = header('Logline-Min-Position', 'Wait until every view has processed this position (503 + Retry-After on timeout).');
  const ifMatchHeader = header('If-Match', 'The ETag ("n") the entity must still have; 412 otherwise.');
  const writeHeaders = {
    ETag: { schema: { type: 'string' }, description: 'The stream version, "n".' },
    'Logline-Position': { schema: { type: 'string' }, description: 'Global position of the write: pass as Logline-Min-Position.' },
  };
  const ok = (description: string, headers: Record<string, unknown> = {}) => ({ description, headers });
  const errors = { 400: ok('Invalid input'), 404: ok('Not found'), 503: ok('Views did not catch up in time; retry after Retry-After') };
  return {
    openapi: '3.1.0',
    info: { title: 'Identity service (seed 003) on Logline', version: '1' },
    components: { schemas },
    paths: {
      '/users': {
        post: {
          summary: 'Create a user',
          requestBody: ref('CreateUser'),
          responses: { 201: ok('Created', writeHeaders), 409: ok('Username or email taken'), ...errors },
        },
        get: {
          summary: 'Users with this email',
          parameters: [q('email', 'compared case-insensitively'), minPosition],
          responses: { 200: ok('Users'), ...errors },
        },
      },
      '/users/search': {
        get: {
          summary: 'Search users by name or username (prefix, and substring from 3 characters; ranked)',
          parameters: [q('q', 'text'), q('limit', '1..1000'), q('offset', 'from 0'), minPosition],
          responses: { 200: ok('A page of users, best first'), ...errors },
        },
      },
      '/users/{id}': {
        get: {
          summary: 'A user',
          parameters: [pathId('id'), minPosition, header('If-None-Match', '304 while the user is still at this ETag')],
          responses: { 200: ok('The user', { ETag: writeHeaders.ETag }), 304: ok('Not modified'), ...errors },
        },
        patch: {
          summary: 'Change name, username or email',
          parameters: [pathId('id'), ifMatchHeader],
          requestBody: ref('ChangeUser'),
          responses: { 200: ok('Changed', writeHeaders), 409: ok('Taken, or deactivated'), 412: ok('If-Match mismatch'), ...errors },
        },
      },
      '/users/{id}/deactivate': {
        post: {
          summary: 'Deactivate a user (frees its username and email)',
          parameters: [pathId('id'), ifMatchHeader],
          responses: { 200: ok('Deactivated', writeHeaders), 412: ok('If-Match mismatch'), ...errors },
        },
      },
      '/users/{id}/groups': {
        get: {
          summary: 'Groups of a user, paged',
          parameters: [pathId('id'), q('after', 'next from the previous page'), q('limit', '1..1000'), minPosition],
          responses: { 200: ok('A page'), ...errors },
        },
      },
      '/users/{id}/personal-data': {
        delete: {
          summary:
            'Forget the personal data of a user (name, username, email): every view and the audit trail drop it; id, groups and history stay. Idempotent',
          parameters: [pathId('id')],
          responses: {
            200: ok('Forgotten: {id, forgottenAt, alreadyForgotten}', { 'Logline-Position': writeHeaders['Logline-Position'] }),
            409: ok('The user has no declared personal data (written before it was declared)'),
            ...errors,
          },
        },
      },
      '/users/{id}/audit': {
        get: {
          summary: 'Every change of a user: what, old → new, when, by whom, correlation id',
          parameters: [pathId('id'), q('from', 'version'), q('limit', '1..1000')],
          responses: { 200: ok('Entries'), ...errors },
        },
      },
      '/groups': {
        post: { summary: 'Create a group', requestBody: ref('GroupName'), responses: { 201: ok('Created', writeHeaders), ...errors } },
      },
      '/groups/{id}': {
        get: {
          summary: 'A group',
          parameters: [pathId('id'), minPosition],
          responses: { 200: ok('The group'), 304: ok('Not modified'), ...errors },
        },
        patch: {
          summary: 'Rename a group',
          parameters: [pathId('id'), ifMatchHeader],
          requestBody: ref('GroupName'),
          responses: { 200: ok('Renamed', writeHeaders), 412: ok('If-Match mismatch'), ...errors },
        },
      },
      '/groups/{id}/members': {
        get: {
          summary: 'Members of a group, paged',
          parameters: [pathId('id'), q('after', 'next from the previous page'), q('limit', '1..1000'), minPosition],
          responses: { 200: ok('A page'), ...errors },
        },
      },
      '/groups/{id}/members/{userId}': {
        put: {
          summary: 'Add a member (idempotent)',
          parameters: [pathId('id'), pathId('userId')],
          responses: { 201: ok('Added'), 200: ok('Already a member'), 409: ok('User deactivated'), ...errors },
        },
        delete: {
          summary: 'Remove a member (idempotent)',
          parameters: [pathId('id'), pathId('userId')],
          responses: { 200: ok('Removed or not a member'), ...errors },
        },
      },
      '/changes': {
        get: {
          summary: 'Changed users, groups and memberships after a token',
          parameters: [q('since', 'the next token of the previous page'), q('limit', '1..1000'), minPosition],
          responses: { 200: ok('A page and the next token'), ...errors },
        },
      },
      '/admin/users-view/upgrade': {
        post: { summary: 'Build users view version 2 beside version 1, then switch', responses: { 200: ok('Switched') } },
      },
      '/health': {
        get: {
          summary: 'Health: positions and each view runner',
          responses: { 200: ok('Every view runs'), 503: ok('A view stopped (status failing; see views[].lastError)') },
        },
      },
    },
  };
}
