/** The in-memory backend: for tests and examples. See docs/store.md. */
export { createMemoryStore, type MemoryStoreOptions } from './store.js';
