/**
 * The gRPC face with API keys, over TLS (the official client only sends credentials on a secure
 * channel): the password of the client's credentials is the API key; a key's rights apply as on HTTP.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { jsonEvent, KurrentDBClient, START, streamNameFilter } from '@kurrent/kurrentdb-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../server/process.js';
import { all, eventsOf, eventually, type GrpcServer, rejection, startGrpcServer } from './kurrent.js';

const KEYS = {
  keys: [
    { name: 'admin', key: 'admin-key-0123456789', read: ['*'], write: ['*'] },
    { name: 'orders', key: 'orders-key-0123456789', read: ['order-'], write: ['order-'] },
  ],
};
const event = (n: number) => jsonEvent({ type: 'Placed', data: { n } });

describe('KurrentDB client over gRPC with API keys and TLS', () => {
  const dir = tempDir('logline-grpc-auth-');
  let running: GrpcServer;
  const clients: KurrentDBClient[] = [];
  const connect = (credentials: string) => {
    const ca = join(dir.path, 'ca.pem');
    const client = KurrentDBClient.connectionString(`kurrentdb://${credentials}@localhost:${running.port}?tls=true&tlsCAFile=${ca}`);
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    // A throwaway CA and a localhost certificate it signs (the Rust transport refuses a CA certificate as the server's own).
    const file = (name: string) => join(dir.path, name);
    const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
    openssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=logline-test-ca',
      '-keyout',
      file('ca-key.pem'),
      '-out',
      file('ca.pem'),
    );
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', file('key.pem'), '-out', file('cert.csr'));
    writeFileSync(file('ext.cnf'), 'basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
    openssl(
      'x509',
      '-req',
      '-in',
      file('cert.csr'),
      '-CA',
      file('ca.pem'),
      '-CAkey',
      file('ca-key.pem'),
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      file('ext.cnf'),
      '-out',
      file('cert.pem'),
    );
    const keysFile = join(dir.path, 'keys.json');
    writeFileSync(keysFile, JSON.stringify(KEYS));
    running = await startGrpcServer(
      [
        '--store',
        `sqlite:${join(dir.path, 'auth.db')}`,
        '--keys',
        keysFile,
        '--grpc-tls-cert',
        join(dir.path, 'cert.pem'),
        '--grpc-tls-key',
        join(dir.path, 'key.pem'),
      ],
      0,
      { LOGLINE_API_KEYS: '' },
    );
  });
  afterAll(async () => {
    for (const client of clients) await client.dispose();
    await running?.server.stop();
    dir.remove();
  });

  it('a key with full rights appends, reads and subscribes', async () => {
    const admin = connect('admin:admin-key-0123456789');
    await admin.appendToStream('user-1', event(1));
    expect(eventsOf(await all(admin.readStream('user-1')))).toHaveLength(1);
    expect(eventsOf(await all(admin.readAll({ maxCount: 10 }))).length).toBeGreaterThan(0);
  });

  it('a partial-rights key is denied outside its prefix, on every call, and nothing is stored', async () => {
    const orders = connect('orders:orders-key-0123456789');
    await orders.appendToStream('order-1', event(1));
    expect(eventsOf(await all(orders.readStream('order-1')))).toHaveLength(1);

    const append = await rejection(orders.appendToStream('user-2', event(2)));
    expect(append.constructor.name).toBe('AccessDeniedError');
    await expect(all(orders.readStream('user-1'))).rejects.toMatchObject({ type: 'access-denied' });
    await expect(all(orders.readAll({ maxCount: 10 }))).rejects.toMatchObject({ type: 'access-denied' });
    const unfiltered = orders.subscribeToAll({ fromPosition: START });
    const denied = await new Promise<Error>((resolve) => unfiltered.on('error', resolve));
    expect(denied.constructor.name).toBe('AccessDeniedError');

    // A $all subscription filtered to its own prefix is within its rights.
    const filtered = orders.subscribeToAll({ fromPosition: START, filter: streamNameFilter({ prefixes: ['order-'] }) });
    const seen: string[] = [];
    filtered.on('data', (resolved) => seen.push(resolved.event?.streamId ?? ''));
    await eventually(() => seen.length === 1);
    expect(seen).toEqual(['order-1']);
    await filtered.unsubscribe();

    const admin = connect('admin:admin-key-0123456789');
    await expect(all(admin.readStream('user-2'))).rejects.toMatchObject({ type: 'stream-not-found' });
  });

  it('an unknown key (or the stock admin:changeit) is refused', async () => {
    for (const credentials of ['admin:changeit', 'orders:wrong-key-0123456789']) {
      const stranger = connect(credentials);
      expect((await rejection(stranger.appendToStream('order-9', event(9)))).constructor.name).toBe('AccessDeniedError');
      await expect(all(stranger.readStream('order-1'))).rejects.toMatchObject({ type: 'access-denied' });
    }
  });
});
