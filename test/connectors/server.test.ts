/**
 * Connectors in `logline serve --connectors <file>`: configuration errors name the field, a sink
 * that is down at start does not stop the server, the HTTP API lists and controls connectors
 * with the right API-key rights, and after `kill -9` a restarted server resumes delivery from
 * the checkpoint without losing an event.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { startServer } from '../../src/server/serve.js';
import { cliArgs, post, ROOT, startServerProcess, tempDir } from '../server/process.js';
import { deduplicated, startWebhookTarget, versionsByStream, waitFor } from './webhook-target.js';

const SECRET = 'a-shared-secret-of-enough-length';
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function writeConfig(connectors: unknown[]): string {
  const dir = tempDir('logline-conn-');
  cleanups.push(() => dir.remove());
  const file = join(dir.path, 'connectors.json');
  writeFileSync(file, JSON.stringify({ connectors }));
  return file;
}

const quietLogger = async () => (await import('pino')).default({ level: 'silent' });

describe('connectors configuration', () => {
  const refusals: Array<[string, unknown, RegExp]> = [
    [
      'an unknown sink type',
      { name: 'a', sink: { type: 'kafka', url: 'kafka://x' } },
      /connectors\[0\]\.sink\.type.*'http', 'rabbitmq', 'nats' or 'mqtt'/,
    ],
    [
      'a bad filter',
      { name: 'a', source: { category: 'order-x' }, sink: { type: 'http', url: 'http://127.0.0.1:1/' } },
      /connectors\[0\]\.source\.category/,
    ],
    [
      'a URL of the wrong scheme',
      { name: 'a', sink: { type: 'rabbitmq', url: 'http://127.0.0.1', exchange: 'x' } },
      /connectors\[0\]\.sink\.url.*amqp:/,
    ],
    [
      'a host that does not resolve',
      { name: 'a', sink: { type: 'http', url: 'http://no-such-host.invalid/hook' } },
      /connectors\[0\]\.sink\.url.*does not resolve/,
    ],
    [
      'an unknown delivery option',
      { name: 'a', sink: { type: 'http', url: 'http://127.0.0.1:1/' }, delivery: { retries: 3 } },
      /connectors\[0\]\.delivery/,
    ],
  ];
  for (const [what, connector, message] of refusals) {
    it(`refuses ${what} with an error naming the field, before serving`, async () => {
      const file = writeConfig([connector]);
      const error = await startServer({ store: 'memory:', port: 0, connectorsFile: file, logger: await quietLogger() }).catch((e) => e);
      expect(error).toMatchObject({ code: 'InvalidArgument' });
      expect(error.message).toMatch(message);
    });
  }

  it('the CLI exits 2 with the field in its message', async () => {
    const file = writeConfig([{ name: 'a', sink: { type: 'http' } }]);
    const failure = await promisify(execFile)(
      process.execPath,
      cliArgs('serve', '--store', 'memory:', '--port', '0', '--connectors', file),
      { cwd: ROOT },
    ).catch((e) => e);
    expect(failure.code).toBe(2);
    expect(failure.stderr).toMatch(/InvalidArgument: Invalid connectors\[0\]\.sink\.url/);
  });
});

describe('connectors in the HTTP API', () => {
  it('a sink down at start does not stop the server; listing, metrics, control and their rights; bad input', async () => {
    const dir = tempDir('logline-conn-');
    cleanups.push(() => dir.remove());
    const keysFile = join(dir.path, 'keys.json');
    writeFileSync(
      keysFile,
      JSON.stringify({
        keys: [
          { name: 'ops', key: 'ops-key-0123456789abcdef', read: ['*'], write: ['*'] },
          { name: 'partial', key: 'partial-key-0123456789ab', read: ['*'], write: ['order-'] },
        ],
      }),
    );
    // Nothing listens on port 1: the broker is down from the start.
    const file = writeConfig([
      {
        name: 'rabbit',
        sink: { type: 'rabbitmq', url: 'amqp://guest:guest@127.0.0.1:1', exchange: 'x' },
        delivery: {
          breaker: { failures: 2, halfOpenAfterMs: 60_000 },
          timeoutMs: 500,
          quickRetries: 0,
          retry: { initialDelayMs: 10, maxDelayMs: 50 },
        },
      },
    ]);
    const server = await startServer({ store: 'memory:', port: 0, connectorsFile: file, keysFile, logger: await quietLogger() });
    cleanups.push(() => server.close());
    const ops = { authorization: 'Bearer ops-key-0123456789abcdef' };
    const partial = { authorization: 'Bearer partial-key-0123456789ab' };
    const get = async (path: string, headers: Record<string, string>) => {
      const response = await fetch(`${server.url}${path}`, { headers });
      return { status: response.status, text: await response.text() };
    };

    expect((await post(`${server.url}/v1/streams/order-1`, { events: [{ type: 'Placed', data: {} }] }, ops)).status).toBe(201);
    await waitFor(async () => JSON.parse((await get('/v1/connectors/rabbit', ops)).text).breaker === 'open', 10_000, 'the breaker to open');
    const listed = JSON.parse((await get('/v1/connectors', partial)).text);
    expect(listed.connectors).toEqual([
      expect.objectContaining({
        name: 'rabbit',
        sink: { type: 'rabbitmq', target: 'amqp://guest:***@127.0.0.1:1 exchange x' },
        breaker: 'open',
        status: 'running',
        lag: 1,
      }),
    ]);
    expect(listed.connectors[0].lastError).toMatch(/RabbitMQ|circuit/i);
    const metrics = await get('/metrics', ops);
    expect(metrics.text).toMatch(/logline_connector_breaker_state\{connector="rabbit",sink="rabbitmq"\} 2/);
    // Appends are not held up by the dead sink (generous: a loaded CI machine can pause for a while).
    const started = performance.now();
    expect((await post(`${server.url}/v1/streams/order-2`, { events: [{ type: 'Placed', data: {} }] }, ops)).status).toBe(201);
    expect(performance.now() - started).toBeLessThan(2000);

    // Rights: no key 401; reading needs read on every stream; control needs write on every stream.
    expect((await get('/v1/connectors', {})).status).toBe(401);
    const forbidden = await post(`${server.url}/v1/connectors/rabbit/pause`, '', partial);
    expect(forbidden).toMatchObject({ status: 403, body: { error: 'Forbidden' } });
    const paused = await post(`${server.url}/v1/connectors/rabbit/pause`, '', ops);
    expect(paused).toMatchObject({ status: 200, body: { status: 'paused', breaker: 'paused' } });
    expect((await post(`${server.url}/v1/connectors/rabbit/resume`, '', ops)).body).toMatchObject({ status: 'running' });
    expect((await post(`${server.url}/v1/connectors/rabbit/parked/skip`, '', partial)).status).toBe(403);

    // Bad input: unknown connector 404, ids that are not ids 400 naming the field.
    expect((await get('/v1/connectors/nope', ops)).status).toBe(404);
    const badIds = await post(`${server.url}/v1/connectors/rabbit/parked/replay`, { ids: ['x'] }, ops);
    expect(badIds).toMatchObject({ status: 400, body: { error: 'InvalidArgument', argument: 'ids' } });
    const notJson = await post(`${server.url}/v1/connectors/rabbit/parked/skip`, '{', ops);
    expect(notJson).toMatchObject({ status: 400, body: { argument: 'body' } });
    expect(await post(`${server.url}/v1/connectors/rabbit/parked/replay`, {}, ops)).toMatchObject({
      status: 200,
      body: { replayed: 0, failed: [] },
    });
    expect(JSON.parse((await get('/v1/connectors/rabbit/parked', ops)).text)).toEqual({ parked: [] });
  }, 30_000);
});

describe('a server running connectors is killed with SIGKILL', () => {
  it('after a restart, delivery resumes from the checkpoint: no event lost, repeats only from the batch in flight', async () => {
    // A slow receiver, so the kill lands while deliveries are going on.
    const target = await startWebhookTarget(SECRET);
    cleanups.push(() => target.close());
    target.delayMs = 40;
    const dir = tempDir('logline-conn-');
    cleanups.push(() => dir.remove());
    const batchSize = 10;
    const file = writeConfig([
      { name: 'hook', sink: { type: 'http', url: target.url, secret: SECRET }, delivery: { batchSize, leaseMs: 1000, partitions: 4 } },
    ]);
    const args = ['--store', `sqlite:${join(dir.path, 'events.db')}`, '--connectors', file];
    const first = await startServerProcess(args);
    cleanups.push(() => first.stop('SIGKILL'));
    // Appends go on while the connector delivers; the kill lands in the middle of both.
    let killed = false;
    let acknowledged = 0;
    const appending = (async () => {
      for (let i = 0; i < 1000 && !killed; i++) {
        const appended = await post(`${first.url}/v1/streams/order-${i % 6}`, { events: [{ type: 'Placed', data: { i } }] }).catch(
          () => undefined,
        );
        if (appended?.status === 201) acknowledged++;
      }
    })();
    await waitFor(() => target.received.length >= 30, 20_000, 'some deliveries before the kill');
    killed = true;
    await first.stop('SIGKILL');
    await appending;
    const beforeRestart = target.received.length;

    const second = await startServerProcess(args);
    cleanups.push(() => second.stop());
    for (let i = 0; i < 30; i++)
      await post(`${second.url}/v1/streams/order-${i % 6}`, { events: [{ type: 'Placed', data: { after: i } }] });
    const all = (await (await fetch(`${second.url}/v1/all?limit=1000`)).json()) as { events: Array<{ id: string }> };
    expect(all.events.length).toBeGreaterThanOrEqual(acknowledged + 30);
    await waitFor(() => deduplicated(target.received).length === all.events.length, 20_000, 'every stored event after the restart');

    const kept = deduplicated(target.received);
    expect(new Set(kept.map((m) => m.id))).toEqual(new Set(all.events.map((e) => e.id)));
    for (const versions of versionsByStream(kept).values()) expect(versions).toEqual(versions.map((_, i) => i + 1));
    const repeats = target.received.length - kept.length;
    console.log(`kill -9 after ${acknowledged} acknowledged appends and ${beforeRestart} deliveries: ${repeats} repeats after the restart`);
    // At most batchSize events are ever delivered but not checkpointed (per worker; slack for retried POSTs).
    expect(repeats).toBeLessThanOrEqual(batchSize * 4);
    // Checkpoint saves are coalesced (delivery.checkpointMs, default 1 s): lag reaches 0 once the last is saved.
    const listed = async () => (await fetch(`${second.url}/v1/connectors/hook`)).json() as Promise<{ lag: number }>;
    await waitFor(async () => (await listed()).lag === 0, 5_000, 'the last checkpoint save');
    expect(await listed()).toMatchObject({ name: 'hook', lag: 0, parked: 0, breaker: 'closed' });
  }, 60_000);
});
