/** The domain layer: deciders, command handling, snapshots, upcasting, temporal reads. */
export {
  type AsOf,
  foldInValidTime,
  type Instant,
  inValidTimeOrder,
  isCorrection,
  type LoadedState,
  type LoadOptions,
  loadAggregate,
  readStream,
  saveSnapshot,
  takeSnapshot,
} from './aggregate.js';
export { type CommandResult, DEFAULT_RETRY, type HandleCommandOptions, handleCommand, type RetryOptions } from './command.js';
export { CommandRetriesExhaustedError, DomainError, EventSchemaTooNewError, isDomainError } from './errors.js';
export {
  type Correct,
  type CorrectionContext,
  type CorrectRetroactiveOptions,
  correctRetroactive,
  deriveCorrections,
  findRetroactive,
} from './temporal.js';
export type { Command, CommandMetadata, CommandOf, Decider, Event, EventOf, Fold, Recorded, SnapshotPolicy, StateOf } from './types.js';
export { defineUpcasters, type Upcaster, type Upcasters, upcastAll, upcaster } from './upcasting.js';
