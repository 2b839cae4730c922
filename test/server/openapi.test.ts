/**
 * The OpenAPI document lists every route the server serves, and serves every route it lists:
 * the app's route table (with the connector routes `--connectors` adds) against the document's
 * paths, then each documented operation asked of a real server process.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/core/open-store.js';
import { mountConnectorRoutes } from '../../src/server/connectors.js';
import { createApp, openApiDocument } from '../../src/server/index.js';
import { type ServerProcess, startServerProcess, tempDir } from './process.js';

/** The admin page and its assets: served, but not part of the API. */
const NOT_API = new Set(['/', '/admin/{name}', '/favicon.ico']);

type Operations = Map<string, Set<string>>;

function documented(): Operations {
  const paths = openApiDocument().paths as Record<string, Record<string, unknown>>;
  return new Map(Object.entries(paths).map(([path, item]) => [path, new Set(Object.keys(item).map((m) => m.toUpperCase()))]));
}

describe('OpenAPI document', () => {
  it('documents exactly the routes the app serves, with their methods', async () => {
    const store = await openStore('memory:');
    try {
      const { app } = createApp({ store, logger: pino({ level: 'silent' }), routes: (routes) => mountConnectorRoutes(routes, []) });
      const served: Operations = new Map();
      for (const route of app.routes) {
        if (route.method === 'ALL') continue; // middleware
        const path = route.path.replace(/:(\w+)/g, '{$1}');
        if (NOT_API.has(path)) continue;
        served.set(path, (served.get(path) ?? new Set()).add(route.method));
      }
      expect(served.size).toBeGreaterThan(20);
      const doc = documented();
      expect(
        [...served.keys()].filter((path) => !doc.has(path)),
        'served but not documented',
      ).toEqual([]);
      expect(
        [...doc.keys()].filter((path) => !served.has(path)),
        'documented but not served',
      ).toEqual([]);
      for (const [path, methods] of served) expect([...(doc.get(path) ?? [])].sort(), path).toEqual([...methods].sort());
    } finally {
      await store.close();
    }
  });

  describe('against a server process running a connector', () => {
    const dir = tempDir();
    let server: ServerProcess;
    beforeAll(async () => {
      const file = join(dir.path, 'connectors.json');
      // The sink is down at start (nothing listens on port 9): the server runs anyway.
      writeFileSync(file, JSON.stringify({ connectors: [{ name: 'hook', sink: { type: 'http', url: 'http://127.0.0.1:9/hook' } }] }));
      server = await startServerProcess(['--store', `sqlite:${join(dir.path, 'doc.db')}`, '--connectors', file]);
    });
    afterAll(async () => {
      await server?.stop();
      dir.remove();
    });

    it('answers every documented operation from a route (no route-level 404), and serves the document it describes', async () => {
      const served = await (await fetch(`${server.url}/v1/openapi.json`)).json();
      expect(served).toEqual(JSON.parse(JSON.stringify(openApiDocument())));
      for (const [path, methods] of documented()) {
        const url = server.url + path.replace('{stream}', 'order-1').replace('{name}', 'hook');
        for (const method of methods) {
          const response = await fetch(url, {
            method,
            headers: { 'content-type': 'application/json' },
            body:
              method === 'POST'
                ? JSON.stringify(path.startsWith('/v1/ingest') ? { events: [{ id: 'p-1', type: 'T', data: {} }] } : {})
                : undefined,
          });
          const text =
            method === 'GET' && response.headers.get('content-type')?.startsWith('text/event-stream') ? '' : await response.text();
          await response.body?.cancel().catch(() => {});
          expect(text, `${method} ${path}`).not.toMatch(/"message":"Route /);
        }
      }
    });
  });
});
