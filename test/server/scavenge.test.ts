/**
 * `logline serve --scavenge-interval`: the server removes what retention hides in the background
 * and logs each run that removed something (docs/lifecycle.md#retention-and-deletion).
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sleep } from '../helpers/collect.js';
import { get, post, type ServerProcess, startServerProcess, tempDir } from './process.js';

describe('background scavenge', () => {
  const dir = tempDir();
  let server: ServerProcess | undefined;
  afterAll(async () => {
    await server?.stop();
    dir.remove();
  });

  it('removes hidden events every interval, logs the run, and keeps versions and positions', async () => {
    server = await startServerProcess(['--store', `sqlite:${join(dir.path, 'scavenge.db')}`, '--scavenge-interval', '1']);
    const base = server.url;
    const events = Array.from({ length: 5 }, (_, i) => ({ type: 'Tick', data: { i } }));
    expect((await post(`${base}/v1/streams/tick-1`, { events })).status).toBe(201);
    const last = await post(`${base}/v1/streams/other-1`, { events: [{ type: 'Tick', data: {} }] });
    const put = await fetch(`${base}/v1/streams/tick-1/metadata`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ maxCount: 2 }),
    });
    expect(put.status).toBe(200);
    const deadline = Date.now() + 10_000;
    while ((await get(`${base}/v1/stats`)).body.events !== 3 && Date.now() < deadline) await sleep(200);
    expect((await get(`${base}/v1/stats`)).body).toMatchObject({ events: 3, streams: 2, headPosition: last.body.position });
    // The run's log line is written after its commit, so it may reach us after the stats do.
    const logged = () =>
      (server as ServerProcess).logs
        .map((line) => JSON.parse(line) as { msg?: string; removed?: number })
        .find((e) => e.msg === 'scavenged');
    await expect.poll(() => logged()?.removed).toBe(3);
    const page = await get(`${base}/v1/streams/tick-1`);
    expect(page.body.streamVersion).toBe(5);
    expect((page.body.events as { streamVersion: number }[]).map((e) => e.streamVersion)).toEqual([4, 5]);
  });
});
