/**
 * Errors of the domain layer. Two families, kept apart on purpose:
 * - DomainError: a business rule said no ("insufficient funds"). The caller's request was
 *   understood and refused; retrying will not help. Apps throw it (or a subclass) from decide.
 * - LoglineError subclasses: infrastructure (a lost concurrency race, an unreadable event).
 */
import { LoglineError } from '../core/errors.js';
import type { JsonValue } from '../core/types.js';

/**
 * A business rule refused a command. Throw it from `decide`, either directly with a code
 * (`throw new DomainError('InsufficientFunds', 'Balance 10 is below 25')`) or through a subclass
 * (`class InsufficientFunds extends DomainError { constructor(...) { super('InsufficientFunds', ...) } }`).
 */
export class DomainError extends Error {
  /** Stable, machine-readable reason, e.g. 'InsufficientFunds'. */
  readonly code: string;
  readonly details: { [key: string]: JsonValue };
  constructor(code: string, message: string, details: { [key: string]: JsonValue } = {}, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name === 'DomainError' ? `${code}Error` : new.target.name;
    this.code = code;
    this.details = details;
  }
  /** The same body shape as LoglineError: `{ error, message, ...details }`. */
  toJSON(): Record<string, unknown> {
    return { error: this.code, message: this.message, ...this.details };
  }
}

export const isDomainError = (error: unknown): error is DomainError => error instanceof DomainError;

/** Every retry of a command lost the optimistic-concurrency race to other writers. */
export class CommandRetriesExhaustedError extends LoglineError {
  readonly stream: string;
  readonly attempts: number;
  constructor(stream: string, commandType: string, attempts: number, cause: unknown) {
    super(
      'CommandRetriesExhausted',
      `Command '${commandType}' on stream '${stream}' lost the optimistic-concurrency race ${attempts} time(s): other writers kept appending between its read and its write. Retry later, or raise retry.maxAttempts (N attempts always suffice for N concurrent writers).`,
      { stream, commandType, attempts },
      { cause },
    );
    this.stream = stream;
    this.attempts = attempts;
  }
}

/** A stored event carries a schemaVersion newer than any this app knows: it was written by a newer release. */
export class EventSchemaTooNewError extends LoglineError {
  constructor(eventType: string, found: number, known: number, eventId: string) {
    super(
      'EventSchemaTooNew',
      `Event ${eventId} of type '${eventType}' has schemaVersion ${found}, but this app knows versions up to ${known}; it was written by a newer release. Upgrade the app (or register the missing upcasters).`,
      { eventType, found, known, eventId },
    );
  }
}
