export { createMemoryStore, type MemoryStoreOptions } from './stores/memory/memory-store.js';
