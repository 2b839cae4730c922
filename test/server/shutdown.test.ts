/**
 * SIGTERM under load against a real server process: in-flight appends finish, the process
 * exits 0, and every append that was acknowledged (201) is in the store afterwards.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/core/open-store.js';
import { startServerProcess, tempDir } from './process.js';

describe('graceful shutdown', () => {
  it('SIGTERM while 32 clients append: no acknowledged append is lost', async () => {
    const dir = tempDir();
    const storeUrl = `sqlite:${join(dir.path, 'shutdown.db')}`;
    const server = await startServerProcess(['--store', storeUrl]);
    const acknowledged = new Set<string>();
    let failures = 0;
    let stopping = false;
    const worker = async (w: number) => {
      // Each worker appends until the server stops answering.
      for (let i = 0; ; i++) {
        const ids = [randomUUID(), randomUUID()];
        try {
          const response = await fetch(`${server.url}/v1/streams/worker-${w}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ events: ids.map((id) => ({ id, type: 'Tick', data: { w, i } })) }),
          });
          if (response.status === 201) for (const id of ids) acknowledged.add(id);
          else if (!stopping) throw new Error(`unexpected ${response.status}: ${await response.text()}`);
          else await response.body?.cancel();
        } catch (error) {
          if (!stopping) throw error;
          failures++;
          return;
        }
      }
    };
    const workers = Array.from({ length: 32 }, (_, w) => worker(w));
    while (acknowledged.size < 400) await new Promise((resolve) => setTimeout(resolve, 20));
    stopping = true;
    const exit = server.stop('SIGTERM');
    await Promise.all(workers);
    expect(await exit).toBe(0);
    expect(server.logs.some((line) => line.includes('"msg":"stopped"'))).toBe(true);
    expect(failures).toBe(32);

    const store = await openStore(storeUrl);
    const stored = new Set<string>();
    for await (const event of store.readAll()) stored.add(event.id);
    await store.close();
    const lost = [...acknowledged].filter((id) => !stored.has(id));
    expect(lost).toEqual([]);
    expect(stored.size).toBeGreaterThanOrEqual(acknowledged.size);
    dir.remove();
  });
});
