/** The `logline` CLI as real processes, against a store URL and against a running server. */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { progressLine, summaryLine } from '../../src/cli/progress.js';
import { openStore } from '../../src/core/open-store.js';
import type { NewEvent } from '../../src/index.js';
import { collect } from '../helpers/collect.js';
import { freshSchemaUrl, requirePostgres } from '../helpers/postgres.js';
import { cliArgs, ROOT, type ServerProcess, startServerProcess, tempDir } from '../server/process.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], input?: string): Promise<Run> {
  const child = spawn(process.execPath, cliArgs(...args), {
    cwd: ROOT,
    env: { ...process.env, LOGLINE_SERVER: '', LOGLINE_STORE: '', LOGLINE_API_KEY: '' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  child.stdin.end(input ?? '');
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

const lines = (text: string) =>
  text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);

const dir = tempDir('logline-cli-');
afterAll(() => dir.remove());

describe.each(['store', 'server'] as const)('logline CLI against a %s', (mode) => {
  let server: ServerProcess | undefined;
  let target: string[];
  const source = `sqlite:${join(dir.path, `${mode}-source.db`)}`;
  const copy = `sqlite:${join(dir.path, `${mode}-copy.db`)}`;

  beforeAll(async () => {
    if (mode === 'server') server = await startServerProcess(['--store', source]);
    target = mode === 'server' ? ['--server', server?.url as string] : ['--store', source];
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('append (inline JSON and NDJSON on stdin), read, stats; a version mismatch fails clearly', async () => {
    const inline = await run([
      'append',
      'cart-1',
      '{"type":"CartOpened","data":{"user":"u1"}}',
      ...target,
      '--expected-version',
      'no_stream',
    ]);
    expect(inline).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(inline.stdout)).toMatchObject({ streamVersion: 1, events: 1 });
    const ndjson = [
      '{"type":"ItemAdded","data":{"sku":"a"}}',
      '',
      '{"type":"ItemAdded","data":{"sku":"b"}}',
      '{"type":"CartClosed","data":{}}',
    ].join('\n');
    // From stdin against the store, from a file (-f) against the server: both paths are used.
    const file = join(dir.path, `${mode}-append.ndjson`);
    writeFileSync(file, ndjson);
    const piped = await run(mode === 'store' ? ['append', 'cart-1', ...target] : ['append', 'cart-1', '-f', file, ...target], ndjson);
    expect(piped.code).toBe(0);
    expect(JSON.parse(piped.stdout)).toMatchObject({ streamVersion: 4, events: 3 });
    // A progress bar never reaches a pipe: only the summary line does.
    expect(piped.stderr).toMatch(/^logline: appended 3 events to cart-1 in \d+\.\d s, [\d,]+ events\/s\n$/);

    const [conflict, bad, read, backward, missing] = await Promise.all([
      run(['append', 'cart-1', '[{"type":"Late","data":1}]', ...target, '--expected-version', '2']),
      run(['append', 'cart-1', '{"type":', ...target]),
      run(['read', 'cart-1', ...target]),
      run(['read', 'cart-1', '--backward', '--limit', '2', ...target]),
      run(['read', 'no-such-stream', ...target]),
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/NotFound: Stream 'no-such-stream' not found/);
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toMatch(/WrongExpectedVersion|expected version 2, but its current version is 4/);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/not JSON/);
    expect(read.code).toBe(0);
    const events = lines(read.stdout);
    expect(events.map((e) => [e.streamVersion, e.type])).toEqual([
      [1, 'CartOpened'],
      [2, 'ItemAdded'],
      [3, 'ItemAdded'],
      [4, 'CartClosed'],
    ]);
    expect(lines(backward.stdout).map((e) => e.streamVersion)).toEqual([4, 3]);

    await run(['append', 'user-1', '{"type":"UserRegistered","data":{}}', ...target]);
    const stats = await run(['stats', ...target]);
    expect(JSON.parse(stats.stdout)).toMatchObject({ events: 5, streams: 2, headPosition: '5' });
  });

  it('export (point in time) and import: importing twice adds nothing, ids and versions survive', async () => {
    const file = join(dir.path, `${mode}-export.ndjson`);
    const exported = await run(['export', ...target]);
    expect(exported.code).toBe(0);
    expect(exported.stderr).toMatch(/^logline: exported 5 events up to position 5 in \d+\.\d s, [\d,]+ events\/s\n$/);
    writeFileSync(file, exported.stdout);
    const original = lines(exported.stdout);
    expect(original.map((e) => e.position)).toEqual(['1', '2', '3', '4', '5']);

    const [until, beforeAnything] = await Promise.all([
      run(['export', '--until', '3', ...target]),
      run(['export', '--until', '2000-01-01T00:00:00Z', ...target]),
    ]);
    expect(lines(until.stdout).map((e) => e.position)).toEqual(['1', '2', '3']);
    expect(beforeAnything.stdout).toBe('');

    const intoCopy = mode === 'server' ? ['--server', server?.url as string] : ['--store', copy];
    if (mode === 'server') {
      // Through the server, import into the same store: every event is already there.
      const again = await run(['import', file, ...intoCopy]);
      expect(again.code).toBe(0);
      expect(JSON.parse(again.stdout)).toEqual({ read: 5, added: 0 });
      return;
    }
    const first = await run(['import', file, ...intoCopy, '--batch', '2']);
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toEqual({ read: 5, added: 5 });
    expect(first.stderr).toMatch(/^logline: imported 5 events \(5 added\) in \d+\.\d s, [\d,]+ events\/s\n$/);
    const second = await run(['import', file, ...intoCopy, '--batch', '2']);
    expect(JSON.parse(second.stdout)).toEqual({ read: 5, added: 0 });
    const copied = lines((await run(['export', ...intoCopy])).stdout);
    const keep = (e: Record<string, unknown>) => [e.id, e.streamId, e.streamVersion, e.type, e.data, e.occurredAt];
    expect(copied.map(keep)).toEqual(original.map(keep));

    const broken = join(dir.path, 'broken.ndjson');
    writeFileSync(broken, `${readFileSync(file, 'utf8')}not json\n`);
    const failed = await run(['import', broken, ...intoCopy]);
    expect(failed.code).toBe(2);
    expect(failed.stderr).toMatch(/line 6/);
  });

  it('metadata, delete and scavenge: retention hides at once, deletes answer like the HTTP API', async () => {
    // Few processes: each run starts Node (about 2 s on a loaded machine); the contract suite covers the rules.
    const events = '[{"type":"Tick","data":{"i":1}},{"type":"Tick","data":{"i":2}},{"type":"Tick","data":{"i":3}}]';
    expect((await run(['append', 'ret-1', events, ...target])).code).toBe(0);
    const set = await run(['metadata', 'ret-1', '--max-count', '1', ...target]);
    expect(JSON.parse(set.stdout)).toEqual({ streamId: 'ret-1', version: 3, maxCount: 1 });
    expect(lines((await run(['read', 'ret-1', ...target])).stdout).map((e) => e.streamVersion)).toEqual([3]);
    const scavenged = await run(['scavenge', ...target]);
    expect(JSON.parse(scavenged.stdout).removed).toBeGreaterThanOrEqual(2);
    expect(scavenged.stderr).toMatch(/^logline: scavenged: removed \d+ events in [\d.]+ s, [\d,]+ events\/s$/m);
    const stale = await run(['delete', 'ret-1', '--expected-version', '2', ...target]);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('WrongExpectedVersion');
    const soft = await run(['delete', 'ret-1', '--expected-version', '3', ...target]);
    expect(JSON.parse(soft.stdout)).toEqual({ streamId: 'ret-1', streamVersion: 3, deleted: 'soft' });
    expect((await run(['read', 'ret-1', ...target])).stderr).toContain('NotFound');
    expect((await run(['delete', 'ret-1', '--hard', ...target])).code).toBe(0);
    const refused = await run(['append', 'ret-1', '{"type":"Late","data":{}}', ...target]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('StreamDeleted');
  }, 60_000);

  it('tail follows live events until interrupted', async () => {
    const child = spawn(process.execPath, cliArgs('tail', 'live-1', '--from', 'start', ...target), { cwd: ROOT });
    const seen: Array<Record<string, unknown>> = [];
    const reader = createInterface({ input: child.stdout });
    const gotTwo = new Promise<void>((resolve) =>
      reader.on('line', (line) => {
        seen.push(JSON.parse(line) as Record<string, unknown>);
        if (seen.length === 2) resolve();
      }),
    );
    await run(['append', 'live-1', '{"type":"First","data":1}', ...target]);
    await run(['append', 'other', '{"type":"Elsewhere","data":1}', ...target]);
    await run(['append', 'live-1', '{"type":"Second","data":2}', ...target]);
    await gotTwo;
    expect(seen.map((e) => e.type)).toEqual(['First', 'Second']);
    child.kill('SIGINT');
    expect(await new Promise((resolve) => child.on('exit', resolve))).toBe(0);
  });

  it('forget: an export holds no personal plaintext; after forget the fields read as removed; idempotent; unknown subject fails', async () => {
    const email = `${mode}-person@example.com`;
    const subject = `subject-${mode}`;
    const signedUp = { type: 'UserSignedUp', data: { email, plan: 'pro' }, metadata: { subject, personal: ['email'] } };
    expect((await run(['append', `person-${mode}`, JSON.stringify(signedUp), ...target])).code).toBe(0);
    expect(lines((await run(['read', `person-${mode}`, ...target])).stdout)[0]?.data).toEqual({ email, plan: 'pro' });
    const exported = await run(['export', ...target]);
    expect(exported.code).toBe(0);
    expect(exported.stdout).toContain(subject);
    expect(exported.stdout).not.toContain(email);

    const forgot = await run(['forget', subject, ...target]);
    expect(forgot.code).toBe(0);
    expect(JSON.parse(forgot.stdout)).toMatchObject({ subject, alreadyForgotten: false });
    const again = await run(['forget', subject, ...target]);
    expect(JSON.parse(again.stdout)).toMatchObject({ subject, alreadyForgotten: true });
    const [forgotten] = lines((await run(['read', `person-${mode}`, ...target])).stdout);
    expect(forgotten?.data).toEqual({ plan: 'pro' });
    expect(forgotten?.metadata).toMatchObject({ subject, forgotten: true });

    const unknown = await run(['forget', 'nobody-at-all', ...target]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/UnknownSubject/);
  });
});

describe('logline keys: a subject key backup between two SQLite files', () => {
  const source = `sqlite:${join(dir.path, 'keys-source.db')}`;
  const copy = `sqlite:${join(dir.path, 'keys-copy.db')}`;
  const signedUp = (subject: string, email: string) =>
    JSON.stringify({ type: 'UserSignedUp', data: { email, plan: 'pro' }, metadata: { subject, personal: ['email'] } });

  it('keys then events restore personal data; a later forget stays; re-import changes nothing; conflicts and bad records are reported', async () => {
    expect((await run(['append', 'person-a', signedUp('subject-a', 'a@example.com'), '--store', source])).code).toBe(0);
    expect((await run(['append', 'person-b', signedUp('subject-b', 'b@example.com'), '--store', source])).code).toBe(0);
    // The event backup first, the key backup after a forget: the keys say b is gone.
    const eventsFile = join(dir.path, 'keys-events.ndjson');
    expect((await run(['export', '-o', eventsFile, '--store', source])).code).toBe(0);
    expect((await run(['forget', 'subject-b', '--store', source])).code).toBe(0);

    const keysFile = join(dir.path, 'keys.ndjson');
    writeFileSync(keysFile, 'an older file, readable by all', { mode: 0o644 });
    const exported = await run(['keys', 'export', '-o', keysFile, '--store', source]);
    expect(exported.code).toBe(0);
    expect(JSON.parse(exported.stdout)).toEqual({ exported: 2, forgotten: 1, wrapped: 0 });
    expect(exported.stderr).toMatch(/^logline: exported 2 subject keys \(1 forgotten, 0 wrapped\) in \d+\.\d s, [\d,]+ subject keys\/s\n$/);
    expect(statSync(keysFile).mode & 0o777).toBe(0o600);
    const records = lines(readFileSync(keysFile, 'utf8'));
    expect(records.map((r) => [r.format, r.subject, typeof r.key, r.forgottenAt === undefined])).toEqual([
      ['logline-subject-keys/1', 'subject-a', 'string', true],
      ['logline-subject-keys/1', 'subject-b', 'undefined', false],
    ]);
    // Without -o the keys go to stdout, nothing else.
    expect(lines((await run(['keys', 'export', '--store', source])).stdout)).toEqual(records);

    const imported = await run(['keys', 'import', keysFile, '--store', copy]);
    expect(imported.code).toBe(0);
    expect(JSON.parse(imported.stdout)).toEqual({ read: 2, imported: 2, unchanged: 0, forgotten: 0, conflicts: [] });
    expect(imported.stderr).toMatch(/^logline: imported 2 subject keys \(2 new, 0 unchanged, 0 forgotten, 0 conflicts\) in /);
    expect((await run(['import', eventsFile, '--store', copy])).code).toBe(0);
    expect(lines((await run(['read', 'person-a', '--store', copy])).stdout)[0]?.data).toEqual({ email: 'a@example.com', plan: 'pro' });
    const [b] = lines((await run(['read', 'person-b', '--store', copy])).stdout);
    expect(b?.data).toEqual({ plan: 'pro' });
    expect(b?.metadata).toMatchObject({ subject: 'subject-b', forgotten: true });

    // Again, from stdin: nothing changes.
    const again = await run(['keys', 'import', '-', '--store', copy], readFileSync(keysFile, 'utf8'));
    expect(JSON.parse(again.stdout)).toEqual({ read: 2, imported: 0, unchanged: 2, forgotten: 0, conflicts: [] });

    // Another key for subject-a: a conflict, reported, and a still reads plain.
    const other = JSON.stringify({ ...records[0], key: randomBytes(32).toString('base64') });
    const conflict = await run(['keys', 'import', '-', '--store', copy], other);
    expect(conflict.code).toBe(0);
    expect(JSON.parse(conflict.stdout)).toEqual({ read: 1, imported: 0, unchanged: 0, forgotten: 0, conflicts: ['subject-a'] });
    expect(conflict.stderr).toMatch(/1 subject\(s\) hold a different key in this store and were left alone: subject-a/);
    expect(lines((await run(['read', 'person-a', '--store', copy])).stdout)[0]?.data).toEqual({ email: 'a@example.com', plan: 'pro' });

    // A bad record: exit 2, the field and the line named, nothing stored for it.
    const bad = await run(
      ['keys', 'import', '-', '--store', copy],
      `\n${JSON.stringify({ ...records[0], subject: 'subject-c', key: 'x' })}\n`,
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/InvalidArgument: Invalid key: record 1: got "x"/);
    expect(bad.stderr).toMatch(/stopped at line 2 of stdin/);
    const notJson = await run(['keys', 'import', '-', '--store', copy], `${readFileSync(keysFile, 'utf8')}{not json\n`);
    expect(notJson.code).toBe(2);
    expect(notJson.stderr).toMatch(/^logline: InvalidArgument: Invalid line 3: it is not JSON/);
    expect(notJson.stderr).not.toMatch(/stopped at/);
    expect(lines((await run(['keys', 'export', '--store', copy])).stdout).map((r) => r.subject)).toEqual(['subject-a', 'subject-b']);
  }, 60_000);

  it('an export taken after a forget imports: the notice replays the forget, and an older key backup cannot undo it', async () => {
    const origin = `sqlite:${join(dir.path, 'forgot-origin.db')}`;
    const restored = `sqlite:${join(dir.path, 'forgot-restored.db')}`;
    expect((await run(['append', 'person-c', signedUp('subject-c', 'c@example.com'), '--store', origin])).code).toBe(0);
    expect((await run(['append', 'person-d', signedUp('subject-d', 'd@example.com'), '--store', origin])).code).toBe(0);
    const oldKeys = join(dir.path, 'keys-before-forget.ndjson');
    expect((await run(['keys', 'export', '-o', oldKeys, '--store', origin])).code).toBe(0);
    expect((await run(['forget', 'subject-c', '--store', origin])).code).toBe(0);
    const eventsFile = join(dir.path, 'events-after-forget.ndjson');
    expect((await run(['export', '-o', eventsFile, '--store', origin])).code).toBe(0);
    const exported = lines(readFileSync(eventsFile, 'utf8'));
    expect(exported.map((e) => [e.streamId, e.type])).toContainEqual(['$subjects', 'SubjectForgotten']);

    // Events first, then the key backup taken before the forget: the forget still wins.
    const imported = await run(['import', eventsFile, '--store', restored]);
    expect(imported.stderr).not.toMatch(/error/i);
    expect(imported.code).toBe(0);
    expect(JSON.parse(imported.stdout)).toEqual({ read: 3, added: 3, forgotten: 1 });
    const keys = await run(['keys', 'import', oldKeys, '--store', restored]);
    expect(keys.code).toBe(0);
    expect(JSON.parse(keys.stdout)).toMatchObject({ read: 2, imported: 1, unchanged: 1, conflicts: [] });
    const [c] = lines((await run(['read', 'person-c', '--store', restored])).stdout);
    expect(c?.data).toEqual({ plan: 'pro' });
    expect(c?.metadata).toMatchObject({ subject: 'subject-c', forgotten: true });
    const [d] = lines((await run(['read', 'person-d', '--store', restored])).stdout);
    expect(d?.data).toEqual({ email: 'd@example.com', plan: 'pro' });

    // The restored log holds the same notice (same id) as the original; a second import adds nothing.
    const again = lines((await run(['export', '--store', restored])).stdout);
    expect(again.filter((e) => e.streamId === '$subjects').map((e) => e.id)).toEqual(
      exported.filter((e) => e.streamId === '$subjects').map((e) => e.id),
    );
    expect(JSON.parse((await run(['import', eventsFile, '--store', restored])).stdout)).toEqual({ read: 3, added: 0, forgotten: 1 });
  }, 60_000);

  it('refuses a --server: keys never travel through the HTTP API', async () => {
    const server = await startServerProcess(['--store', `sqlite:${join(dir.path, 'keys-server.db')}`]);
    try {
      const file = join(dir.path, 'keys-never.ndjson');
      for (const args of [
        ['keys', 'export'],
        ['keys', 'export', '-o', file],
        ['keys', 'import', '-'],
      ]) {
        const refused = await run([...args, '--server', server.url], '');
        expect(refused.code, args.join(' ')).toBe(2);
        expect(refused.stderr).toMatch(/`logline keys` needs direct store access\. Expected the store itself: --store <url>/);
        expect(refused.stdout).toBe('');
      }
      expect(existsSync(file)).toBe(false);
    } finally {
      await server.stop();
    }
  }, 60_000);
});

describe('logline CLI: help and progress', () => {
  it('--help lists every command with an example, and each command shows its own', async () => {
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    const commandsSection = help.stdout.slice(help.stdout.indexOf('Commands:'), help.stdout.indexOf('Examples:'));
    const commands = [...commandsSection.matchAll(/^ {2}([a-z]+) /gm)].map((match) => match[1]).filter((name) => name !== 'help');
    expect(commands).toEqual([
      'serve',
      'append',
      'read',
      'tail',
      'export',
      'import',
      'keys',
      'stats',
      'forget',
      'metadata',
      'delete',
      'scavenge',
    ]);
    for (const command of commands) expect(help.stdout).toMatch(new RegExp(`^ {2}\\$ logline ${command} `, 'm'));
    const importHelp = await run(['help', 'import']);
    expect(importHelp.stdout).toMatch(/Example:\n {2}\$ logline import backup\.ndjson/);
  });

  it('import on a terminal draws a progress bar with the rate; the summary line stays', async () => {
    // 3,000 events in 30 streams, imported under a pseudo-terminal (script(1)) as a person would see it.
    const file = join(dir.path, 'progress.ndjson');
    const at = new Date().toISOString();
    const events = Array.from({ length: 3000 }, (_, i) => ({
      id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      streamId: `p-${Math.floor(i / 100)}`,
      streamVersion: (i % 100) + 1,
      position: String(i + 1),
      type: 'Tick',
      data: { i },
      metadata: {},
      occurredAt: at,
      recordedAt: at,
    }));
    writeFileSync(file, `${events.map((e) => JSON.stringify(e)).join('\n')}\n`);
    const command = [process.execPath, ...cliArgs('import', file, '--batch', '50', '--store', `sqlite:${join(dir.path, 'tty.db')}`)]
      .map((arg) => `'${arg}'`)
      .join(' ');
    const terminal = await new Promise<Run>((resolve) => {
      const child = spawn('script', ['-qec', command, '/dev/null'], { cwd: ROOT, env: { ...process.env, LOGLINE_STORE: '' } });
      let stdout = '';
      child.stdout.on('data', (chunk) => {
        stdout += chunk;
      });
      child.stdin.end();
      child.on('exit', (code) => resolve({ code, stdout, stderr: '' }));
    });
    expect(terminal.code).toBe(0);
    expect(terminal.stdout).toMatch(/\r\[[#-]{20}\] \d+% · [\d.]+ (B|KiB|MiB)\/[\d.]+ KiB · [\d,]+ events · [\d,]+ events\/s/);
    expect(terminal.stdout).toMatch(/logline: imported 3000 events \(3000 added\) in \d+\.\d s, [\d,]+ events\/s/);
    expect(terminal.stdout).toContain('{"read":3000,"added":3000}');
  }, 30_000);

  it('the progress line computes rate and ETA from the work done so far', () => {
    const line = progressLine({ work: 25 * 1024, total: 100 * 1024, unit: 'bytes', items: 5000, elapsedMs: 2000 });
    expect(line).toBe('[#####---------------] 25% · 25.0 KiB/100.0 KiB · 5,000 events · 2,500 events/s · ETA 0:06');
    expect(progressLine({ work: 3000, total: undefined, unit: 'bytes', items: 10, elapsedMs: 1000 })).toBe(
      '2.9 KiB · 10 events · 10 events/s',
    );
    expect(progressLine({ work: 1, total: 7200, unit: 'positions', items: 1, elapsedMs: 1000 })).toMatch(/ETA 1:59:59$/);
    expect(summaryLine('exported 10 events', 10, 20_000)).toBe('exported 10 events in 20 s, 1 events/s');
  });
});

describe('logline export and import: a store with retention and deletions restores faithfully', async () => {
  const pgReachable = await requirePostgres();
  const sourceUrl = `sqlite:${join(dir.path, 'lifecycles-source.db')}`;
  const exportFile = join(dir.path, 'lifecycles.ndjson');
  /** Every stream of the source: how each one's history hides or removes events. */
  const STREAMS = ['ret-1', 'trunc-1', 'scav-1', 'soft-1', 'cont-1', 'hard-1', 'plain-1', 'last-1'];
  const tick = (i: number): NewEvent => ({ type: 'Tick', data: { i } });
  const ticks = (n: number) => Array.from({ length: n }, (_, i) => tick(i + 1));

  /** What a restore must reproduce: the log in position order, and per stream its version, metadata and visible events. */
  const snapshot = async (url: string) => {
    const store = await openStore(url);
    try {
      const log = (await collect(store.readAll())).map((e) => [e.streamId, e.streamVersion, e.id, e.type, e.data, e.occurredAt]);
      const streams: Record<string, unknown> = {};
      for (const stream of STREAMS) {
        streams[stream] = {
          version: await store.streamVersion(stream),
          metadata: await store.getStreamMetadata(stream),
          events: (await collect(store.read(stream))).map((e) => [e.streamVersion, e.id]),
        };
      }
      return { log, streams, events: (await store.stats()).events };
    } finally {
      await store.close();
    }
  };

  let source: Awaited<ReturnType<typeof snapshot>>;
  beforeAll(async () => {
    const store = await openStore(sourceUrl);
    try {
      await store.append('ret-1', ticks(5));
      await store.setStreamMetadata('ret-1', { maxCount: 2 });
      await store.append('trunc-1', ticks(4));
      await store.setStreamMetadata('trunc-1', { truncateBefore: 3 });
      // Scavenged, then its setting cleared: it starts at version 3 with no lifecycle left.
      await store.append('scav-1', ticks(4));
      await store.setStreamMetadata('scav-1', { truncateBefore: 3 });
      await store.append('soft-1', ticks(3));
      await store.deleteStream('soft-1', { expectedVersion: 3 });
      // Soft-deleted, then written again: no longer deleted, it starts at version 3.
      await store.append('cont-1', ticks(2));
      await store.deleteStream('cont-1');
      await store.append('cont-1', [tick(3)], { expectedVersion: 2 });
      await store.append('hard-1', ticks(2));
      await store.deleteStream('hard-1', { hard: true });
      await store.append('plain-1', ticks(2));
      await store.append('last-1', ticks(1));
      expect((await store.scavenge()).removed).toBeGreaterThan(0);
      await store.setStreamMetadata('scav-1', {});
    } finally {
      await store.close();
    }
    source = await snapshot(sourceUrl);
    // The export as a restore meets it: streams that start past version 1, settings and deletions.
    expect(source.streams['scav-1']).toEqual({
      version: 4,
      metadata: {},
      events: [
        [3, expect.any(String)],
        [4, expect.any(String)],
      ],
    });
    expect(source.streams['soft-1']).toMatchObject({ version: 3, metadata: { deleted: 'soft' }, events: [] });
    expect(source.streams['hard-1']).toMatchObject({ version: 2, metadata: { deleted: 'hard' }, events: [] });
    const exported = await run(['export', '-o', exportFile, '--store', sourceUrl]);
    expect(exported.code).toBe(0);
    expect(exported.stderr).toMatch(/exported 10 events up to position \d+ and 5 stream lifecycles/);
    const file = lines(readFileSync(exportFile, 'utf8'));
    expect(file.slice(0, 5)).toEqual([
      { lifecycle: { streamId: 'cont-1', version: 3 } },
      { lifecycle: { streamId: 'hard-1', version: 2, deleted: 'hard' } },
      { lifecycle: { streamId: 'ret-1', version: 5, maxCount: 2 } },
      { lifecycle: { streamId: 'soft-1', version: 3, deleted: 'soft' } },
      { lifecycle: { streamId: 'trunc-1', version: 4, truncateBefore: 3 } },
    ]);
  }, 60_000);

  const into = async (kind: 'sqlite' | 'postgres' | 'server', url: string, args: string[]) => {
    const first = await run(['import', exportFile, ...args, '--batch', '1']);
    expect(first.stderr).not.toMatch(/error/i);
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toEqual({ read: 10, added: 10, lifecycles: 5, lifecyclesApplied: 4, streamsStarted: 4 });
    const second = await run(['import', exportFile, ...args, '--batch', '1']);
    expect(JSON.parse(second.stdout), kind).toEqual({ read: 10, added: 0, lifecycles: 5, lifecyclesApplied: 0 });

    const restored = await snapshot(url);
    // Same events, versions and order (positions are the target's own), same metadata and deletions.
    expect(restored.log).toEqual(source.log);
    expect(restored.streams).toEqual(source.streams);
    expect(restored.events).toBe(10);
    if (kind === 'server') {
      // Exported again over HTTP (GET /v1/lifecycles): the same lifecycles, but for cont-1, written
      // after its delete, which restored holds nothing but its start.
      const again = lines((await run(['export', ...args])).stdout).filter((line) => 'lifecycle' in line);
      const original = lines(readFileSync(exportFile, 'utf8')).filter((line) => 'lifecycle' in line);
      expect(again).toEqual(original.filter((line) => (line.lifecycle as { streamId: string }).streamId !== 'cont-1'));
    }

    const refused = await run(['append', 'hard-1', '{"type":"Late","data":{}}', ...args]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('StreamDeleted');
    const continued = await run(['append', 'soft-1', '{"type":"Again","data":{}}', '--expected-version', '3', ...args]);
    expect(continued.stderr).toBe('');
    expect(JSON.parse(continued.stdout)).toMatchObject({ streamVersion: 4 });
  };

  it('SQLite -> SQLite', async () => {
    const url = `sqlite:${join(dir.path, 'lifecycles-restored.db')}`;
    await into('sqlite', url, ['--store', url]);
  }, 90_000);

  it.skipIf(!pgReachable)(
    'SQLite -> PostgreSQL',
    async () => {
      const { url, drop } = await freshSchemaUrl();
      try {
        await into('postgres', url, ['--store', url]);
      } finally {
        await drop();
      }
    },
    90_000,
  );

  it('SQLite -> a server on SQLite (--server: PUT /v1/streams/{s}/start)', async () => {
    const url = `sqlite:${join(dir.path, 'lifecycles-served.db')}`;
    const server = await startServerProcess(['--store', url]);
    try {
      await into('server', url, ['--server', server.url]);
    } finally {
      await server.stop();
    }
  }, 90_000);
});
