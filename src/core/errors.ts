/**
 * Typed errors. Every error has a stable `code` (the HTTP API's `error` field),
 * a message that says what was wrong and what was expected, and structured details.
 */
import type { ExpectedVersion } from './types.js';

export type ErrorCode =
  | 'WrongExpectedVersion'
  | 'InvalidStreamId'
  | 'InvalidEvent'
  | 'EventTooLarge'
  | 'AppendTooLarge'
  | 'IdempotencyConflict'
  | 'InvalidArgument'
  | 'StoreClosed'
  | 'InvalidStoreUrl'
  | 'DriverMissing'
  | 'SchemaTooNew'
  | 'StoreUnavailable'
  | 'PositionBeyondHead'
  // Personal data (src/core/personal-data.ts): forget of a subject never declared; personal data for a forgotten one.
  | 'UnknownSubject'
  | 'SubjectForgotten'
  // Retention and deletion (src/core/retention.ts): an append or change to a hard-deleted stream.
  | 'StreamDeleted'
  // Projections (src/projections): waitForPosition timed out; a projection stopped on a failure.
  | 'PositionTimeout'
  | 'ProjectionStopped'
  // HTTP server (src/server): no valid API key, a key outside its rights, an unknown stream or route, a body that is not JSON,
  // too many request bytes or appends in flight.
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'UnsupportedMediaType'
  | 'Overloaded'
  // Domain layer (src/domain): a command lost every optimistic-concurrency retry; a stored event's schema version is unknown to this app.
  | 'CommandRetriesExhausted'
  | 'EventSchemaTooNew';

export class LoglineError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;
  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, options);
    this.name = `${code}Error`;
    this.code = code;
    this.details = details;
  }
  /** The JSON body the HTTP API sends: `{ error, message, ...details }`. */
  toJSON(): Record<string, unknown> {
    return { error: this.code, message: this.message, ...this.details };
  }
}

const describeExpected = (expected: ExpectedVersion): string =>
  expected === 'no_stream'
    ? 'the stream not to exist'
    : expected === 'exists'
      ? 'the stream to exist'
      : expected === 'any'
        ? 'any version'
        : `version ${expected}`;

export class WrongExpectedVersionError extends LoglineError {
  readonly stream: string;
  readonly expected: ExpectedVersion;
  readonly actual: number;
  constructor(stream: string, expected: ExpectedVersion, actual: number) {
    super(
      'WrongExpectedVersion',
      `Stream '${stream}': expected ${describeExpected(expected)}, but its current version is ${actual}${actual === 0 ? ' (it does not exist)' : ''}.`,
      { stream, expected, actual },
    );
    this.stream = stream;
    this.expected = expected;
    this.actual = actual;
  }
}

export class InvalidStreamIdError extends LoglineError {
  constructor(stream: unknown, reason: string) {
    super(
      'InvalidStreamId',
      `Invalid stream id ${JSON.stringify(typeof stream === 'string' ? stream.slice(0, 210) : stream)}: ${reason}. Expected 1 to 200 characters of [A-Za-z0-9_.:@-], not starting with '$'.`,
      { stream: typeof stream === 'string' ? stream.slice(0, 210) : String(stream), reason },
    );
  }
}

export class InvalidEventError extends LoglineError {
  constructor(index: number, problems: string[]) {
    super('InvalidEvent', `Event #${index} is invalid: ${problems.join('; ')}.`, { index, problems });
  }
}

export class EventTooLargeError extends LoglineError {
  constructor(index: number, bytes: number, maxBytes: number) {
    super('EventTooLarge', `Event #${index} is ${bytes} bytes as JSON; the limit is ${maxBytes} bytes.`, {
      index,
      bytes,
      maxBytes,
    });
  }
}

export class AppendTooLargeError extends LoglineError {
  constructor(what: 'events' | 'bytes', actual: number, max: number) {
    super(
      'AppendTooLarge',
      what === 'events'
        ? `One append may carry at most ${max} events; this one has ${actual}.`
        : `One append may carry at most ${max} bytes of JSON; this one has ${actual}.`,
      { limit: what, actual, max },
    );
  }
}

export class IdempotencyConflictError extends LoglineError {
  constructor(stream: string, eventId: string, reason: string) {
    super(
      'IdempotencyConflict',
      `Event id ${eventId} is already stored (${reason}); re-sending an id is only allowed as an exact retry of the original append to '${stream}'.`,
      { stream, eventId, reason },
    );
  }
}

export class InvalidArgumentError extends LoglineError {
  constructor(argument: string, problem: string, expected: string) {
    super('InvalidArgument', `Invalid ${argument}: ${problem}. Expected ${expected}.`, { argument, problem, expected });
  }
}

export class StoreClosedError extends LoglineError {
  constructor(backend: string) {
    super('StoreClosed', `The ${backend} store is closed; open a new one with openStore().`, { backend });
  }
}

export class InvalidStoreUrlError extends LoglineError {
  constructor(url: string, problem: string) {
    super('InvalidStoreUrl', `Invalid store URL '${url}': ${problem}. Expected 'memory:', 'sqlite:<path>', 'postgres://…' or 'nats://…'.`, {
      url,
      problem,
    });
  }
}

export class DriverMissingError extends LoglineError {
  constructor(backend: string, pkg: string, cause?: unknown) {
    super(
      'DriverMissing',
      `The ${backend} backend needs the package '${pkg}', which is not installed. Run: npm install ${pkg}`,
      { backend, package: pkg },
      { cause },
    );
  }
}

export class SchemaTooNewError extends LoglineError {
  constructor(backend: string, found: number, supported: number) {
    super(
      'SchemaTooNew',
      `The ${backend} database has schema version ${found}, but this Logline supports up to ${supported}; upgrade Logline.`,
      { backend, found, supported },
    );
  }
}

export class StoreUnavailableError extends LoglineError {
  constructor(backend: string, problem: string, cause?: unknown) {
    super('StoreUnavailable', `The ${backend} store is unavailable: ${problem}.`, { backend, problem }, { cause });
  }
}

/**
 * A reader asked for events after a position the store has not reached: the store was restored
 * from a backup or failed over to a replica that lags, and the position came from the store it
 * replaced. Going on would silently skip the events the restored store writes at those positions.
 */
export class PositionBeyondHeadError extends LoglineError {
  constructor(position: bigint, head: bigint) {
    super(
      'PositionBeyondHead',
      `Position ${position} is beyond the store's head (${head}): the store was probably restored or failed over to a replica that lags. Nothing was skipped; resume from a position at or below the head.`,
      { position: position.toString(), head: head.toString() },
    );
  }
}

/** The stream was deleted with `hard: true` (a tombstone): it can never be written again. */
export class StreamDeletedError extends LoglineError {
  constructor(stream: string) {
    super('StreamDeleted', `Stream '${stream}' was deleted for good (hard delete); it cannot be written again. Use another stream id.`, {
      stream,
    });
  }
}

export const isLoglineError = (error: unknown): error is LoglineError => error instanceof LoglineError;
