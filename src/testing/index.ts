/** The test kit (`logline/testing`): given-when-then for deciders and for command handlers over a real store. */
export { type DeciderGiven, type DeciderOutcome, type DeciderWhen, deciderSpec } from './decider-spec.js';
export { type HandlerGiven, type HandlerOutcome, type HandlerWhen, handlerSpec } from './handler-spec.js';
export type { ErrorClass } from './match.js';
