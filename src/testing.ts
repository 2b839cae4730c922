/** logline/testing: the test kit for deciders and command handlers. */
export * from './testing/index.js';
