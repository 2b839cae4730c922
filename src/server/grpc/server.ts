/**
 * The KurrentDB-compatible gRPC face of `logline serve --grpc-port <port>` (docs/kurrentdb.md):
 * Streams (Append, Read, subscriptions), ServerFeatures and Gossip over the same store and the
 * same API keys as the HTTP API.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Metadata, ServerCredentials, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { EventStore } from '../../core/types.js';
import type { ApiKey, KeyRing } from '../auth.js';
import { uuidMessage } from './mapping.js';
import { loadProtocol, type Protocol } from './protocol.js';
import { streamsService } from './streams.js';

export interface GrpcOptions {
  store: EventStore;
  logger: Logger;
  host: string;
  port: number;
  /** API keys (undefined = auth off, as for HTTP). */
  keys?: KeyRing;
  /** PEM certificate chain and private key files: TLS instead of plaintext HTTP/2. */
  tls?: { certFile: string; keyFile: string };
}

export interface RunningGrpcServer {
  port: number;
  /** Stops accepting, ends subscriptions, waits (at most graceMs) for appends in flight. */
  close(graceMs?: number): Promise<void>;
}

/** The version ServerFeatures reports: numeric (clients parse it) and recent enough for caught-up messages. */
export const ADVERTISED_VERSION = '24.10.0';

/**
 * The key a call's `authorization` metadata names. KurrentDB clients send `Basic user:password`
 * (the password is the API key; the user name is free) or `Bearer <key>`.
 */
export function authenticateMetadata(keys: KeyRing | undefined, metadata: Metadata): ApiKey | undefined {
  if (!keys) return undefined;
  const header = metadata.get('authorization')[0]?.toString();
  const basic = header?.match(/^Basic\s+(\S+)\s*$/i)?.[1];
  if (basic) {
    const decoded = Buffer.from(basic, 'base64').toString('utf8');
    const password = decoded.slice(decoded.indexOf(':') + 1);
    return keys.authenticate(`Bearer ${password}`, undefined);
  }
  return keys.authenticate(header, undefined);
}

function serverFeatures(protocol: Protocol): UntypedServiceImplementation {
  const { SupportedMethods, SupportedMethod } = protocol.features;
  // Only what is implemented: clients turn features on from this list.
  const methods = [
    ['event_store.client.streams.Streams', 'Read'],
    ['event_store.client.streams.Streams', 'Append'],
    ['event_store.client.streams.Streams', 'Delete'],
    ['event_store.client.streams.Streams', 'Tombstone'],
    ['event_store.client.server_features.ServerFeatures', 'GetSupportedMethods'],
    ['event_store.client.gossip.Gossip', 'Read'],
  ].map(([service, method]) => new SupportedMethod().setServiceName(service as string).setMethodName(method as string));
  return {
    getSupportedMethods: (_call: unknown, callback: (error: null, value: unknown) => void) =>
      callback(null, new SupportedMethods().setMethodsList(methods).setEventStoreServerVersion(ADVERTISED_VERSION)),
  };
}

function gossip(protocol: Protocol, host: string, port: () => number): UntypedServiceImplementation {
  const instanceId = randomUUID();
  const { ClusterInfo, MemberInfo, EndPoint } = protocol.gossip;
  return {
    // A cluster of one: this node is the leader, reachable where the client reached it.
    read: (call: { getHost?: () => string }, callback: (error: null, value: unknown) => void) => {
      const authority = call.getHost?.() ?? '';
      const address = authority.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1') || host;
      const member = new MemberInfo()
        .setInstanceId(uuidMessage(protocol, instanceId, false))
        .setTimeStamp((BigInt(Date.now()) * 10_000n).toString())
        .setState(protocol.gossip.MemberInfo.VNodeState.LEADER)
        .setIsAlive(true)
        .setHttpEndPoint(new EndPoint().setAddress(address).setPort(port()));
      callback(null, new ClusterInfo().setMembersList([member]));
    },
  };
}

function credentials(protocol: Protocol, tls: GrpcOptions['tls']): ServerCredentials {
  if (!tls) return protocol.grpc.ServerCredentials.createInsecure();
  return protocol.grpc.ServerCredentials.createSsl(null, [
    { cert_chain: readFileSync(tls.certFile), private_key: readFileSync(tls.keyFile) },
  ]);
}

export async function startGrpcServer(options: GrpcOptions): Promise<RunningGrpcServer> {
  const protocol = loadProtocol();
  const { grpc } = protocol;
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
  const inFlight = new Set<Promise<unknown>>();
  const openReads = new Set<(reason: string) => void>();
  let boundPort = options.port;
  server.addService(
    protocol.services.streams,
    streamsService({
      protocol,
      store: options.store,
      logger: options.logger,
      inFlight,
      openReads,
      authenticate: (call) => authenticateMetadata(options.keys, call.metadata),
    }),
  );
  server.addService(protocol.services.features, serverFeatures(protocol));
  server.addService(
    protocol.services.gossip,
    gossip(protocol, options.host, () => boundPort),
  );
  const hostPart = options.host.includes(':') && !options.host.startsWith('[') ? `[${options.host}]` : options.host;
  boundPort = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${hostPart}:${options.port}`, credentials(protocol, options.tls), (error, port) =>
      error ? reject(error) : resolve(port),
    ),
  );
  return {
    port: boundPort,
    async close(graceMs = 10_000) {
      // Subscriptions never end by themselves: end them; stop taking calls; appends already handed
      // to the store finish and are answered; then idle client connections are cut (clients keep
      // theirs open, so a graceful drain alone would wait out the grace period).
      for (const end of openReads) end('server shutting down');
      const drained = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      const answered = Promise.allSettled([...inFlight]).then(() => new Promise<void>((resolve) => setTimeout(resolve, 50)));
      const grace = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
      await Promise.race([drained, answered, grace]);
      server.forceShutdown();
      await Promise.allSettled([...inFlight]);
    },
  };
}
