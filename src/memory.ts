export { createMemoryStore, type MemoryStoreOptions } from './stores/memory/store.js';
