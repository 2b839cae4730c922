/**
 * nats-server processes the tests start themselves (never the machine's shared service): a
 * 3-node JetStream cluster on loopback ports, or a lone server to restart. Each node has its own
 * store directory in a temp folder; `stop()` kills them and removes the folder.
 *
 *   const cluster = await startCluster();          // resolves once a meta leader is elected
 *   cluster.url                                      // nats://127.0.0.1:a,127.0.0.1:b,127.0.0.1:c
 *   cluster.kill(name) / cluster.restart(name) / cluster.stop()
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';

/** Whether a nats-server binary is on PATH (with CI=true a missing one is an error, never a skip). */
export function requireNatsServer(): boolean {
  const found = spawnSync('nats-server', ['--version']).status === 0;
  if (!found && process.env.CI === 'true') throw new Error('nats-server is not on PATH, and CI=true forbids skipping');
  if (!found) console.warn('nats-server is not on PATH; skipping the tests that start their own servers');
  return found;
}

const portFree = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });

/** `count` consecutive free loopback ports in an unusual range (34000–39999), tried at random. */
async function freePorts(count: number): Promise<number[]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 34_000 + Math.floor(Math.random() * 590) * 10;
    const ports = Array.from({ length: count }, (_, i) => base + i);
    if ((await Promise.all(ports.map(portFree))).every(Boolean)) return ports;
  }
  throw new Error('no free loopback ports found for the test nats-servers');
}

export interface NatsNode {
  name: string;
  port: number;
  process: ChildProcess;
}

export interface TestServers {
  /** A nats:// URL listing every node (the store's seed list). */
  url: string;
  nodes: NatsNode[];
  /** SIGKILL: no goodbye to the cluster, like a crashed machine. */
  kill(name: string): Promise<void>;
  /** Starts a killed node again on the same ports and store directory. */
  restart(name: string): Promise<void>;
  stop(): Promise<void>;
}

export interface ServerOptions {
  /** The server's max_payload (largest message, so largest append), bytes. Default: nats-server's 1 MiB. */
  maxPayload?: number;
  /** Require this user and password from clients. */
  auth?: { user: string; password: string };
}

interface NodeSpec {
  name: string;
  port: number;
  config: string;
}

function launch(spec: NodeSpec): ChildProcess {
  const child = spawn('nats-server', ['-c', spec.config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.on('data', (chunk) => {
    log = (log + chunk).slice(-4000);
  });
  child.on('exit', (code, signal) => {
    if (code && code !== 0 && signal === null) console.error(`nats-server ${spec.name} exited with ${code}: ${log}`);
  });
  return child;
}

const exited = (child: ChildProcess) =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise<void>((resolve) => child.once('exit', () => resolve()));

/** Waits until JetStream answers on every given port (in a cluster: a meta leader is elected). */
async function jetStreamReady(ports: number[], auth?: ServerOptions['auth'], timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const port of ports) {
    for (;;) {
      try {
        const nc = await connect({ servers: `127.0.0.1:${port}`, timeout: 1000, reconnect: false, user: auth?.user, pass: auth?.password });
        try {
          await (await jetstreamManager(nc, { timeout: 1000 })).getAccountInfo();
          break;
        } finally {
          await nc.close();
        }
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`JetStream on port ${port} not ready within ${timeoutMs} ms: ${String(error)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
}

async function startServers(count: number, options: ServerOptions = {}): Promise<TestServers> {
  const dir = mkdtempSync(join(tmpdir(), 'logline-nats-'));
  const ports = await freePorts(count * 2);
  const clientPorts = ports.slice(0, count);
  const routePorts = ports.slice(count);
  const specs: NodeSpec[] = clientPorts.map((port, i) => {
    const name = `n${i + 1}`;
    const storeDir = join(dir, name);
    mkdirSync(storeDir);
    const cluster =
      count > 1
        ? `cluster {
  name: logline_test
  listen: 127.0.0.1:${routePorts[i]}
  routes: [${routePorts
    .filter((_, j) => j !== i)
    .map((p) => `nats-route://127.0.0.1:${p}`)
    .join(', ')}]
}`
        : '';
    const config = join(dir, `${name}.conf`);
    writeFileSync(
      config,
      `server_name: ${name}
listen: 127.0.0.1:${port}
jetstream { store_dir: "${storeDir}", max_memory_store: 64MB, max_file_store: 1GB }
${options.maxPayload ? `max_payload: ${options.maxPayload}` : ''}
${options.auth ? `authorization { user: "${options.auth.user}", password: "${options.auth.password}" }` : ''}
${cluster}
`,
    );
    return { name, port, config };
  });
  const nodes: NatsNode[] = specs.map((spec) => ({ name: spec.name, port: spec.port, process: launch(spec) }));
  const find = (name: string) => {
    const node = nodes.find((n) => n.name === name);
    if (!node) throw new Error(`no node ${name}`);
    return node;
  };
  const servers: TestServers = {
    url: `nats://${clientPorts.map((p) => `127.0.0.1:${p}`).join(',')}`,
    nodes,
    async kill(name) {
      const node = find(name);
      node.process.kill('SIGKILL');
      await exited(node.process);
    },
    async restart(name) {
      const node = find(name);
      node.process = launch(specs.find((s) => s.name === name) as NodeSpec);
      await jetStreamReady([node.port], options.auth);
    },
    async stop() {
      for (const node of nodes) node.process.kill('SIGKILL');
      await Promise.all(nodes.map((node) => exited(node.process)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await jetStreamReady(clientPorts, options.auth);
  } catch (error) {
    await servers.stop();
    throw error;
  }
  return servers;
}

/** Three JetStream nodes routed to each other on loopback. */
export const startCluster = (options?: ServerOptions): Promise<TestServers> => startServers(3, options);
/** One JetStream server of the test's own, to stop and restart. */
export const startServer = (options?: ServerOptions): Promise<TestServers> => startServers(1, options);
