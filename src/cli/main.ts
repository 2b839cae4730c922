#!/usr/bin/env node
/**
 * The `logline` command line. Every command but `serve` acts on a store opened directly
 * (--store URL) or on a running server (--server http://…); output is JSON / NDJSON on stdout,
 * progress bars go to stderr and only when it is a terminal.
 */
import { once } from 'node:events';
import { createReadStream, createWriteStream, fchmodSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Command, InvalidArgumentError as CommanderArgumentError, Option } from 'commander';
import { InvalidArgumentError, LoglineError } from '../core/errors.js';
import { SUBJECT_FORGOTTEN, SUBJECTS_STREAM } from '../core/personal-data.js';
import type { ExpectedVersion, NewEvent, RecordedEvent, StreamLifecycleInfo, SubjectKeyRecord } from '../core/types.js';
import { stringify, toWire } from '../server/json.js';
import { startProgress } from './progress.js';
import { appendAt, applyLifecycle, isLifecycleLine, parseLifecycleLine } from './restore.js';
import { openTarget, RemoteError, type Target } from './targets.js';

const int = (name: string) => (value: string) => {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new CommanderArgumentError(`${name} must be a non-negative integer`);
  return n;
};

const program = new Command('logline').description('Logline event store: server and command line').version('0.1.0').showHelpAfterError();

const targetOptions = (command: Command) =>
  command
    .addOption(
      new Option(
        '--store <url>',
        'store URL: sqlite:<path>, postgres://…, nats://…, memory: (default sqlite:./logline-data/logline.db)',
      ).env('LOGLINE_STORE'),
    )
    .addOption(new Option('--server <url>', 'a running Logline server, e.g. http://127.0.0.1:7373').env('LOGLINE_SERVER'))
    .addOption(new Option('--api-key <key>', 'API key for --server').env('LOGLINE_API_KEY'));

interface TargetFlags {
  store?: string;
  server?: string;
  apiKey?: string;
}

async function withTarget(flags: TargetFlags, action: (target: Target) => Promise<void>): Promise<void> {
  if (flags.store && flags.server) throw new InvalidArgumentError('target', 'both --store and --server were given', 'one of them');
  const target = await openTarget(flags);
  try {
    await action(target);
  } finally {
    await target.close();
  }
}

const print = (value: unknown) => process.stdout.write(`${stringify(value)}\n`);

/** Writes one line to stdout, waiting when the pipe is full so memory stays flat on big exports. */
const writeLine = (line: string): Promise<void> | undefined =>
  process.stdout.write(`${line}\n`) ? undefined : new Promise((resolve) => process.stdout.once('drain', resolve));

async function* ndjsonLines(file: string | undefined): AsyncGenerator<{ value: unknown; line: number; bytes: number }> {
  const input = file && file !== '-' ? createReadStream(file) : process.stdin;
  let line = 0;
  for await (const text of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) {
    line++;
    if (text.trim() === '') continue;
    try {
      yield { value: JSON.parse(text), line, bytes: Buffer.byteLength(text) + 1 };
    } catch (error) {
      throw new InvalidArgumentError(`line ${line}`, `it is not JSON (${(error as Error).message})`, 'one JSON value per line (NDJSON)');
    }
  }
}

const fileSize = (file: string | undefined) => (file && file !== '-' ? statSync(file).size : undefined);

function parseExpected(value: string | undefined): ExpectedVersion | undefined {
  if (value === undefined) return undefined;
  if (value === 'any' || value === 'no_stream' || value === 'exists') return value;
  if (/^\d+$/.test(value)) return Number(value);
  throw new InvalidArgumentError('--expected-version', `got '${value}'`, "'any', 'no_stream', 'exists' or a stream version");
}

function grpcTls(certFile: string | undefined, keyFile: string | undefined) {
  if (!certFile && !keyFile) return undefined;
  if (!certFile || !keyFile) {
    throw new InvalidArgumentError('--grpc-tls-cert/--grpc-tls-key', 'only one of them was given', 'both (certificate and key) or neither');
  }
  return { certFile, keyFile };
}

// --- serve ---
program
  .command('serve')
  .description('run the HTTP server (API, SSE, admin page, /metrics)')
  .addOption(new Option('--store <url>', 'store URL').env('LOGLINE_STORE').default('sqlite:./logline-data/logline.db'))
  .addOption(new Option('--host <host>', 'interface to bind').env('LOGLINE_HOST').default('127.0.0.1'))
  .addOption(new Option('--port <port>', 'port (0 = any free port)').env('LOGLINE_PORT').default(7373).argParser(int('--port')))
  .option('--keys <file>', 'API keys file (JSON); also LOGLINE_API_KEYS_FILE or LOGLINE_API_KEYS')
  .option('--insecure', 'allow binding a non-loopback interface without API keys')
  .option('--demo', 'seed a small demo dataset when the store is empty')
  .option('--connectors <file>', 'connectors file (JSON): deliver the log to webhooks, RabbitMQ, NATS, MQTT (docs/connectors.md)')
  .addOption(
    new Option('--sse-buffer-bytes <n>', 'bytes buffered per SSE client before it counts as stalled').argParser(int('--sse-buffer-bytes')),
  )
  .addOption(new Option('--sse-stall-ms <n>', 'how long a stalled SSE client is kept').argParser(int('--sse-stall-ms')))
  .addOption(new Option('--heartbeat-ms <n>', 'SSE heartbeat interval').argParser(int('--heartbeat-ms')))
  .addOption(
    new Option('--max-inflight-bytes <n>', 'memory budget for appends in flight, 4 bytes per body byte (default 256 MiB)').argParser(
      int('--max-inflight-bytes'),
    ),
  )
  .addOption(
    new Option('--max-queued-appends <n>', 'appends waiting for the store before new ones get 503 (default 1000)').argParser(
      int('--max-queued-appends'),
    ),
  )
  .addOption(new Option('--shutdown-grace-ms <n>', 'how long shutdown waits for open requests').argParser(int('--shutdown-grace-ms')))
  .addOption(
    new Option('--min-position-timeout-ms <n>', 'longest wait for Logline-Min-Position (default 5000)').argParser(
      int('--min-position-timeout-ms'),
    ),
  )
  .addOption(
    new Option('--grpc-port <port>', 'also serve the KurrentDB gRPC protocol on this port (0 = any free port; see docs/kurrentdb.md)')
      .env('LOGLINE_GRPC_PORT')
      .argParser(int('--grpc-port')),
  )
  .option('--grpc-tls-cert <file>', 'PEM certificate chain for the gRPC port (with --grpc-tls-key; default plaintext)')
  .option('--grpc-tls-key <file>', 'PEM private key for the gRPC port')
  .addOption(
    new Option('--scavenge-interval <seconds>', 'remove events hidden by retention or deletes this often (default: never)')
      .env('LOGLINE_SCAVENGE_INTERVAL')
      .argParser(int('--scavenge-interval')),
  )
  .action(async (flags) => {
    const sse = Object.fromEntries(
      Object.entries({ bufferBytes: flags.sseBufferBytes, stallMs: flags.sseStallMs, heartbeatMs: flags.heartbeatMs }).filter(
        ([, v]) => v !== undefined,
      ),
    );
    const admission = Object.fromEntries(
      Object.entries({ maxInFlightBytes: flags.maxInflightBytes, maxQueuedAppends: flags.maxQueuedAppends }).filter(
        ([, v]) => v !== undefined,
      ),
    );
    // Signals are handled from the start: a SIGTERM during start-up still shuts down cleanly.
    let server: { url: string; close(): Promise<void> } | undefined;
    let stopping = false;
    const stop = () => {
      stopping = true;
      server?.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    // Loaded on demand: the other commands start faster without the server's dependencies.
    const { startServer } = await import('../server/serve.js');
    server = await startServer({
      store: flags.store,
      host: flags.host,
      port: flags.port,
      keysFile: flags.keys,
      insecure: flags.insecure,
      demo: flags.demo,
      sse,
      admission,
      shutdownGraceMs: flags.shutdownGraceMs,
      minPositionTimeoutMs: flags.minPositionTimeoutMs,
      grpcPort: flags.grpcPort,
      grpcTls: grpcTls(flags.grpcTlsCert, flags.grpcTlsKey),
      connectorsFile: flags.connectors,
      scavengeIntervalSeconds: flags.scavengeInterval,
    });
    if (stopping) stop();
    if (process.stderr.isTTY) process.stderr.write(`Logline is listening on ${server.url} (admin page: ${server.url}/)\n`);
  });

// --- append ---
targetOptions(
  program
    .command('append <stream> [json]')
    .description(
      'append events: inline JSON (one event, an array, or {"events":[…]}: one atomic append) or NDJSON (one event per line) from --file or stdin',
    )
    .option('-f, --file <file>', 'NDJSON file of events ("-" = stdin)')
    .option('--expected-version <v>', 'any | no_stream | exists | n (inline JSON, or the first NDJSON batch)')
    .addOption(new Option('--batch <n>', 'events per append when reading NDJSON').default(500).argParser(int('--batch'))),
).action(async (stream: string, inline: string | undefined, flags) => {
  await withTarget(flags, async (target) => {
    let expected = parseExpected(flags.expectedVersion);
    if (inline !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(inline);
      } catch (error) {
        throw new InvalidArgumentError(
          'json',
          `it is not JSON (${(error as Error).message})`,
          'an event, an array of events or {"events":[…]}',
        );
      }
      const events = (Array.isArray(parsed) ? parsed : ((parsed as { events?: unknown }).events ?? [parsed])) as NewEvent[];
      const result = await target.append(stream, events, expected);
      print({ ...result, events: events.length });
      return;
    }
    const progress = startProgress({ total: fileSize(flags.file), unit: 'bytes' });
    let batch: NewEvent[] = [];
    let last = { streamVersion: 0, position: 0n };
    let count = 0;
    let bytesRead = 0;
    const flush = async () => {
      if (!batch.length) return;
      last = await target.append(stream, batch, expected);
      expected = undefined;
      count += batch.length;
      batch = [];
    };
    for await (const { value, bytes } of ndjsonLines(flags.file)) {
      batch.push(value as NewEvent);
      bytesRead += bytes;
      if (batch.length >= flags.batch) await flush();
      progress.update(bytesRead, count);
    }
    await flush();
    progress.update(bytesRead, count);
    progress.finish(`appended ${count} events to ${stream}`);
    print({ ...last, events: count });
  });
});

// --- read ---
targetOptions(
  program
    .command('read <stream>')
    .description('print a stream as NDJSON')
    .addOption(new Option('--from <version>', 'first stream version').argParser(int('--from')))
    .addOption(new Option('--limit <n>', 'at most n events').argParser(int('--limit')))
    .option('--backward', 'newest first'),
).action(async (stream: string, flags) => {
  await withTarget(flags, async (target) => {
    for await (const event of target.read(stream, { from: flags.from, limit: flags.limit, backward: flags.backward })) {
      await writeLine(stringify(toWire(event)));
    }
  });
});

// --- tail ---
targetOptions(
  program
    .command('tail [stream]')
    .description('follow $all (or one stream) live as NDJSON; Ctrl-C to stop')
    .option('--from <position>', "start after this position ('start' = from the beginning; default: only new events)"),
).action(async (stream: string | undefined, flags) => {
  const from = flags.from === undefined ? 'end' : flags.from === 'start' ? 0n : /^\d+$/.test(flags.from) ? BigInt(flags.from) : undefined;
  if (from === undefined) throw new InvalidArgumentError('--from', `got '${flags.from}'`, "'start' or a position");
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  process.once('SIGTERM', () => abort.abort());
  await withTarget(flags, async (target) => {
    for await (const event of target.subscribe(stream, from, abort.signal)) {
      await writeLine(stringify(toWire(event)));
    }
  });
});

// --- export ---
targetOptions(
  program
    .command('export')
    .description(
      'write the log as NDJSON, as of one point in time: each stream lifecycle (retention settings, deletes) first, then one RecordedEvent per line; personal fields stay sealed',
    )
    .option(
      '--until <position|time>',
      'last position to include, or an ISO-8601 time: events recorded at or before it (default: the head now)',
    )
    .option('-o, --output <file>', 'write here instead of stdout'),
).action(async (flags) => {
  await withTarget(flags, async (target) => {
    const head = await target.headPosition();
    let until = head;
    let untilTime: string | undefined;
    if (flags.until !== undefined) {
      if (/^\d+$/.test(flags.until)) until = BigInt(flags.until) < head ? BigInt(flags.until) : head;
      else if (!Number.isNaN(Date.parse(flags.until))) untilTime = new Date(flags.until).toISOString();
      else throw new InvalidArgumentError('--until', `got '${flags.until}'`, 'a position or an ISO-8601 time');
    }
    const out = flags.output ? (await import('node:fs')).createWriteStream(flags.output) : undefined;
    const write = (line: string) =>
      out ? (out.write(`${line}\n`) ? undefined : new Promise<void>((resolve) => out.once('drain', resolve))) : writeLine(line);
    // Settings and deletions have no history: an export as of an earlier point (--until) leaves
    // them out rather than apply today's to yesterday's events. Its streams still start where
    // their first kept event does.
    let lifecycles = 0;
    if (flags.until === undefined) {
      for await (const lifecycle of target.listLifecycles()) {
        await write(stringify({ lifecycle }));
        lifecycles++;
      }
    }
    const progress = startProgress({ total: Number(until), unit: 'positions' });
    let exported = 0;
    for await (const event of target.readAll(0n, until)) {
      progress.update(Number(event.position), exported);
      // recordedAt is transaction time: an event recorded after the cut-off was not known then.
      if (untilTime && event.recordedAt > untilTime) continue;
      await write(stringify(toWire(event)));
      exported++;
    }
    if (out) await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
    progress.update(Number(until), exported);
    progress.finish(`exported ${exported} events up to position ${until}${lifecycles ? ` and ${lifecycles} stream lifecycles` : ''}`);
  });
});

// --- import ---
targetOptions(
  program
    .command('import <file>')
    .description(
      'append an NDJSON export ("-" = stdin) with its stream lifecycles (retention settings, deletes); idempotent: event ids are the key, importing twice adds nothing',
    )
    .addOption(new Option('--batch <n>', 'events per append').default(500).argParser(int('--batch'))),
).action(async (file: string, flags) => {
  await withTarget(flags, async (target) => {
    const before = (await target.stats()).events;
    const progress = startProgress({ total: fileSize(file), unit: 'bytes' });
    let batch: RecordedEvent[] = [];
    let read = 0;
    /** Subjects an export's `$subjects` notices forgot, forgotten here too (`unknown`: a server that never knew them). */
    const forgotten = { replayed: 0, unknown: 0 };
    /** The export's lifecycle lines, applied once every event is in (docs/lifecycle.md#restoring-retention-and-deletions). */
    const lifecycles = new Map<string, StreamLifecycleInfo>();
    let started = 0;
    let bytesRead = 0;
    const flush = async () => {
      const first = batch[0];
      if (!first) return;
      const events: NewEvent[] = batch.map(({ id, type, data, metadata, occurredAt }) => ({ id, type, data, metadata, occurredAt }));
      // Each stream keeps its versions: the batch must land exactly where it stood in the export,
      // and a batch already imported is recognised as a retry (same ids, same place) and adds nothing.
      if ((await appendAt(target, first.streamId, events, first.streamVersion - 1)).started) started++;
      batch = [];
    };
    for await (const { value, line, bytes } of ndjsonLines(file)) {
      if (isLifecycleLine(value)) {
        const lifecycle = parseLifecycleLine(value, line);
        lifecycles.set(lifecycle.streamId, lifecycle);
        bytesRead += bytes;
        continue;
      }
      const event = value as RecordedEvent;
      if (typeof event?.streamId !== 'string' || !Number.isSafeInteger(event.streamVersion)) {
        throw new InvalidArgumentError(
          `line ${line}`,
          'it has no streamId/streamVersion',
          'a RecordedEvent as written by `logline export`',
        );
      }
      if (event.streamId === SUBJECTS_STREAM && event.type === SUBJECT_FORGOTTEN) {
        // Nobody appends to the system stream: the notice is replayed as what it records, in log order.
        await flush();
        const subject = (event.data as { subject?: unknown })?.subject;
        if (typeof subject !== 'string') {
          throw new InvalidArgumentError(
            `line ${line}`,
            'a SubjectForgotten notice without data.subject',
            'a notice as written by `logline export`',
          );
        }
        if (await target.restoreForgotten(subject, event.recordedAt)) forgotten.replayed++;
        else forgotten.unknown++;
        read++;
        bytesRead += bytes;
        progress.update(bytesRead, read);
        continue;
      }
      const previous = batch[batch.length - 1];
      // Batch boundaries depend only on the file (stream changes and version multiples), so a
      // re-import meets the same batches.
      if (previous && (previous.streamId !== event.streamId || (event.streamVersion - 1) % flags.batch === 0)) await flush();
      batch.push(event);
      read++;
      bytesRead += bytes;
      progress.update(bytesRead, read);
    }
    await flush();
    // After the events: settings that hide events, and deletes, would refuse or hide the appends.
    let applied = 0;
    for (const lifecycle of lifecycles.values()) if (await applyLifecycle(target, lifecycle)) applied++;
    const after = (await target.stats()).events;
    const forgottenNote = forgotten.replayed || forgotten.unknown ? `; ${forgotten.replayed} subjects forgotten` : '';
    const unknownNote = forgotten.unknown ? `, ${forgotten.unknown} unknown to the server` : '';
    const lifecycleNote = lifecycles.size ? `; ${lifecycles.size} stream lifecycles, ${applied} applied` : '';
    progress.finish(`imported ${read} events (${after - before} added${forgottenNote}${unknownNote}${lifecycleNote})`);
    print({
      read,
      added: after - before,
      ...(lifecycles.size ? { lifecycles: lifecycles.size, lifecyclesApplied: applied } : {}),
      ...(started ? { streamsStarted: started } : {}),
      ...(forgotten.replayed ? { forgotten: forgotten.replayed } : {}),
      ...(forgotten.unknown ? { unknownSubjects: forgotten.unknown } : {}),
    });
  });
});

// --- keys: subject keys of personal data (docs/lifecycle.md#backups-and-restores) ---
const keys = program
  .command('keys')
  .description('back up and restore the subject keys of personal data (an export keeps personal fields sealed); direct store access only');

targetOptions(
  keys
    .command('export')
    .description(
      'write every subject key as NDJSON (format logline-subject-keys/1), in subject order; as sensitive as the personal data unless a master key wraps the keys',
    )
    .option('-o, --output <file>', 'write here instead of stdout (mode 0600: readable by its owner only)'),
).action(async (flags) => {
  await withTarget(flags, async (target) => {
    // Called before the file is made: a --server target refuses here.
    const records = target.exportSubjectKeys();
    const out = flags.output ? createWriteStream(flags.output, { mode: 0o600 }) : undefined;
    // An existing file keeps its mode when opened: narrowed too, before any key is written.
    if (out) fchmodSync((await once(out, 'open'))[0] as number, 0o600);
    const write = (line: string) =>
      out ? (out.write(`${line}\n`) ? undefined : new Promise<void>((resolve) => out.once('drain', resolve))) : writeLine(line);
    const progress = startProgress({ total: undefined, unit: 'bytes', noun: 'subject keys' });
    const counts = { exported: 0, forgotten: 0, wrapped: 0 };
    let bytes = 0;
    for await (const record of records) {
      const line = JSON.stringify(record);
      await write(line);
      bytes += Buffer.byteLength(line) + 1;
      counts.exported++;
      if (record.forgottenAt !== undefined) counts.forgotten++;
      if (record.wrapped) counts.wrapped++;
      progress.update(bytes, counts.exported);
    }
    if (out) await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
    progress.finish(`exported ${counts.exported} subject keys (${counts.forgotten} forgotten, ${counts.wrapped} wrapped)`);
    // stdout holds the keys themselves unless -o was given.
    if (out) print(counts);
  });
});

targetOptions(
  keys
    .command('import <file>')
    .description(
      'restore subject keys from `logline keys export` ("-" = stdin): new subjects are added, the same key again changes nothing, forget wins, a different key is a conflict (reported, left alone)',
    ),
).action(async (file: string, flags) => {
  await withTarget(flags, async (target) => {
    const progress = startProgress({ total: fileSize(file), unit: 'bytes', noun: 'subject keys' });
    let read = 0;
    let bytesRead = 0;
    let line = 0;
    async function* records(): AsyncGenerator<SubjectKeyRecord> {
      for await (const next of ndjsonLines(file)) {
        line = next.line;
        read++;
        bytesRead += next.bytes;
        progress.update(bytesRead, read);
        yield next.value as SubjectKeyRecord;
      }
    }
    let result: Awaited<ReturnType<Target['importSubjectKeys']>>;
    try {
      result = await target.importSubjectKeys(records());
    } catch (error) {
      // The records before it were imported; a repeated import skips them (same key: unchanged).
      // A line that is not JSON names itself (ndjsonLines); a bad record only knows its number.
      const named = error instanceof InvalidArgumentError && String(error.details.argument).startsWith('line ');
      if (line > 0 && !named) process.stderr.write(`logline: stopped at line ${line} of ${file === '-' ? 'stdin' : file}\n`);
      throw error;
    }
    const { imported, unchanged, forgotten, conflicts } = result;
    progress.finish(
      `imported ${read} subject keys (${imported} new, ${unchanged} unchanged, ${forgotten} forgotten, ${conflicts.length} conflicts)`,
    );
    if (conflicts.length) {
      const shown = conflicts.slice(0, 10).join(', ');
      process.stderr.write(
        `logline: ${conflicts.length} subject(s) hold a different key in this store and were left alone: ${shown}${conflicts.length > 10 ? ', …' : ''}\n`,
      );
    }
    print({ read, ...result });
  });
});

// --- stats ---
targetOptions(program.command('stats').description('event and stream counts, head position')).action(async (flags) => {
  await withTarget(flags, async (target) => {
    print(await target.stats());
  });
});

// --- forget ---
targetOptions(
  program
    .command('forget <subject>')
    .description(
      "forget a person: destroy the subject's key, so its personal fields read as removed everywhere (crypto-shredding; needs the admin right on --server)",
    ),
).action(async (subject: string, flags) => {
  await withTarget(flags, async (target) => {
    print(await target.forget(subject));
  });
});

// --- retention and deletion (docs/lifecycle.md#retention-and-deletion) ---
targetOptions(
  program
    .command('metadata <stream>')
    .description("print a stream's metadata (retention, deletion); with options, replace it first")
    .addOption(new Option('--max-count <n>', 'keep only the newest n events').argParser(int('--max-count')))
    .addOption(new Option('--max-age <seconds>', 'keep only events recorded less than this long ago').argParser(int('--max-age')))
    .addOption(new Option('--truncate-before <version>', 'hide events below this stream version').argParser(int('--truncate-before')))
    .option('--clear', 'remove every retention setting'),
).action(async (stream: string, flags) => {
  await withTarget(flags, async (target) => {
    const metadata = { maxCount: flags.maxCount, maxAgeSeconds: flags.maxAge, truncateBefore: flags.truncateBefore };
    const given = Object.values(metadata).some((value) => value !== undefined);
    if (given && flags.clear)
      throw new InvalidArgumentError('--clear', 'it was given with retention settings', 'either --clear or settings');
    if (given || flags.clear) {
      await target.setMetadata(stream, Object.fromEntries(Object.entries(metadata).filter(([, value]) => value !== undefined)));
    }
    print(await target.getMetadata(stream));
  });
});

targetOptions(
  program
    .command('delete <stream>')
    .description('delete a stream: soft (reads find nothing, a later append continues its versions) or --hard (never written again)')
    .option('--hard', 'tombstone: every later append fails with StreamDeleted')
    .option('--expected-version <v>', 'any | no_stream | exists | n'),
).action(async (stream: string, flags) => {
  await withTarget(flags, async (target) => {
    const { streamVersion } = await target.deleteStream(stream, {
      expectedVersion: parseExpected(flags.expectedVersion),
      hard: flags.hard,
    });
    print({ streamId: stream, streamVersion, deleted: flags.hard ? 'hard' : 'soft' });
  });
});

targetOptions(
  program.command('scavenge').description('remove the events retention settings and deletes hide; versions and positions stay'),
).action(async (flags) => {
  await withTarget(flags, async (target) => {
    // One call to the store (or server), so no bar: the summary line says what it removed and how fast.
    const progress = startProgress({ total: undefined, unit: 'positions' });
    const result = await target.scavenge();
    progress.update(0, result.removed);
    progress.finish(`scavenged: removed ${result.removed.toLocaleString('en-US')} events`);
    print(result);
  });
});

// --- help: every command with an example, in `logline --help` and in each command's help ---
const EXAMPLES: Record<string, string[]> = {
  serve: ['logline serve --store postgres://postgres@127.0.0.1:5432/app --port 8080', 'logline serve --demo'],
  append: [
    `logline append account-7 '{"type":"AccountOpened","data":{"owner":"Homer"}}' --expected-version no_stream`,
    'logline append account-7 -f events.ndjson --server http://127.0.0.1:7373',
  ],
  read: ['logline read account-7 --backward --limit 10'],
  tail: ['logline tail --server http://127.0.0.1:7373', 'logline tail account-7 --from start'],
  export: ['logline export > backup.ndjson', 'logline export --until 2026-11-01T00:00:00Z -o as-known.ndjson'],
  import: ['logline import backup.ndjson --store sqlite:./copy.db'],
  stats: ['logline stats --server http://127.0.0.1:7373'],
  keys: [
    'logline keys export -o keys.ndjson --store postgres://postgres@127.0.0.1:5432/app',
    'logline keys import keys.ndjson --store sqlite:./copy.db',
  ],
  forget: ['logline forget user-42', 'logline forget user-42 --server http://127.0.0.1:7373 --api-key "$ADMIN_KEY"'],
  metadata: ['logline metadata sensor-7 --max-age 604800', 'logline metadata sensor-7 --clear'],
  delete: ['logline delete cart-42 --expected-version 5', 'logline delete user-9 --hard --server http://127.0.0.1:7373'],
  scavenge: ['logline scavenge --store postgres://postgres@127.0.0.1:5432/app'],
};
for (const command of program.commands) {
  const examples = EXAMPLES[command.name()] ?? [];
  command.addHelpText('after', `\nExample${examples.length > 1 ? 's' : ''}:\n${examples.map((line) => `  $ ${line}`).join('\n')}`);
}
// `keys export` and `keys import` each show their own example of `keys`.
for (const command of keys.commands) {
  const example = EXAMPLES.keys?.find((line) => line.startsWith(`logline keys ${command.name()} `));
  if (example) command.addHelpText('after', `\nExample:\n  $ ${example}`);
}
program.addHelpText(
  'after',
  `\nExamples:\n${program.commands.map((command) => `  $ ${EXAMPLES[command.name()]?.[0] ?? ''}`).join('\n')}\n\n` +
    'Store or server: --store URL (LOGLINE_STORE) or --server URL (LOGLINE_SERVER). `logline help <command>` for its options.',
);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  // Bad input (flags, JSON, ids, URLs) exits 2; everything else that failed exits 1.
  const badInput = ['InvalidArgument', 'InvalidStreamId', 'InvalidEvent', 'InvalidStoreUrl'];
  if (error instanceof LoglineError || error instanceof RemoteError) {
    process.stderr.write(`logline: ${error instanceof LoglineError ? `${error.code}: ` : ''}${error.message}\n`);
    const code = error instanceof LoglineError ? error.code : String(error.body.error);
    process.exitCode = badInput.includes(code) ? 2 : 1;
  } else {
    // Stack traces only on request: most failures (an unreachable database…) say enough in one line.
    process.stderr.write(
      `logline: ${process.env.LOGLINE_DEBUG ? ((error as Error)?.stack ?? error) : ((error as Error)?.message ?? error)}\n`,
    );
    process.exitCode = 1;
  }
}
