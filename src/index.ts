/** logline: the public API. Backends have their own subpaths (logline/sqlite, logline/postgres, logline/memory). */
export * from './core/errors.js';
export { jsonEqual } from './core/idempotency.js';
export { type OpenStoreOptions, openStore } from './core/open-store.js';
export { SUBJECT_FORGOTTEN, SUBJECTS_STREAM, SubjectForgottenError, UnknownSubjectError } from './core/personal-data.js';
export * from './core/types.js';
export { assertStreamId, CATEGORY_PATTERN, categoryOf, EVENT_TYPE_PATTERN, newEventSchema, STREAM_ID_PATTERN } from './core/validation.js';
export * from './domain/index.js';
export * from './projections.js';
