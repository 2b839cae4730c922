/**
 * Real server processes for black-box tests: `node dist/cli/main.js serve --port 0 …`, with the
 * URL read from its "listening" log line.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const ROOT = new URL('../../', import.meta.url).pathname;
/**
 * The CLI as the tests start it: the build `npm test` makes before it runs them. Under tsx each
 * process took ~0.9 s to start against ~0.2 s (the CLI tests start over a hundred). After changing
 * src/, run `npm run build` before running these tests alone (cliArgs says so).
 */
const CLI = join(ROOT, 'dist/cli/main.js');

let built = false;
/** Fails when a source file is newer than the build the tests would run (checked once per process). */
function assertBuilt(): void {
  if (built) return;
  const at = existsSync(CLI) ? statSync(CLI).mtimeMs : 0;
  const newer = (dir: string): string | undefined => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      const found = entry.isDirectory() ? newer(path) : statSync(path).mtimeMs > at ? path : undefined;
      if (found) return found;
    }
    return undefined;
  };
  const stale = newer(join(ROOT, 'src'));
  if (stale) throw new Error(`${stale} is newer than dist/: run npm run build (npm test does) before these tests`);
  built = true;
}

/** The arguments of `node` that run the CLI with `args`. */
export function cliArgs(...args: string[]): string[] {
  assertBuilt();
  return [CLI, ...args];
}

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  /** Every stdout line (pino JSON) so far. */
  logs: string[];
  stderr: () => string;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function tempDir(prefix = 'logline-srv-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export function startServerProcess(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  return startListeningProcess(cliArgs('serve', '--port', '0', ...args), env);
}

/**
 * Runs `node <args>` (`node --import tsx <args>` for a TypeScript file) and waits for its
 * "listening" log line (a server, or a bench's bare baseline).
 */
export async function startListeningProcess(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, [...(args[0]?.endsWith('.ts') ? ['--import', 'tsx'] : []), ...args], {
    cwd: ROOT,
    env: { ...process.env, LOGLINE_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  let stderr = '';
  child.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      logs.push(line);
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === 'listening' && entry.url) resolve(entry.url);
      } catch {
        // not a log line
      }
    });
    void exited.then((code) => reject(new Error(`server exited with ${code} before listening: ${stderr}`)));
  });
  return {
    url,
    child,
    logs,
    stderr: () => stderr,
    stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Appends through the API; returns status, headers and parsed body. */
export async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

export async function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: Record<string, unknown>; text: string }> {
  const response = await fetch(url, { headers });
  const text = await response.text();
  let body: Record<string, unknown> = {};
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    body = { text };
  }
  return { status: response.status, headers: response.headers, body, text };
}
