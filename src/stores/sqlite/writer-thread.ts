/**
 * The SQLite store's writer thread: its own connection to the database file, with the store's
 * settings, writing the batches the store sends it (createWriter, writer.ts). better-sqlite3 is
 * synchronous, so on the main thread every durable COMMIT stopped the event loop for the length
 * of the fsync: no request was read meanwhile and the next coalesced batch could not grow. Here
 * the main thread keeps serving (and reading, on its own connection, which in WAL mode sees
 * every commit once it is done) while the thread syncs. An append is still acknowledged only
 * after its COMMIT returned, and a killed process leaves what SQLite's journal leaves: all of a
 * transaction or none of it.
 *
 * The thread's code is sent as source (an eval worker), so it runs the same under Node, tsx and
 * vitest without a loader: createWriter and threadMain may use nothing from outside their bodies.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { type BatchRun, createWriter, type WriteRequest } from './writer.js';

export interface WriterThreadSettings {
  path: string;
  synchronous: string;
  busyTimeoutMs: number;
}

/** A batch's answer from the thread: how it ran, or the error that kept it from beginning. */
export type ThreadRun = { run: BatchRun } | { threw: unknown };

export interface WriterThread {
  write(batch: WriteRequest[]): Promise<ThreadRun>;
  /** Runs a PRAGMA on the thread's connection (settings in effect where appends are written). */
  pragma(text: string): Promise<unknown>;
  close(): Promise<void>;
}

type Request = { id: number; batch: WriteRequest[] } | { id: number; pragma: string } | { id: number; close: true };
type Reply = { id: number; value?: unknown; error?: ThreadError };

/** An error as it crosses the thread boundary: SQLite's code is what the store acts on. */
interface ThreadError {
  message: string;
  code?: string;
}

/** The thread's entry point, run as source in the worker (see the module comment). */
function threadMain(create: typeof createWriter): void {
  const { parentPort, workerData } = require('node:worker_threads') as typeof import('node:worker_threads');
  const settings = workerData as WriterThreadSettings & { driver: string };
  const Driver = require(settings.driver) as typeof import('better-sqlite3');
  const db = new Driver(settings.path, { timeout: settings.busyTimeoutMs });
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${settings.synchronous}`);
  const writer = create(db);
  const plain = (error: unknown): ThreadError => ({
    message: error instanceof Error ? error.message : String(error),
    code: (error as { code?: string } | undefined)?.code,
  });
  parentPort?.on('message', (request: Request) => {
    let reply: Reply;
    try {
      if ('batch' in request) {
        let value: ThreadRun;
        try {
          const run = writer.writeBatch(request.batch);
          value = {
            run: run.ended
              ? { ...run, error: plain(run.error) }
              : {
                  ended: false,
                  outcomes: run.outcomes.map((outcome) =>
                    outcome.kind === 'failed' ? { kind: 'failed', error: plain(outcome.error) } : outcome,
                  ),
                },
          };
        } catch (error) {
          value = { threw: plain(error) };
        }
        reply = { id: request.id, value };
      } else if ('pragma' in request) {
        reply = { id: request.id, value: db.pragma(request.pragma, { simple: true }) };
      } else {
        db.close();
        reply = { id: request.id };
      }
    } catch (error) {
      reply = { id: request.id, error: plain(error) };
    }
    parentPort.postMessage(reply);
  });
}

/** An error from the thread as an Error again, with SQLite's code (describeWriteFailure reads it). */
const revive = (error: ThreadError): Error => Object.assign(new Error(error.message), error.code === undefined ? {} : { code: error.code });

const reviveRun = (answer: ThreadRun): ThreadRun => {
  if ('threw' in answer) return { threw: revive(answer.threw as ThreadError) };
  const { run } = answer;
  if (run.ended) return { run: { ...run, error: revive(run.error as ThreadError) } };
  return {
    run: {
      ended: false,
      outcomes: run.outcomes.map((outcome) =>
        outcome.kind === 'failed' ? { kind: 'failed', error: revive(outcome.error as ThreadError) } : outcome,
      ),
    },
  };
};

/**
 * Starts the thread. It holds the process open only while a request is in flight, like the
 * store's own connection (which holds nothing open). When the thread dies, every request in
 * flight is rejected with the reason: the store then settles by what the log holds.
 */
export function startWriterThread(settings: WriterThreadSettings): WriterThread {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  // tsx names functions with __name(); the eval worker has no such helper: a no-op stands in.
  const source = `const __name = (f) => f;\n(${threadMain.toString()})(${createWriter.toString()});`;
  const worker = new Worker(source, { eval: true, workerData: { ...settings, driver } });
  worker.unref();
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: unknown) => void }>();
  let nextId = 0;
  let gone: Error | undefined;
  const fail = (error: Error) => {
    gone ??= error;
    for (const { reject } of pending.values()) reject(gone);
    pending.clear();
  };
  worker.on('error', (error) => fail(error));
  worker.on('exit', (code) => fail(new Error(`the SQLite writer thread exited (code ${code})`)));
  worker.on('message', (reply: Reply) => {
    const waiter = pending.get(reply.id);
    if (!waiter) return;
    pending.delete(reply.id);
    if (pending.size === 0) worker.unref();
    if (reply.error) waiter.reject(revive(reply.error));
    else waiter.resolve(reply.value);
  });
  const ask = (request: Omit<Request, 'id'>): Promise<unknown> => {
    if (gone) return Promise.reject(gone);
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ ...request, id });
    });
  };
  return {
    write: async (batch) => reviveRun((await ask({ batch })) as ThreadRun),
    pragma: (text) => ask({ pragma: text }),
    async close() {
      if (!gone) await ask({ close: true }).catch(() => {});
      await worker.terminate();
    },
  };
}
