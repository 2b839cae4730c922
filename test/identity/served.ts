/**
 * A store and the identity service on it for one describe block's tests: opened before them,
 * stopped and dropped after. Apart from service.ts, which the identity bench imports too and which
 * must not pull in vitest.
 */
import { afterAll, beforeAll } from 'vitest';
import { type IdentityProcess, startIdentity, type TestStore } from './service.js';

export interface Served {
  readonly store: TestStore;
  readonly service: IdentityProcess;
  /** The service's base URL. */
  readonly url: string;
}

export function serveDuringTests(open: () => Promise<TestStore>, args: string[] = []): Served {
  let store: TestStore | undefined;
  let service: IdentityProcess | undefined;
  beforeAll(async () => {
    store = await open();
    service = await startIdentity(store.url, args);
  });
  afterAll(async () => {
    await service?.stop();
    await store?.drop();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the identity service is not started yet (read it inside a test)');
    return value;
  };
  return {
    get store() {
      return started(store);
    },
    get service() {
      return started(service);
    },
    get url() {
      return started(service).url;
    },
  };
}
