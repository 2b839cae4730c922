/**
 * npm run identity [-- --store <url>] [--port <n>] [--host <h>] [--users-view 1|2] [--min-position-timeout-ms <n>]
 * The identity service: embedded SQLite by default (./logline-data/identity.db), or any SQL store URL.
 * Prints one JSON line `{"listening":{"host","port"}}` once it serves (tests read it).
 */
import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { serve } from '@hono/node-server';
import { createHttpApp } from './http.js';
import { startService } from './service.js';

const { values } = parseArgs({
  options: {
    store: { type: 'string', default: process.env.IDENTITY_STORE ?? 'sqlite:./logline-data/identity.db' },
    port: { type: 'string', default: process.env.IDENTITY_PORT ?? '7474' },
    host: { type: 'string', default: '127.0.0.1' },
    'users-view': { type: 'string', default: '1' },
    'min-position-timeout-ms': { type: 'string', default: '5000' },
  },
  strict: true,
});

const port = Number(values.port);
const timeout = Number(values['min-position-timeout-ms']);
const usersVersion = Number(values['users-view']);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be 0..65535, got '${values.port}'`);
if (!Number.isInteger(timeout) || timeout < 0)
  fail(`--min-position-timeout-ms must be a non-negative integer, got '${values['min-position-timeout-ms']}'`);
if (usersVersion !== 1 && usersVersion !== 2) fail(`--users-view must be 1 or 2, got '${values['users-view']}'`);
if (values.store === 'sqlite:./logline-data/identity.db') mkdirSync('./logline-data', { recursive: true });

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}

const service = await startService({ store: values.store, usersVersion: usersVersion as 1 | 2 });
const app = createHttpApp(service, { minPositionTimeoutMs: timeout });
const server = serve({ fetch: app.fetch, port, hostname: values.host }, (info) => {
  console.log(JSON.stringify({ listening: { host: values.host, port: info.port }, store: service.store.backend }));
});

let stopping = false;
const shutdown = () => {
  if (stopping) return;
  stopping = true;
  server.close(() => {
    void service.close().finally(() => process.exit(0));
  });
  setTimeout(() => process.exit(0), 10_000).unref();
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
