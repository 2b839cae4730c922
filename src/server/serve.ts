/**
 * `logline serve`: opens a store, serves the app, shuts down gracefully. On SIGTERM/SIGINT the
 * listener stops accepting, live SSE streams end, in-flight appends finish and are answered,
 * and only then does the store close (it commits what it had accepted first). An append that
 * was acknowledged was durable before the answer left, so none is lost.
 */
import type { AddressInfo } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import pino, { type Logger } from 'pino';
import type { ConnectorHandle } from '../connectors/connector.js';
import { InvalidArgumentError } from '../core/errors.js';
import { openStore } from '../core/open-store.js';
import type { EventStore } from '../core/types.js';
import { type AppOptions, createApp } from './app.js';
import { type KeyRing, loadKeys } from './auth.js';
import { connectorGauges, mountConnectorRoutes } from './connectors.js';
import { seedDemo } from './demo.js';
import type { RunningGrpcServer } from './grpc/server.js';
import type { SseSettings } from './sse.js';

export const DEFAULT_STORE = 'sqlite:./logline-data/logline.db';
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 7373;

export interface ServeOptions {
  store?: string;
  host?: string;
  port?: number;
  /** API keys file; else LOGLINE_API_KEYS_FILE / LOGLINE_API_KEYS. */
  keysFile?: string;
  /** Allow a non-loopback bind without API keys. */
  insecure?: boolean;
  demo?: boolean;
  sse?: Partial<SseSettings>;
  /** Bounds on appends in flight; see AdmissionLimits (defaults: 256 MiB, 1000 appends). */
  admission?: AppOptions['admission'];
  consumers?: AppOptions['consumers'];
  routes?: AppOptions['routes'];
  minPositionTimeoutMs?: number;
  logger?: Logger;
  /** How long shutdown waits for open requests before cutting connections. */
  shutdownGraceMs?: number;
  /** Also serve the KurrentDB gRPC protocol on this port (0 = any free port); else LOGLINE_GRPC_PORT; off when neither. */
  grpcPort?: number;
  /** PEM certificate chain and key files for the gRPC port (else plaintext HTTP/2). */
  grpcTls?: { certFile: string; keyFile: string };
  /** A connectors file (JSON, docs/connectors.md): delivers the log to webhooks and brokers. */
  connectorsFile?: string;
  /** Run a scavenge (docs/lifecycle.md#retention-and-deletion) this often, in seconds; else LOGLINE_SCAVENGE_INTERVAL; off when neither. */
  scavengeIntervalSeconds?: number;
}

export interface RunningServer {
  url: string;
  /** The KurrentDB gRPC port, when serving it. */
  grpcPort?: number;
  store: EventStore;
  close(): Promise<void>;
}

export const isLoopback = (host: string) => /^(localhost|127\.\d+\.\d+\.\d+|::1|\[::1\])$/i.test(host);

export function createLogger(): Logger {
  // Asynchronous writes keep a slow log reader from stalling requests; close() flushes.
  return pino({ level: process.env.LOGLINE_LOG_LEVEL ?? 'info', base: { service: 'logline' } }, pino.destination({ sync: false }));
}

export async function startServer(options: ServeOptions = {}): Promise<RunningServer> {
  const logger = options.logger ?? createLogger();
  const host = options.host ?? process.env.LOGLINE_HOST ?? DEFAULT_HOST;
  const port = options.port ?? (process.env.LOGLINE_PORT ? Number(process.env.LOGLINE_PORT) : DEFAULT_PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError('port', `got ${JSON.stringify(port)}`, 'an integer from 0 to 65535');
  }
  const keys: KeyRing | undefined = loadKeys(options.keysFile);
  if (!keys && !isLoopback(host) && !options.insecure) {
    throw new InvalidArgumentError(
      'host',
      `'${host}' is not a loopback address and no API keys are configured`,
      'API keys (--keys <file> or LOGLINE_API_KEYS), a loopback host, or --insecure to serve without auth on purpose',
    );
  }
  // A bad connectors file is refused before anything is opened; the connectors code loads only when used.
  const connectorsModule = options.connectorsFile ? await import('../connectors/config.js') : undefined;
  const connectorConfigs = options.connectorsFile ? connectorsModule?.loadConnectorsConfig(options.connectorsFile) : undefined;
  const storeUrl = options.store ?? process.env.LOGLINE_STORE ?? DEFAULT_STORE;
  const store = await openStore(storeUrl);
  if (options.demo) {
    const seeded = await seedDemo(store);
    if (seeded) logger.info({ events: seeded }, 'seeded the demo dataset');
  }
  let connectors: ConnectorHandle[] = [];
  if (connectorsModule && connectorConfigs) {
    try {
      connectors = await connectorsModule.startConnectors(store, connectorConfigs);
    } catch (error) {
      await store.close();
      throw error;
    }
    logger.info({ connectors: connectors.map((c) => `${c.name} (${c.stats().sink.type})`) }, 'connectors started');
  }
  const appOptions: AppOptions = {
    store,
    logger,
    keys,
    loopbackOnly: !keys && !options.insecure,
    sse: options.sse,
    admission: options.admission,
    consumers: options.consumers,
    routes: connectors.length
      ? (app, routeStore) => {
          mountConnectorRoutes(app, connectors);
          options.routes?.(app, routeStore);
        }
      : options.routes,
    gauges: connectors.length ? () => connectorGauges(connectors) : undefined,
    minPositionTimeoutMs: options.minPositionTimeoutMs,
  };
  const grpcPort = options.grpcPort ?? (process.env.LOGLINE_GRPC_PORT ? Number(process.env.LOGLINE_GRPC_PORT) : undefined);
  const scavengeInterval =
    options.scavengeIntervalSeconds ?? (process.env.LOGLINE_SCAVENGE_INTERVAL ? Number(process.env.LOGLINE_SCAVENGE_INTERVAL) : undefined);
  // A start that fails after this point leaves nothing running: connectors stop, the store closes.
  const abandon = async () => {
    await Promise.allSettled(connectors.map((connector) => connector.stop()));
    await store.close();
  };
  if (scavengeInterval !== undefined && !(Number.isFinite(scavengeInterval) && scavengeInterval > 0)) {
    await abandon();
    throw new InvalidArgumentError('scavenge interval', `got ${JSON.stringify(scavengeInterval)}`, 'a number of seconds > 0');
  }
  if (grpcPort !== undefined && (!Number.isInteger(grpcPort) || grpcPort < 0 || grpcPort > 65535)) {
    await abandon();
    throw new InvalidArgumentError('grpc port', `got ${JSON.stringify(grpcPort)}`, 'an integer from 0 to 65535');
  }
  const { app, hub, inFlight } = createApp(appOptions);
  const server = createAdaptorServer({ fetch: app.fetch, hostname: host });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    // E.g. EADDRINUSE: nothing was served.
    await abandon();
    throw error;
  }
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  let grpc: RunningGrpcServer | undefined;
  if (grpcPort !== undefined) {
    try {
      // Loaded only when asked for: its packages are optional peers.
      const { startGrpcServer } = await import('./grpc/server.js');
      grpc = await startGrpcServer({ store, logger, host, port: grpcPort, keys, tls: options.grpcTls });
    } catch (error) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await abandon();
      throw error;
    }
  }
  logger.info({ url, grpcPort: grpc?.port, store: redact(storeUrl), backend: store.backend, auth: Boolean(keys) }, 'listening');
  const scavenger = startScavenger(store, logger, scavengeInterval);

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      logger.info({ inFlight: inFlight.size, sseClients: hub.clients.size }, 'shutting down');
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const grpcClosed = grpc?.close(options.shutdownGraceMs);
      hub.closeAll('server shutting down');
      // Keep-alive connections become idle as their last response goes out: close them as they do.
      const closeIdle = () => (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
      closeIdle();
      const idleSweep = setInterval(closeIdle, 25);
      void closed.then(() => clearInterval(idleSweep));
      const grace = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), options.shutdownGraceMs ?? 10_000).unref());
      if ((await Promise.race([closed, grace])) === 'timeout') {
        logger.warn('grace period over: closing the remaining connections');
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      }
      clearInterval(idleSweep);
      await grpcClosed;
      // Appends already handed to the store finish (and are committed) before it closes.
      await Promise.allSettled([...inFlight]);
      await scavenger?.stop();
      // Connectors finish the delivery in flight and save their checkpoints while the store is open.
      await Promise.allSettled(connectors.map((connector) => connector.stop()));
      await store.close();
      logger.info('stopped');
      await new Promise<void>((resolve) => logger.flush(() => resolve()));
    })();
    return closing;
  };
  return { url, grpcPort: grpc?.port, store, close };
}

/**
 * Scavenges every `seconds`, one run at a time: hidden events (retention, deletes) are removed
 * physically. A failed run is logged and the next one tries again.
 */
function startScavenger(store: EventStore, logger: Logger, seconds: number | undefined): { stop(): Promise<void> } | undefined {
  if (seconds === undefined) return undefined;
  let running: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(async () => {
      try {
        const started = performance.now();
        const { removed } = await store.scavenge();
        if (removed > 0) logger.info({ removed, ms: Math.round(performance.now() - started) }, 'scavenged');
      } catch (error) {
        logger.warn({ err: error }, 'scavenge failed');
      }
    });
  }, seconds * 1000);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

/** A store URL without its password, for logs. */
export const redact = (url: string) => url.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@');
