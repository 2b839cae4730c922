import { join } from 'node:path';
import { describeHttpApi } from './api-suite.js';
import { tempDir } from './process.js';

describeHttpApi('sqlite', {
  async open() {
    const dir = tempDir();
    return { url: `sqlite:${join(dir.path, 'api.db')}`, cleanup: () => dir.remove() };
  },
});
