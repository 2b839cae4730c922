/**
 * Bulk loading of a generated dataset through the library, with progress and rate on stderr.
 *
 *   tsx apps/identity/src/load.ts --store <url> [--users n] [--groups n] [--memberships n] [--seed n]
 *
 * Appends the events the deciders would decide for new streams (UserCreated, GroupCreated,
 * MemberAdded, each with expectedVersion no_stream) many at a time, so the store coalesces them
 * into few commits. The inline uniqueness model runs inside those appends as for any write:
 * colliding users are refused. They are loaded after all the others, so which one of a clashing
 * pair wins does not depend on timing. Then waits until every view has caught up.
 */
import { parseArgs } from 'node:util';
import { DomainError, type EventStore, type NewEvent, openStore, WrongExpectedVersionError } from 'logline';
import { startProjection } from 'logline/projections';
import { type Dataset, dataset, FULL_SIZE } from './dataset.js';
import { declarePersonal, groupStream, membershipStream, userStream } from './domain.js';
import { type Service, startService } from './service.js';
import { queriesFor } from './sql.js';
import { keysProjection } from './views.js';

export interface LoadReport {
  users: number;
  refusedUsers: { email: number; username: number };
  groups: number;
  memberships: number;
  repeatedMemberships: number;
  /** Seconds spent appending, and waiting for the views afterwards. */
  appendSeconds: number;
  viewSeconds: number;
  events: number;
}

type Progress = (line: string) => void;

/** `stderr`, rewriting one line on a terminal. */
export const terminalProgress: Progress = (line) => {
  if (process.stderr.isTTY) process.stderr.write(`\r${line.padEnd(100)}`);
  else process.stderr.write(`${line}\n`);
};

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** The loader's two stores (see Service.unkeyed) and the inline uniqueness model on the first. */
interface Writers {
  store: EventStore;
  unkeyed: EventStore;
  close(): Promise<void>;
}

async function openWriters(url: string): Promise<Writers> {
  const store = await openStore(url);
  try {
    const keys = await startProjection(store, keysProjection(queriesFor(store).dialect), { mode: 'inline' });
    const unkeyed = await openStore(url);
    return {
      store,
      unkeyed,
      async close() {
        await keys.stop();
        await unkeyed.close();
        await store.close();
      },
    };
  } catch (error) {
    await store.close().catch(() => {});
    throw error;
  }
}

/** Runs `count` operations, `concurrency` at a time, reporting progress about once a second. */
async function inParallel(label: string, count: number, concurrency: number, progress: Progress, op: (i: number) => Promise<void>) {
  let done = 0;
  const started = performance.now();
  let shown = started;
  const show = () => {
    const seconds = (performance.now() - started) / 1000;
    progress(`${label}: ${fmt(done)}/${fmt(count)} (${fmt(done / Math.max(seconds, 0.001))}/s)`);
  };
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        await op(next++);
        done += 1;
        if (performance.now() - shown > 1000) {
          shown = performance.now();
          show();
        }
      }
    }),
  );
  show();
}

/**
 * Loads `data` into the store at `url`. While appending, only the inline uniqueness model runs
 * (the views would take the write lock between the appends' commits); then the service starts
 * and its views catch up from the log, as after any restore.
 */
export async function loadDataset(url: string, data: Dataset, progress: Progress = () => {}, concurrency = 256): Promise<LoadReport> {
  const writers = await openWriters(url);
  const report = await appendDataset(writers, data, progress, concurrency).finally(() => writers.close());
  const service = await startService({ store: url });
  try {
    report.viewSeconds = await catchUp(service, progress);
  } finally {
    await service.close();
  }
  progress(
    `loaded ${fmt(report.events)} events in ${report.appendSeconds.toFixed(1)} s; views caught up in ${report.viewSeconds.toFixed(1)} s`,
  );
  if (process.stderr.isTTY) process.stderr.write('\n');
  return report;
}

async function appendDataset({ store, unkeyed }: Writers, data: Dataset, progress: Progress, concurrency: number): Promise<LoadReport> {
  const meta = { actor: 'generator', correlationId: `generator-${data.seed}` };
  const report: LoadReport = {
    users: 0,
    refusedUsers: { email: 0, username: 0 },
    groups: 0,
    memberships: 0,
    repeatedMemberships: 0,
    appendSeconds: 0,
    viewSeconds: 0,
    events: 0,
  };
  const started = performance.now();
  const createUser = async (index: number) => {
    const u = data.user(index);
    const event: NewEvent = declarePersonal(u.id, {
      type: 'UserCreated',
      data: { name: u.name, username: u.username, email: u.email },
      metadata: meta,
    });
    try {
      await store.append(userStream(u.id), [event], { expectedVersion: 'no_stream' });
      report.users += 1;
      if (u.collides) throw new Error(`user ${index} should have been refused: its ${u.collides} clashes`);
    } catch (error) {
      const code = error instanceof DomainError ? error.code : undefined;
      if (u.collides === 'email' && code === 'EmailTaken') report.refusedUsers.email += 1;
      else if (u.collides === 'username' && code === 'UsernameTaken') report.refusedUsers.username += 1;
      else throw error;
    }
  };
  const colliding: number[] = [];
  await inParallel('users', data.size.users, concurrency, progress, async (i) => {
    if (data.user(i).collides) colliding.push(i);
    else await createUser(i);
  });
  await inParallel('colliding users (refused)', colliding.length, concurrency, progress, (k) => createUser(colliding[k] as number));
  await inParallel('groups', data.size.groups, concurrency, progress, async (i) => {
    const g = data.group(i);
    await unkeyed.append(groupStream(g.id), [{ type: 'GroupCreated', data: { name: g.name }, metadata: meta }], {
      expectedVersion: 'no_stream',
    });
    report.groups += 1;
  });
  await inParallel('memberships', data.size.memberships, concurrency, progress, async (i) => {
    const { groupIndex, userIndex } = data.membership(i);
    const groupId = data.group(groupIndex).id;
    const userId = data.user(userIndex).id;
    try {
      await unkeyed.append(membershipStream(groupId, userId), [{ type: 'MemberAdded', data: { groupId, userId }, metadata: meta }], {
        expectedVersion: 'no_stream',
      });
      report.memberships += 1;
    } catch (error) {
      // The pair was drawn before: already a member, nothing to record.
      if (!(error instanceof WrongExpectedVersionError)) throw error;
      report.repeatedMemberships += 1;
    }
  });
  report.appendSeconds = (performance.now() - started) / 1000;
  report.events = report.users + report.groups + report.memberships;
  return report;
}

/** Waits until every view has processed the head; returns the seconds it took. */
async function catchUp(service: Service, progress: Progress): Promise<number> {
  const head = await service.store.headPosition();
  const viewsStarted = performance.now();
  let caughtUp = false;
  const ticker = setInterval(() => {
    const at = service.viewsPosition();
    progress(
      `views: ${fmt(Number(at))}/${fmt(Number(head))} positions (${fmt(Number(at) / ((performance.now() - viewsStarted) / 1000))}/s)`,
    );
  }, 1000);
  try {
    while (!caughtUp) {
      try {
        await service.waitForViews(head, 60_000);
        caughtUp = true;
      } catch (error) {
        if ((error as { code?: string }).code !== 'PositionTimeout') throw error;
      }
    }
  } finally {
    clearInterval(ticker);
  }
  return (performance.now() - viewsStarted) / 1000;
}

// As a command: load into a store and print the report as JSON.
if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      store: { type: 'string', default: 'sqlite:./logline-data/identity.db' },
      users: { type: 'string', default: String(FULL_SIZE.users) },
      groups: { type: 'string', default: String(FULL_SIZE.groups) },
      memberships: { type: 'string', default: String(FULL_SIZE.memberships) },
      seed: { type: 'string', default: '3' },
    },
  });
  const size = { users: Number(values.users), groups: Number(values.groups), memberships: Number(values.memberships) };
  for (const [key, value] of Object.entries(size)) {
    if (!Number.isSafeInteger(value) || value < 1) {
      console.error(`--${key} must be a positive integer, got '${values[key as keyof typeof values]}'`);
      process.exit(2);
    }
  }
  console.log(JSON.stringify(await loadDataset(values.store, dataset(Number(values.seed), size), terminalProgress)));
}
