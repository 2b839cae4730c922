/**
 * The `logline` CLI against a NATS store URL: append, read, stats, export/import (idempotent). Live
 * tailing goes through the same subscribe as the server's SSE (test/server/nats.test.ts).
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freshNatsUrl, requireNats } from '../helpers/nats.js';
import { cliArgs, ROOT, tempDir } from '../server/process.js';

const reachable = await requireNats();
const dir = tempDir('logline-cli-nats-');
const source = freshNatsUrl();
const copy = freshNatsUrl();
afterAll(async () => {
  dir.remove();
  await source.drop();
  await copy.drop();
});

function run(args: string[], input = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, cliArgs(...args), {
    cwd: ROOT,
    env: { ...process.env, LOGLINE_SERVER: '', LOGLINE_STORE: '', LOGLINE_API_KEY: '' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  child.stdin.end(input);
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

const lines = (text: string) =>
  text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);

describe.skipIf(!reachable)('logline CLI against a NATS store', () => {
  it('append, read, stats, export, import twice (adds nothing the second time)', async () => {
    const store = ['--store', source.url];
    // Independent commands run side by side: each is a process of its own (~2-3 s of startup).
    const [inline] = await Promise.all([
      run(['append', 'cart-1', '{"type":"CartOpened","data":{"user":"u1"}}', ...store, '--expected-version', 'no_stream']),
      run(['append', 'user-1', '{"type":"UserRegistered","data":{}}', ...store]),
    ]);
    expect(inline).toMatchObject({ code: 0, stderr: '' });
    const piped = await run(['append', 'cart-1', ...store], '{"type":"ItemAdded","data":{"sku":"a"}}\n{"type":"CartClosed","data":{}}\n');
    expect(JSON.parse(piped.stdout)).toMatchObject({ streamVersion: 3, events: 2 });
    const [conflict, read, stats, exported] = await Promise.all([
      run(['append', 'cart-1', '[{"type":"Late","data":1}]', ...store, '--expected-version', '1']),
      run(['read', 'cart-1', ...store]),
      run(['stats', ...store]),
      run(['export', ...store]),
    ]);
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toMatch(/expected version 1, but its current version is 3/);
    expect(lines(read.stdout).map((e) => e.type)).toEqual(['CartOpened', 'ItemAdded', 'CartClosed']);
    expect(JSON.parse(stats.stdout)).toMatchObject({ events: 4, streams: 2 });

    expect(exported.code).toBe(0);
    const file = join(dir.path, 'export.ndjson');
    writeFileSync(file, exported.stdout);
    const into = ['--store', copy.url];
    expect(JSON.parse((await run(['import', file, ...into])).stdout)).toEqual({ read: 4, added: 4 });
    const [again, copied] = await Promise.all([run(['import', file, ...into]), run(['export', ...into])]);
    expect(JSON.parse(again.stdout)).toEqual({ read: 4, added: 0 });
    const keep = (e: Record<string, unknown>) => [e.id, e.streamId, e.streamVersion, e.type, e.data, e.occurredAt];
    expect(lines(copied.stdout).map(keep)).toEqual(lines(exported.stdout).map(keep));
  }, 120_000);
});
