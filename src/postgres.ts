export * from './stores/postgres/index.js';
