/**
 * Test access to the real NATS JetStream server (no mocks). Every test store gets its own
 * JetStream streams and subject prefix (`freshNatsUrl`), deleted afterwards, so tests never see
 * each other's events and never touch anyone else's streams on the shared server.
 *
 *   const reachable = await requireNats();      // throws when CI=true and NATS is down
 *   describe.skipIf(!reachable)('…', () => { … });
 */
import { randomBytes } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { dropLayout } from '../../src/nats.js';
import { layoutOf } from '../../src/stores/nats/schema.js';

export const NATS_URL = process.env.LOGLINE_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

let reachable: Promise<boolean> | undefined;

/** Whether JetStream at NATS_URL answers. With CI=true an unreachable server is an error, never a skip. */
export function requireNats(): Promise<boolean> {
  reachable ??= (async () => {
    try {
      const nc = await connect({
        servers: NATS_URL.replace(/^nats:\/\//, '')
          .split('?')[0]
          ?.split(','),
        timeout: 3000,
      });
      try {
        await (await jetstreamManager(nc)).getAccountInfo();
      } finally {
        await nc.close();
      }
      return true;
    } catch (error) {
      if (process.env.CI === 'true') {
        throw new Error(`NATS JetStream at ${NATS_URL} is unreachable, and CI=true forbids skipping: ${String(error)}`, { cause: error });
      }
      console.warn(`NATS JetStream at ${NATS_URL} is unreachable; skipping its tests (${String(error)})`);
      return false;
    }
  })();
  return reachable;
}

/** `base` with a unique stream name and subject prefix, and a function that deletes those streams. */
export function freshNatsUrl(base: string = NATS_URL, query = ''): { url: string; stream: string; drop(): Promise<void> } {
  const tag = randomBytes(6).toString('hex');
  const stream = `T_${tag}`;
  const url = `${base}${base.includes('?') ? '&' : '?'}stream=${stream}&prefix=t_${tag}${query ? `&${query}` : ''}`;
  return {
    url,
    stream,
    async drop() {
      const servers = base
        .replace(/^nats:\/\//, '')
        .split('?')[0]
        ?.split(',');
      const nc = await connect({ servers, timeout: 5000 });
      try {
        await dropLayout(await jetstreamManager(nc), layoutOf(url, stream, `t_${tag}`));
      } finally {
        await nc.close();
      }
    },
  };
}
