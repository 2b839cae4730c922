/**
 * A coalesced batch whose transaction ends part-way (an inline hook rolls back or commits it;
 * SQLite rolls it back by itself on a full disk) never tells a caller "nothing stored" for an
 * append that did commit, nor "stored" for one that did not: clients retry failed appends without
 * ids and would duplicate them.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type NewEvent, StoreUnavailableError } from '../../../src/index.js';
import { openSqliteStore, type SqliteEventStore } from '../../../src/sqlite.js';
import { collect } from '../../helpers/collect.js';

const dir = mkdtempSync(join(tmpdir(), 'logline-batch-failure-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const open = () => openSqliteStore({ path: join(dir, `${randomUUID()}.db`) });

interface Attempt {
  stream: string;
  events: NewEvent[];
}

const attempt = (stream: string, type: string, data: NewEvent['data'] = {}): Attempt => ({
  stream,
  events: [{ id: randomUUID(), type, data }],
});

/** Issues every append in one tick (so they share one coalesced transaction) and waits for all answers. */
const appendTogether = (store: SqliteEventStore, attempts: Attempt[]) =>
  Promise.allSettled(attempts.map(({ stream, events }) => store.append(stream, events)));

/** Each answer tells the truth: resolved exactly when the append's events are stored. */
async function expectAnswersMatchStore(store: SqliteEventStore, attempts: Attempt[], answers: PromiseSettledResult<unknown>[]) {
  for (const [i, { stream, events }] of attempts.entries()) {
    const stored = (await collect(store.read(stream))).map((e) => e.id);
    const ids = events.map((e) => e.id);
    expect({ i, status: answers[i]?.status, stored }).toEqual({
      i,
      status: answers[i]?.status,
      stored: answers[i]?.status === 'fulfilled' ? ids : [],
    });
  }
}

describe('SQLite coalesced batches whose transaction ends part-way', () => {
  it('an inline hook that rolls back and throws on the first of three appends fails that append alone', async () => {
    const store = await open();
    store.addInlineHook((db, events) => {
      if (events[0]?.type !== 'Poison') return;
      db.exec('ROLLBACK');
      throw new Error('hook gave up');
    });
    const attempts = [attempt('a', 'Poison'), attempt('b', 'Fine'), attempt('c', 'Fine')];
    const answers = await appendTogether(store, attempts);
    await expectAnswersMatchStore(store, attempts, answers);
    expect(answers.map((a) => a.status)).toEqual(['rejected', 'fulfilled', 'fulfilled']);
    expect((answers[0] as PromiseRejectedResult).reason.message).toBe('hook gave up');
    expect((await store.stats()).events).toBe(2);
    await store.close();
  });

  it('an inline hook that rolls back on the second append does not acknowledge the first, rolled-back one', async () => {
    const store = await open();
    store.addInlineHook((db, events) => {
      if (events[0]?.type !== 'Poison') return;
      db.exec('ROLLBACK');
      throw new Error('hook gave up');
    });
    const attempts = [attempt('a', 'Fine'), attempt('b', 'Poison'), attempt('c', 'Fine'), attempt('d', 'Fine')];
    const answers = await appendTogether(store, attempts);
    await expectAnswersMatchStore(store, attempts, answers);
    expect(answers.map((a) => a.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    // Call order survives the re-run: positions follow the order of the calls.
    const order = (await collect(store.readAll())).map((e) => e.streamId);
    expect(order).toEqual(['a', 'c', 'd']);
    await store.close();
  });

  it('an inline hook that commits and then throws: the committed append is acknowledged, not failed', async () => {
    const store = await open();
    store.addInlineHook((db, events) => {
      if (events[0]?.type !== 'CommitsEarly') return;
      db.exec('COMMIT');
      throw new Error('hook committed, then threw');
    });
    const attempts = [attempt('a', 'Fine'), attempt('b', 'CommitsEarly'), attempt('c', 'Fine')];
    const answers = await appendTogether(store, attempts);
    await expectAnswersMatchStore(store, attempts, answers);
    expect(answers.map((a) => a.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
    await store.close();
  });

  it('a lone append whose hook ends the transaction without throwing is answered by what was stored', async () => {
    const store = await open();
    store.addInlineHook((db, events) => {
      if (events[0]?.type === 'RollsBack') db.exec('ROLLBACK');
      if (events[0]?.type === 'Commits') db.exec('COMMIT');
    });
    const attempts = [attempt('a', 'RollsBack')];
    const answers = await appendTogether(store, attempts);
    await expectAnswersMatchStore(store, attempts, answers);
    const more = [attempt('b', 'Commits')];
    const answered = await appendTogether(store, more);
    await expectAnswersMatchStore(store, more, answered);
    expect([...answers, ...answered].map((a) => a.status)).toEqual(['rejected', 'fulfilled']);
    await store.close();
  });

  it('a full disk (max_page_count) rolls back the batch: the append that overflowed fails, the others are stored', async () => {
    const store = await open();
    await store.append('warm-up', [{ type: 'Small', data: {} }]);
    const pages = store.database.pragma('page_count', { simple: true }) as number;
    // Room for a few small events, not for one of 400 KB: the big insert hits SQLITE_FULL, and
    // SQLite rolls back the whole transaction by itself. The limit is per connection: the writer's.
    await store.writerPragma(`max_page_count = ${pages + 16}`);
    const attempts = [attempt('big', 'Huge', { blob: 'x'.repeat(400_000) }), attempt('b', 'Small'), attempt('c', 'Small')];
    const answers = await appendTogether(store, attempts);
    await expectAnswersMatchStore(store, attempts, answers);
    expect(answers.map((a) => a.status)).toEqual(['rejected', 'fulfilled', 'fulfilled']);
    const error = (answers[0] as PromiseRejectedResult).reason;
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(error.message).toMatch(/SQLITE_FULL.*nothing was stored/);
    await store.close();
  });

  it('a full disk in the middle of a batch leaves every answer true', async () => {
    const store = await open();
    await store.append('warm-up', [{ type: 'Small', data: {} }]);
    const pages = store.database.pragma('page_count', { simple: true }) as number;
    await store.writerPragma(`max_page_count = ${pages + 16}`);
    const attempts = [
      attempt('a', 'Small'),
      attempt('b', 'Small'),
      attempt('big', 'Huge', { blob: 'x'.repeat(400_000) }),
      attempt('c', 'Small'),
    ];
    const answers = await appendTogether(store, attempts);
    await expectAnswersMatchStore(store, attempts, answers);
    expect(answers.map((a) => a.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    await store.close();
  });
});
