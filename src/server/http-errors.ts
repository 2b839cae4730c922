/**
 * Server-side errors and the mapping from typed errors (src/core/errors.ts) to HTTP statuses.
 * Every error body is LoglineError.toJSON(): `{ error, message, ...details }`.
 */
import { LoglineError } from '../core/errors.js';

export class UnauthorizedError extends LoglineError {
  constructor(problem: string) {
    super('Unauthorized', `${problem}. Send an API key as 'Authorization: Bearer <key>'.`, { problem });
  }
}

export class ForbiddenError extends LoglineError {
  constructor(action: 'read' | 'write' | 'admin', target: string) {
    super('Forbidden', `This API key may not ${action} ${target}.`, { action, target });
  }
}

export class NotFoundError extends LoglineError {
  constructor(what: string, details: Record<string, unknown> = {}) {
    super('NotFound', `${what} not found.`, details);
  }
}

export class UnsupportedMediaTypeError extends LoglineError {
  constructor(contentType: string) {
    super('UnsupportedMediaType', `Content-Type '${contentType}' is not accepted; send 'application/json'.`, { contentType });
  }
}

const STATUS: Partial<Record<LoglineError['code'], number>> = {
  WrongExpectedVersion: 409,
  IdempotencyConflict: 409,
  InvalidStreamId: 400,
  InvalidEvent: 400,
  InvalidArgument: 400,
  EventTooLarge: 413,
  AppendTooLarge: 413,
  Unauthorized: 401,
  Forbidden: 403,
  NotFound: 404,
  // A tombstoned stream (hard delete) is gone for good: every append, and a read, answers 410.
  StreamDeleted: 410,
  UnsupportedMediaType: 415,
  Overloaded: 503,
  StoreClosed: 503,
  StoreUnavailable: 503,
  // A position from a store this one was restored behind (Last-Event-ID, ?from=): nothing is skipped.
  PositionBeyondHead: 409,
  // A read model has not caught up with Logline-Min-Position in time (or stopped): retry later.
  PositionTimeout: 503,
  ProjectionStopped: 503,
  // Forget a person (docs/lifecycle.md): an unknown subject; personal data for a forgotten one.
  UnknownSubject: 404,
  SubjectForgotten: 409,
};

/** Status and body for any thrown value; unknown errors become a 500 without internals. */
export function errorResponse(error: unknown): { status: number; body: Record<string, unknown> } {
  if (error instanceof LoglineError) return { status: STATUS[error.code] ?? 500, body: error.toJSON() };
  return { status: 500, body: { error: 'Internal', message: 'The server failed to handle this request; see its log.' } };
}
