/** API keys: 401 without a valid key, 403 outside its rights; without keys only loopback binds and Host names. */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliArgs, get, post, ROOT, type ServerProcess, startServerProcess, tempDir } from './process.js';

const KEYS = {
  keys: [
    { name: 'admin', key: 'admin-key-0123456789', read: ['*'], write: ['*'] },
    { name: 'orders', key: 'orders-key-0123456789', read: ['order-'], write: ['order-'] },
    { name: 'reader', key: 'reader-key-0123456789', read: ['order-', 'user-'], write: [] },
  ],
};
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const ev = { events: [{ type: 'Placed', data: {} }] };

describe('API keys', () => {
  const dir = tempDir();
  let server: ServerProcess;
  let base: string;
  beforeAll(async () => {
    // Keys from a file here (--keys); the env variable is used by the bad-keys test below.
    const keysFile = join(dir.path, 'keys.json');
    writeFileSync(keysFile, JSON.stringify(KEYS));
    server = await startServerProcess(['--store', `sqlite:${join(dir.path, 'auth.db')}`, '--keys', keysFile], { LOGLINE_API_KEYS: '' });
    base = server.url;
  });
  afterAll(async () => {
    await server?.stop();
    dir.remove();
  });

  it('401 without a key or with an unknown one; public endpoints stay open', async () => {
    for (const headers of [{}, bearer('wrong-key-0123456789'), { authorization: 'Basic abc' }]) {
      const response = await post(`${base}/v1/streams/order-1`, ev, headers);
      expect(response.status).toBe(401);
      expect(response.body.error).toBe('Unauthorized');
      expect((await get(`${base}/v1/streams/order-1`, headers)).status).toBe(401);
      expect((await get(`${base}/v1/all`, headers)).status).toBe(401);
      expect((await get(`${base}/metrics`, headers)).status).toBe(401);
    }
    expect((await get(`${base}/v1/health`)).status).toBe(200);
    expect((await get(`${base}/v1/openapi.json`)).status).toBe(200);
    expect((await get(`${base}/`)).status).toBe(200);
  });

  it('403 outside the key’s prefixes; allowed inside them', async () => {
    const orders = bearer('orders-key-0123456789');
    expect((await post(`${base}/v1/streams/order-1`, ev, orders)).status).toBe(201);
    const outside = await post(`${base}/v1/streams/user-1`, ev, orders);
    expect(outside.status).toBe(403);
    expect(outside.headers.get('logline-position')).toMatch(/^\d+$/);
    expect(outside.body).toMatchObject({ error: 'Forbidden', action: 'write' });
    expect((await get(`${base}/v1/streams/order-1`, orders)).status).toBe(200);
    expect((await get(`${base}/v1/streams/user-1`, orders)).status).toBe(403);
    // $all needs read on every stream unless narrowed to a permitted prefix.
    expect((await get(`${base}/v1/all`, orders)).status).toBe(403);
    expect((await get(`${base}/v1/all?streamPrefix=order-`, orders)).status).toBe(200);
    expect((await get(`${base}/v1/all/subscribe`, orders)).status).toBe(403);
    expect((await get(`${base}/v1/stats`, orders)).status).toBe(403);

    const reader = bearer('reader-key-0123456789');
    expect((await post(`${base}/v1/streams/order-2`, ev, reader)).status).toBe(403);
    expect((await get(`${base}/v1/streams/order-1`, reader)).status).toBe(200);
    expect((await get(`${base}/v1/streams/order-2`, reader)).status).toBe(404);

    const admin = bearer('admin-key-0123456789');
    expect((await post(`${base}/v1/streams/user-1`, ev, admin)).status).toBe(201);
    expect((await get(`${base}/v1/all`, admin)).status).toBe(200);
    expect((await get(`${base}/metrics`, admin)).status).toBe(200);
    // EventSource cannot send headers: the key may come as ?api_key=.
    const sse = await fetch(`${base}/v1/streams/order-1/subscribe?api_key=orders-key-0123456789`);
    expect(sse.status).toBe(200);
    await sse.body?.cancel();
  });
});

describe('the CLI against a server with keys', () => {
  it('--api-key authenticates; without it the CLI fails with Unauthorized', async () => {
    const dir = tempDir();
    const server = await startServerProcess(['--store', `sqlite:${join(dir.path, 'cli-auth.db')}`], {
      LOGLINE_API_KEYS: JSON.stringify(KEYS),
    });
    const cli = (args: string[]) => {
      const child = spawn(process.execPath, cliArgs(...args, '--server', server.url), {
        cwd: ROOT,
        env: { ...process.env, LOGLINE_API_KEY: '' },
      });
      let out = '';
      child.stdout.on('data', (chunk) => {
        out += chunk;
      });
      child.stderr.on('data', (chunk) => {
        out += chunk;
      });
      return new Promise<{ code: number | null; out: string }>((resolve) => child.on('exit', (code) => resolve({ code, out })));
    };
    const [allowed, anonymous, outside] = await Promise.all([
      cli(['append', 'order-9', '{"type":"Placed","data":{}}', '--api-key', 'orders-key-0123456789']),
      cli(['stats']),
      cli(['append', 'user-9', '{"type":"Registered","data":{}}', '--api-key', 'orders-key-0123456789']),
    ]);
    expect(allowed).toMatchObject({ code: 0 });
    expect(JSON.parse(allowed.out)).toMatchObject({ streamVersion: 1, events: 1 });
    expect(anonymous.code).toBe(1);
    expect(anonymous.out).toMatch(/Unauthorized/);
    expect(outside.code).toBe(1);
    expect(outside.out).toMatch(/Forbidden/);
    await server.stop();
    dir.remove();
  });
});

/** Runs `logline serve` expecting it to refuse; returns exit code and stderr. */
function refuse(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, cliArgs('serve', '--port', '0', '--store', 'memory:', ...args), {
    cwd: ROOT,
    env: { ...process.env, LOGLINE_API_KEYS: '', LOGLINE_API_KEYS_FILE: '', ...env },
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stderr })));
}

describe('binding without keys', () => {
  it('refuses a non-loopback host without keys, unless --insecure', async () => {
    const refused = await refuse(['--host', '0.0.0.0']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/not a loopback address and no API keys/);
    const insecure = await startServerProcess(['--store', 'memory:', '--host', '0.0.0.0', '--insecure'], { LOGLINE_API_KEYS: '' });
    expect(insecure.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/);
    expect(await insecure.stop()).toBe(0);
  });

  it('rejects a bad keys file clearly', async () => {
    const refused = await refuse([], { LOGLINE_API_KEYS: '{"keys":[{"name":"x","key":"short"}]}' });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/at least 16 characters/);
  });

  it('on loopback without keys, answers only loopback Host names (no DNS rebinding)', async () => {
    const server = await startServerProcess(['--store', 'memory:'], { LOGLINE_API_KEYS: '' });
    const port = new URL(server.url).port;
    const answer = (host: string, method = 'GET', path = '/v1/stats') =>
      new Promise<{ status: number; position: unknown }>((resolve, reject) => {
        request({ host: '127.0.0.1', port, method, path, headers: { host, 'content-type': 'application/json' } }, (res) => {
          res.resume();
          resolve({ status: res.statusCode ?? 0, position: res.headers['logline-position'] });
        })
          .on('error', reject)
          .end(method === 'POST' ? '{"events":[]}' : undefined);
      });
    const status = async (host: string) => (await answer(host)).status;
    expect(await status(`127.0.0.1:${port}`)).toBe(200);
    expect(await status(`localhost:${port}`)).toBe(200);
    expect(await status('evil.example:80')).toBe(403);
    // A write refused for its Host learns nothing about the store (no head position).
    expect(await answer('evil.example:80', 'POST', '/v1/streams/s-1')).toEqual({ status: 403, position: undefined });
    expect(await answer(`127.0.0.1:${port}`, 'POST', '/v1/streams/s-1')).toMatchObject({ status: 201, position: '0' });
    await server.stop();
  });
});
