/**
 * The read side: SQL projections (logline/projections) on SQLite or PostgreSQL.
 *
 * - `user_keys` (inline, runs inside every append's transaction): the normalized username and
 *   email of each *active* user under UNIQUE constraints. An append that would give two active
 *   users one key fails in its own transaction, so nothing is stored and the caller gets 409. On
 *   PostgreSQL the inline hook locks its checkpoint row first, so appends from several processes
 *   take turns there and the check sees every committed key. This is how uniqueness is enforced
 *   on write (the alternative, a reservation stream per key, leaves orphaned reservations behind
 *   a crash between the two appends and needs a clean-up protocol).
 * - `users` (async): one row per user; version 2 adds a derived `display_name` (the seed's
 *   `users_new`, built beside version 1 and switched atomically; see upgrade in service.ts).
 * - `directory` (async): groups and memberships.
 *
 * Every update carries the event's position and only applies when it is newer than the row's
 * (`WHERE position < ?`): processing is idempotent, and of concurrent unconditional changes the
 * last one by position wins in every view (conflict resolution on query, slide 67). Times are
 * the events' `occurredAt` (the writer's time, kept by export and import), so views rebuilt from
 * a restored log give the same answers as the original (test/identity/recovery.test.ts).
 */
import { DomainError, type RecordedEvent, SUBJECT_FORGOTTEN } from 'logline';
import { normalizeKey } from './domain.js';
import { bare, type Dialect, type Param, type Statement, type StatementBuilder, sqlProjection, type TableOf } from './sql.js';

type Data = Record<string, string>;
const dataOf = (event: RecordedEvent): Data => event.data as Data;
/** The entity id from the stream id: `user-<id>`, `group-<id>`. */
const idOf = (event: RecordedEvent): string => event.streamId.slice(event.streamId.indexOf('-') + 1);
/**
 * A user event read after its user was forgotten (a view built or rebuilt after the forget): its
 * personal fields are gone from `data` (docs/lifecycle.md, "Forget a person"), so there is
 * nothing to copy. Views keep NULL where the value was.
 */
const isForgotten = (event: RecordedEvent): boolean => event.metadata.forgotten === true;
/** The subject of a `SubjectForgotten` notification: a user id (domain.ts, declarePersonal). */
const forgottenUser = (event: RecordedEvent): string => (event.data as { subject: string }).subject;
/** A personal field of a user event, or null once the user was forgotten. */
const personal = (event: RecordedEvent, field: 'name' | 'username' | 'email'): string | null =>
  isForgotten(event) ? null : (dataOf(event)[field] ?? '');
const keyOf = (value: string | null): string | null => (value === null ? null : normalizeKey(value));
/** A forgotten user holds no keys: a view built after the forget skips its events. */
const unlessForgotten =
  (build: StatementBuilder): StatementBuilder =>
  (event, table) =>
    isForgotten(event) ? [] : build(event, table);

/** A UNIQUE violation on SQLite or PostgreSQL, and which key it was about. */
function uniqueViolation(error: unknown): 'username' | 'email' | undefined {
  const e = error as { code?: string; message?: string; constraint_name?: string };
  if (e?.code !== 'SQLITE_CONSTRAINT_UNIQUE' && e?.code !== '23505') return undefined;
  const where = `${e.constraint_name ?? ''} ${e.message ?? ''}`;
  return where.includes('email') ? 'email' : where.includes('username') ? 'username' : undefined;
}

export function keysProjection(dialect: Dialect) {
  return sqlProjection(dialect, {
    name: 'user_keys',
    version: 1,
    tables: ['user_keys'],
    setup: (t) => [
      {
        sql: `CREATE TABLE ${t('user_keys')} (user_id TEXT PRIMARY KEY, username_key TEXT NOT NULL, email_key TEXT NOT NULL)`,
      },
      { sql: `CREATE UNIQUE INDEX ${bare(t('user_keys'))}_username ON ${t('user_keys')} (username_key)` },
      { sql: `CREATE UNIQUE INDEX ${bare(t('user_keys'))}_email ON ${t('user_keys')} (email_key)` },
    ],
    handlers: {
      UserCreated: unlessForgotten((e, t) => [
        {
          sql: `INSERT INTO ${t('user_keys')} (user_id, username_key, email_key) VALUES (?, ?, ?)`,
          params: [idOf(e), normalizeKey(dataOf(e).username as string), normalizeKey(dataOf(e).email as string)],
        },
      ]),
      UserUsernameSet: unlessForgotten((e, t) => [
        {
          sql: `UPDATE ${t('user_keys')} SET username_key = ? WHERE user_id = ?`,
          params: [normalizeKey(dataOf(e).username as string), idOf(e)],
        },
      ]),
      UserEmailSet: unlessForgotten((e, t) => [
        { sql: `UPDATE ${t('user_keys')} SET email_key = ? WHERE user_id = ?`, params: [normalizeKey(dataOf(e).email as string), idOf(e)] },
      ]),
      // A deactivated user frees its username and email.
      UserDeactivated: (e, t) => [{ sql: `DELETE FROM ${t('user_keys')} WHERE user_id = ?`, params: [idOf(e)] }],
      // So does a forgotten one: its email and username may be used again by anyone.
      [SUBJECT_FORGOTTEN]: (e, t) => [{ sql: `DELETE FROM ${t('user_keys')} WHERE user_id = ?`, params: [forgottenUser(e)] }],
    },
    onError: (error, event) => {
      const key = uniqueViolation(error);
      if (!key) return error;
      const value = dataOf(event)[key] ?? '';
      return new DomainError(
        key === 'email' ? 'EmailTaken' : 'UsernameTaken',
        `The ${key} '${value}' is already used by another active user (compared case-insensitively); choose another.`,
        { field: key, value },
      );
    },
  });
}

/** `WHERE position < ?` keeps updates idempotent and ordered by position. */
const setUser = (t: TableOf, e: RecordedEvent, assignments: string, params: Param[]): Statement => ({
  sql: `UPDATE ${t('users')} SET ${assignments}, version = ?, position = ?, updated_at = ? WHERE id = ? AND position < ?`,
  params: [...params, e.streamVersion, e.position, e.occurredAt, idOf(e), e.position],
});

/**
 * Characters a search needs before it matches inside words (rank 4); shorter queries match where
 * a word or username starts. A one- or two-character substring matches most users anyway, and
 * leaving out the suffixes it would need (`on`, `n` of `johnson`) saves a fifth of the terms
 * (30.4 → 24.4 per generated user).
 */
export const SHORTEST_INSIDE_MATCH = 3;

/**
 * Search terms of a user: every suffix of its username and of each word of its name (and the
 * whole name), so a substring search is a prefix range on an index; inside a word only suffixes
 * of SHORTEST_INSIDE_MATCH characters or more. `rank` is how good a match starting there is:
 * username prefix 1, name prefix 2, a later word's prefix 3, inside a word 4 (an exact username,
 * 0, is found at query time). Dropped when the user is deactivated.
 */
export function searchTerms(source: 'name' | 'username', value: string): Array<{ term: string; rank: number }> {
  const best = new Map<string, number>();
  const add = (term: string, rank: number) => {
    if (term && (best.get(term) ?? 9) > rank) best.set(term, rank);
  };
  const key = normalizeKey(value);
  const words = source === 'username' ? [key] : key.split(/\s+/).filter(Boolean);
  if (source === 'name' && words.length > 1) add(words.join(' '), 2);
  words.forEach((word, k) => {
    const chars = [...word].slice(0, 64);
    add(chars.join(''), source === 'username' ? 1 : k === 0 ? 2 : 3);
    for (let i = 1; i <= chars.length - SHORTEST_INSIDE_MATCH; i++) add(chars.slice(i).join(''), 4);
  });
  return [...best].map(([term, rank]) => ({ term, rank }));
}

/** Replaces a user's terms from one source (name or username) with those of `value` (none when forgotten). */
const setTerms = (t: TableOf, userId: string, source: 'name' | 'username', value: string | null): Statement => ({
  replace: {
    table: t('user_terms'),
    match: { user_id: userId, source },
    columns: ['term', 'user_id', 'source', 'rank'],
    rows: (value === null ? [] : searchTerms(source, value)).map(({ term, rank }) => [term, userId, source, rank]),
  },
});
/** Drops all of a user's terms: search finds active users only. */
const dropTerms = (t: TableOf, userId: string): Statement[] => [setTerms(t, userId, 'name', null), setTerms(t, userId, 'username', null)];

export function usersProjection(dialect: Dialect, version: 1 | 2) {
  const derived = version >= 2;
  // Terms are compared byte for byte (a prefix range): PostgreSQL's "C" collation, SQLite's default.
  const bytewise = dialect === 'postgres' ? ' COLLATE "C"' : '';
  return sqlProjection(dialect, {
    name: 'users',
    version,
    tables: ['users', 'user_terms'],
    setup: (t) => {
      const u = t('users');
      const terms = t('user_terms');
      return [
        {
          // No primary key: setTerms deletes a user's terms of a source before writing them, so
          // rows never repeat, and a third index on every term row made view builds 1.2–1.4×
          // slower on PostgreSQL (docs/benchmarks.md, identity).
          sql: `CREATE TABLE ${terms} (term TEXT${bytewise} NOT NULL, user_id TEXT NOT NULL, source TEXT NOT NULL, rank INTEGER NOT NULL)`,
        },
        // The handlers replace a user's terms by user_id: this one is needed while building.
        { sql: `CREATE INDEX ${bare(terms)}_user ON ${terms} (user_id)` },
        {
          // The personal columns (name, username, email, their keys, display_name) are NULL once the
          // user is forgotten (SubjectForgotten below), and only then.
          sql: `CREATE TABLE ${u} (id TEXT PRIMARY KEY, name TEXT, username TEXT, email TEXT,
                name_key TEXT, username_key TEXT, email_key TEXT, active INTEGER NOT NULL,
                version INTEGER NOT NULL, position BIGINT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL
                ${derived ? ', display_name TEXT' : ''})`,
        },
      ];
    },
    // Query-only indexes, built after a long catch-up: inserting ~30 search terms per user into
    // the rank index one row at a time made the view build 3× slower at 50k users
    // (docs/benchmarks.md, identity).
    indexes: (t) => {
      const u = t('users');
      const terms = t('user_terms');
      return [
        // Search reads rank by rank in (term, user) order: see /users/search.
        { sql: `CREATE INDEX IF NOT EXISTS ${bare(terms)}_rank ON ${terms} (rank, term, user_id)` },
        { sql: `CREATE INDEX IF NOT EXISTS ${bare(u)}_email ON ${u} (email_key)` },
        { sql: `CREATE INDEX IF NOT EXISTS ${bare(u)}_username ON ${u} (username_key)` },
        // No query reads by name_key: its index, which earlier versions built, only cost a write
        // per user created or renamed.
        { sql: `DROP INDEX IF EXISTS ${u}_name` },
        { sql: `CREATE INDEX IF NOT EXISTS ${bare(u)}_position ON ${u} (position)` },
      ];
    },
    handlers: {
      UserCreated: (e, t) => {
        const [name, username, email] = [personal(e, 'name'), personal(e, 'username'), personal(e, 'email')];
        return [
          setTerms(t, idOf(e), 'name', name),
          setTerms(t, idOf(e), 'username', username),
          {
            sql: `INSERT INTO ${t('users')} (id, name, username, email, name_key, username_key, email_key, active, version, position,
                  created_at, updated_at${derived ? ', display_name' : ''})
                  VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?${derived ? ', ?' : ''}) ON CONFLICT (id) DO NOTHING`,
            params: [
              idOf(e),
              name,
              username,
              email,
              keyOf(name),
              keyOf(username),
              keyOf(email),
              e.streamVersion,
              e.position,
              e.occurredAt,
              e.occurredAt,
              ...(derived ? [name === null || username === null ? null : `${name} (@${username})`] : []),
            ],
          },
        ];
      },
      // Version 2 recomputes the derived column in SQL, from the row's other columns as just set.
      UserNameSet: (e, t) => {
        const name = personal(e, 'name');
        const display = derived ? `, display_name = CAST(? AS TEXT) || ' (@' || username || ')'` : '';
        return [
          setUser(t, e, `name = ?, name_key = ?${display}`, [name, keyOf(name), ...(derived ? [name] : [])]),
          setTerms(t, idOf(e), 'name', name),
        ];
      },
      UserUsernameSet: (e, t) => {
        const username = personal(e, 'username');
        const display = derived ? `, display_name = name || ' (@' || CAST(? AS TEXT) || ')'` : '';
        return [
          setUser(t, e, `username = ?, username_key = ?${display}`, [username, keyOf(username), ...(derived ? [username] : [])]),
          setTerms(t, idOf(e), 'username', username),
        ];
      },
      UserEmailSet: (e, t) => {
        const email = personal(e, 'email');
        return [setUser(t, e, 'email = ?, email_key = ?', [email, keyOf(email)])];
      },
      // Search finds active users only.
      UserDeactivated: (e, t) => [setUser(t, e, 'active = 0', []), ...dropTerms(t, idOf(e))],
      // Forgotten: the row keeps the id, state and version (the user's stream did not change) and
      // drops every personal column and search term. Its position becomes the notification's, so
      // the /changes feed tells synchronising clients to drop their copies too.
      [SUBJECT_FORGOTTEN]: (e, t) => [
        {
          sql: `UPDATE ${t('users')} SET name = NULL, username = NULL, email = NULL, name_key = NULL, username_key = NULL,
                email_key = NULL${derived ? ', display_name = NULL' : ''}, position = ?, updated_at = ? WHERE id = ? AND position < ?`,
          params: [e.position, e.occurredAt, forgottenUser(e), e.position],
        },
        ...dropTerms(t, forgottenUser(e)),
        ...forgetInOlderVersions(t, forgottenUser(e), version),
      ],
    },
  });
}

/**
 * The service keeps a superseded version's tables after a switch, for the reads that waited on it
 * (service.ts), and that version's runner stops there: without this, a user forgotten after the
 * switch would keep name, username and email in them until someone dropped them. So each version
 * erases a forgotten user's personal data from every older version's tables that still exist.
 * Unconditionally: a forgotten user never gets personal data again.
 */
function forgetInOlderVersions(t: TableOf, userId: string, version: number): Statement[] {
  const older = (table: string, k: number) => t(table).replace(/_v\d+$/, `_v${k}`);
  return Array.from({ length: version - 1 }, (_, i) => i + 1).flatMap((k) => [
    {
      sql: `UPDATE ${older('users', k)} SET name = NULL, username = NULL, email = NULL, name_key = NULL, username_key = NULL,
            email_key = NULL${k >= 2 ? ', display_name = NULL' : ''} WHERE id = ?`,
      params: [userId],
      ifTableExists: older('users', k),
    },
    { sql: `DELETE FROM ${older('user_terms', k)} WHERE user_id = ?`, params: [userId], ifTableExists: older('user_terms', k) },
  ]);
}

export function directoryProjection(dialect: Dialect) {
  return sqlProjection(dialect, {
    name: 'directory',
    // SQLite version 2 stores memberships in primary-key order (below); PostgreSQL's tables are as in 1.
    version: dialect === 'sqlite' ? 2 : 1,
    tables: ['groups', 'memberships'],
    setup: (t) => {
      const g = t('groups');
      const m = t('memberships');
      return [
        {
          sql: `CREATE TABLE ${g} (id TEXT PRIMARY KEY, name TEXT NOT NULL, version INTEGER NOT NULL, position BIGINT NOT NULL,
                created_at TEXT NOT NULL, updated_at TEXT NOT NULL)`,
        },
        {
          // SQLite: WITHOUT ROWID keeps a group's members side by side in the primary key's b-tree,
          // so a page of members is a few adjacent pages instead of a row each at a random place
          // (~1 ms a page at 1M users; docs/benchmarks.md, identity at 1M users).
          sql: `CREATE TABLE ${m} (group_id TEXT NOT NULL, user_id TEXT NOT NULL, active INTEGER NOT NULL, position BIGINT NOT NULL,
                updated_at TEXT NOT NULL, PRIMARY KEY (group_id, user_id))${dialect === 'sqlite' ? ' WITHOUT ROWID' : ''}`,
        },
      ];
    },
    indexes: (t) => {
      const g = t('groups');
      const m = t('memberships');
      return [
        { sql: `CREATE INDEX IF NOT EXISTS ${bare(g)}_position ON ${g} (position)` },
        { sql: `CREATE INDEX IF NOT EXISTS ${bare(m)}_user ON ${m} (user_id, group_id)` },
        { sql: `CREATE INDEX IF NOT EXISTS ${bare(m)}_position ON ${m} (position)` },
      ];
    },
    handlers: {
      GroupCreated: (e, t) => [
        {
          sql: `INSERT INTO ${t('groups')} (id, name, version, position, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO NOTHING`,
          params: [idOf(e), dataOf(e).name ?? '', e.streamVersion, e.position, e.occurredAt, e.occurredAt],
        },
      ],
      GroupNameSet: (e, t) => [
        {
          sql: `UPDATE ${t('groups')} SET name = ?, version = ?, position = ?, updated_at = ? WHERE id = ? AND position < ?`,
          params: [dataOf(e).name ?? '', e.streamVersion, e.position, e.occurredAt, idOf(e), e.position],
        },
      ],
      MemberAdded: (e, t) => [membership(t, e, 1)],
      MemberRemoved: (e, t) => [membership(t, e, 0)],
    },
  });
}

const membership = (t: TableOf, e: RecordedEvent, active: 0 | 1): Statement => {
  const m = t('memberships');
  const { groupId = '', userId = '' } = dataOf(e);
  // Removed memberships stay as rows with active = 0: the /changes feed reports the removal.
  return {
    sql: `INSERT INTO ${m} AS cur (group_id, user_id, active, position, updated_at) VALUES (?, ?, ?, ?, ?)
          ON CONFLICT (group_id, user_id) DO UPDATE SET active = excluded.active, position = excluded.position,
          updated_at = excluded.updated_at WHERE cur.position < excluded.position`,
    params: [groupId, userId, active, e.position, e.occurredAt],
  };
};
