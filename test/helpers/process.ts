/** Child processes for multi-process and crash tests: TypeScript files run through tsx. */
import { type ChildProcess, spawn } from 'node:child_process';

export function spawnTs(file: string, args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs a TypeScript file to completion; resolves with its stdout, rejects on a non-zero exit. */
export function runTs(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawnTs(file, args);
    let out = '';
    let err = '';
    child.stdout?.on('data', (chunk) => (out += chunk));
    child.stderr?.on('data', (chunk) => (err += chunk));
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${file} exited with ${code}: ${err}`))));
  });
}

/** Calls `onLine` for each stdout line of a child. */
export function onLines(child: ChildProcess, onLine: (line: string) => void): void {
  let buffer = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let newline = buffer.indexOf('\n');
    while (newline >= 0) {
      onLine(buffer.slice(0, newline));
      buffer = buffer.slice(newline + 1);
      newline = buffer.indexOf('\n');
    }
  });
}
