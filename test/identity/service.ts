/**
 * The identity service (apps/identity) as a real process for black-box tests:
 * `node --import tsx apps/identity/src/main.ts --store … --port 0`, its URL read from the
 * `{"listening":…}` line. It imports Logline by package name, so `dist/` must be built
 * (`npm test` builds before it runs the tests).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { freshSchemaUrl, requirePostgres } from '../helpers/postgres.js';
import { tempDir } from '../server/process.js';

export const ROOT = new URL('../../', import.meta.url).pathname;
const MAIN = join(ROOT, 'apps/identity/src/main.ts');

export interface IdentityProcess {
  url: string;
  child: ChildProcess;
  stderr: () => string;
  /** SIGTERM (or `signal`), resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startIdentity(store: string, args: string[] = []): Promise<IdentityProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, '--store', store, '--port', '0', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      try {
        const { listening } = JSON.parse(line) as { listening?: { host: string; port: number } };
        if (listening) resolve(`http://${listening.host}:${listening.port}`);
      } catch {
        // not the listening line
      }
    });
    void exited.then((code) => reject(new Error(`identity service exited with ${code} before listening: ${stderr}`)));
  });
  return {
    url,
    child,
    stderr: () => stderr,
    stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

export interface Reply<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: T;
}

/** One JSON request; the body parsed when there is one. */
export async function call<T = Record<string, unknown>>(
  base: string,
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<Reply<T>> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}), ...options.headers },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: (text ? JSON.parse(text) : undefined) as T };
}

/** A store for one test file: a SQLite file in a temp folder, or a fresh PostgreSQL schema. */
export interface TestStore {
  name: 'sqlite' | 'postgres';
  url: string;
  drop(): Promise<void>;
}

export async function sqliteStore(file = 'identity.db'): Promise<TestStore> {
  const dir = tempDir('identity-');
  return { name: 'sqlite', url: `sqlite:${join(dir.path, file)}`, drop: async () => dir.remove() };
}

export async function postgresStore(): Promise<TestStore> {
  const { url, drop } = await freshSchemaUrl();
  return { name: 'postgres', url, drop };
}

/**
 * The stores the black-box tests run each behaviour on: `[name, open, enabled]`, SQLite always,
 * PostgreSQL when it answers (with CI=true an unreachable PostgreSQL fails: requirePostgres).
 */
export async function testStores(): Promise<Array<readonly [TestStore['name'], () => Promise<TestStore>, boolean]>> {
  return [
    ['sqlite', () => sqliteStore(), true],
    ['postgres', postgresStore, await requirePostgres()],
  ];
}

export const position = (reply: Reply<unknown>): bigint => BigInt(reply.headers.get('logline-position') ?? '-1');
