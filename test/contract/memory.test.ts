import { createMemoryStore } from '../../src/memory.js';
import { describeContract } from './contract.js';

describeContract('memory', { open: async (options) => createMemoryStore(options), propertyRuns: 60 });
