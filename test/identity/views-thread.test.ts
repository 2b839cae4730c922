/**
 * On SQLite the identity service runs its async views in a thread of their own
 * (apps/identity/src/views-thread.ts), over their own connection to the file. The service hears
 * of the views' progress by message; these tests check that what it hears holds: a wait for a
 * position resolves only once the view's rows are readable on the service's own connection,
 * a wait beyond the views times out with a typed error, an upgrade switches the table queries
 * read, and a closed or failed thread rejects instead of leaving waits hanging.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PositionTimeoutError, ProjectionStoppedError } from 'logline/projections';
import { afterAll, describe, expect, it } from 'vitest';
import { startService } from '../../apps/identity/src/service.js';
import { startViewsThread } from '../../apps/identity/src/views-thread.js';
import { tempDir } from '../server/process.js';

const dir = tempDir('identity-views-thread-');
afterAll(() => dir.remove());

describe('identity views thread (SQLite)', () => {
  it('a wait for a position resolves once the rows are readable here; an upgrade switches the table; close rejects later waits', async () => {
    const service = await startService({ store: `sqlite:${join(dir.path, 'a.db')}` });
    try {
      const created: Array<{ id: string; position: bigint }> = [];
      for (let i = 0; i < 20; i++) {
        const id = randomUUID();
        const { position } = await service.unkeyed.append(`user-${id}`, [
          { type: 'UserCreated', data: { name: `Ann ${i}`, username: `ann${i}`, email: `ann${i}@example.com` } },
        ]);
        created.push({ id, position });
      }
      // Each wait, as soon as it resolves, finds its user's row on the service's connection.
      await Promise.all(
        created.map(async ({ id, position }) => {
          const { usersTable } = await service.views.waitFor(position, 5000);
          expect(usersTable).toBe('users_v1');
          const rows = await service.queries.all<{ username: string }>(`SELECT username FROM ${usersTable} WHERE id = ?`, [id]);
          expect(rows).toHaveLength(1);
        }),
      );
      const last = created[created.length - 1] as { id: string; position: bigint };
      expect(service.views.position()).toBeGreaterThanOrEqual(last.position);

      const started = performance.now();
      const beyond = await service.views.waitFor(last.position + 1000n, 150).catch((error: unknown) => error);
      expect(beyond).toBeInstanceOf(PositionTimeoutError);
      expect(performance.now() - started).toBeGreaterThanOrEqual(140);

      await service.views.upgradeUsers();
      expect(service.views.usersVersion).toBe(2);
      expect(service.views.usersTable()).toBe('users_v2');
      const { position } = await service.unkeyed.append(`user-${last.id}`, [{ type: 'UserNameSet', data: { name: 'Bo' } }]);
      const { usersTable } = await service.views.waitFor(position, 5000);
      expect(usersTable).toBe('users_v2');
      expect(await service.queries.all(`SELECT display_name FROM users_v2 WHERE id = ?`, [last.id])).toEqual([
        { display_name: `Bo (@ann19)` },
      ]);
    } finally {
      await service.close();
    }
  });

  it('close ends the thread: waits still pending and later ones reject', async () => {
    const views = await startViewsThread({ store: `sqlite:${join(dir.path, 'b.db')}`, usersVersion: 1 });
    const pending = views.waitFor(1_000_000n, 60_000).catch((error: unknown) => error);
    await views.close();
    expect(await pending).toBeInstanceOf(ProjectionStoppedError);
    await expect(views.waitFor(1n, 1000)).rejects.toBeInstanceOf(ProjectionStoppedError);
  });

  it('a thread that cannot open its store rejects the start', async () => {
    const file = join(dir.path, 'not-a-folder');
    writeFileSync(file, 'x');
    await expect(startViewsThread({ store: `sqlite:${join(file, 'c.db')}`, usersVersion: 1 })).rejects.toThrow();
  });
});
