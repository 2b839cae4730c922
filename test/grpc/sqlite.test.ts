import { join } from 'node:path';
import { tempDir } from '../server/process.js';
import { describeKurrentClient } from './suite.js';

describeKurrentClient('sqlite', {
  async open() {
    const dir = tempDir('logline-grpc-');
    return { store: `sqlite:${join(dir.path, 'grpc.db')}`, cleanup: () => dir.remove() };
  },
});
