export { createMemoryStore, type MemoryStoreOptions } from './stores/memory/index.js';
