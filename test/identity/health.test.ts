/**
 * `/health` reports each view's runner, and answers 503 once one has stopped: here the groups
 * view, on an event it cannot apply (appended straight to the store, around the service's
 * validation), retried, parked, then stopped. A load balancer then sends reads elsewhere; this
 * process still answers what does not need that view.
 */
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/index.js';
import { sleep } from '../helpers/collect.js';
import { serveDuringTests } from './served.js';
import { call, testStores } from './service.js';

interface Health {
  status: string;
  views: Array<{ name: string; status: string; position: string; lastError?: string }>;
}

for (const [backend, open, enabled] of await testStores()) {
  describe.skipIf(!enabled)(`identity /health on ${backend}`, () => {
    const served = serveDuringTests(open);

    it('200 with every view running; 503 naming the view once one stopped on an event it cannot apply', async () => {
      const user = await call<{ id: string }>(served.url, 'POST', '/users', {
        body: { name: 'Health Check', username: `hc${Date.now()}`, email: `hc${Date.now()}@example.org` },
      });
      expect(user.status).toBe(201);
      const healthy = await call<Health>(served.url, 'GET', '/health');
      expect(healthy.status).toBe(200);
      expect(healthy.body.status).toBe('ok');
      expect(healthy.body.views.map((v) => v.name.split('@')[0]).sort()).toEqual(['directory', 'user_keys', 'users']);
      for (const view of healthy.body.views) expect(['live', 'catching-up'], view.name).toContain(view.status);

      // A membership without a group id: the memberships table refuses NULL, every time.
      const direct = await openStore(served.store.url);
      try {
        await direct.append('membership-broken', [{ type: 'MemberAdded', data: { groupId: null, userId: user.body.id } }]);
      } finally {
        await direct.close();
      }
      let health = healthy;
      for (const deadline = Date.now() + 20_000; health.status === 200 && Date.now() < deadline; await sleep(100)) {
        health = await call<Health>(served.url, 'GET', '/health');
      }
      expect(health.status).toBe(503);
      expect(health.body.status).toBe('failing');
      const directory = health.body.views.find((v) => v.name.startsWith('directory@'));
      expect(directory?.status).toBe('stopped');
      expect(directory?.lastError).toMatch(/null|NOT NULL/i);
      for (const view of health.body.views.filter((v) => v !== directory)) expect(view.status, view.name).toBe('live');
      // What does not need the groups view is still served.
      expect((await call(served.url, 'GET', `/users/${user.body.id}`)).status).toBe(200);
    }, 40_000);
  });
}
