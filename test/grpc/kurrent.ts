/**
 * Helpers for driving `logline serve --grpc-port` with the official KurrentDB Node.js client.
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as GrpcJs from '@grpc/grpc-js';
import { KurrentDBClient, type ResolvedEvent } from '@kurrent/kurrentdb-client';
import { expect } from 'vitest';
import { type ServerProcess, startServerProcess } from '../server/process.js';

export interface GrpcServer {
  server: ServerProcess;
  port: number;
}

/** The gRPC port from the server's "listening" log line. */
export function grpcPortOf(server: ServerProcess): number {
  for (const line of server.logs) {
    const entry = JSON.parse(line) as { msg?: string; grpcPort?: number };
    if (entry.msg === 'listening' && entry.grpcPort) return entry.grpcPort;
  }
  throw new Error(`no gRPC port in the server's logs: ${server.logs.join('\n')}`);
}

export async function startGrpcServer(args: string[], port = 0, env: NodeJS.ProcessEnv = {}): Promise<GrpcServer> {
  const server = await startServerProcess([...args, '--grpc-port', String(port)], env);
  return { server, port: grpcPortOf(server) };
}

/** A client as an existing KurrentDB application would open one (credentials included, as is common). */
export const plaintextClient = (port: number, scheme = 'kurrentdb') =>
  KurrentDBClient.connectionString(`${scheme}://admin:changeit@127.0.0.1:${port}?tls=false`);

/** All of an async iterable. */
export async function all<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/** The error a promise rejects with (fails the test when it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await promise;
  } catch (error) {
    return error as Error & Record<string, unknown>;
  }
  throw new Error('expected a rejection');
}

export const eventsOf = (resolved: ResolvedEvent[]) => resolved.map((r) => r.event).filter((e) => e !== undefined);

/** Waits until `check` holds (polling), failing after `timeoutMs`. */
export async function eventually(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) expect.fail('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Calls ServerFeatures.GetSupportedMethods directly with grpc-js and the client's own definitions. */
export async function supportedMethods(port: number): Promise<{ version: string; methods: string[] }> {
  const require = createRequire(import.meta.url);
  const grpc = require('@grpc/grpc-js') as typeof GrpcJs;
  const generated = '@kurrent/kurrentdb-client/generated/kurrentdb/protocols/v1/';
  const { ServerFeaturesClient } = require(`${generated}serverfeatures_grpc_pb.js`);
  const { Empty } = require(`${generated}shared_pb.js`);
  const client = new ServerFeaturesClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  try {
    const reply = await new Promise<{
      getEventStoreServerVersion(): string;
      getMethodsList(): { getServiceName(): string; getMethodName(): string }[];
    }>((resolve, reject) =>
      client.getSupportedMethods(new Empty(), (error: Error | null, value: never) => (error ? reject(error) : resolve(value))),
    );
    return {
      version: reply.getEventStoreServerVersion(),
      methods: reply.getMethodsList().map((m) => `${m.getServiceName()}/${m.getMethodName()}`),
    };
  } finally {
    client.close();
  }
}

/**
 * Starts an Append with grpc-js and the client's own definitions and a deadline of `deadlineMs`,
 * sends the options and `count` events, and never finishes: the client gives up at its deadline
 * as the official client does (grpc-js closes the stream: END_STREAM, then RST_STREAM). Resolves
 * with the status the client saw.
 */
export async function appendUntilDeadline(
  port: number,
  stream: string,
  { count, deadlineMs }: { count: number; deadlineMs: number },
): Promise<number> {
  const require = createRequire(import.meta.url);
  const grpc = require('@grpc/grpc-js') as typeof GrpcJs;
  const generated = '@kurrent/kurrentdb-client/generated/kurrentdb/protocols/v1/';
  const { StreamsClient } = require(`${generated}streams_grpc_pb.js`);
  const { AppendReq } = require(`${generated}streams_pb.js`);
  const { Empty, StreamIdentifier, UUID } = require(`${generated}shared_pb.js`);
  const client = new StreamsClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  try {
    // Connected first, so that the events go out well within the deadline.
    await new Promise<void>((resolve, reject) =>
      client.waitForReady(Date.now() + 5000, (error?: Error) => (error ? reject(error) : resolve())),
    );
    return await new Promise<number>((resolve) => {
      const call = client.append(new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (error: GrpcJs.ServiceError | null) =>
        resolve(error ? error.code : grpc.status.OK),
      );
      const identifier = new StreamIdentifier().setStreamName(Buffer.from(stream));
      call.write(new AppendReq().setOptions(new AppendReq.Options().setStreamIdentifier(identifier).setAny(new Empty())));
      for (let n = 0; n < count; n++) {
        const message = new AppendReq.ProposedMessage()
          .setId(new UUID().setString(randomUUID()))
          .setData(Buffer.from(JSON.stringify({ n })));
        message.getMetadataMap().set('type', 'OrderPlaced').set('content-type', 'application/json');
        call.write(new AppendReq().setProposedMessage(message));
      }
    });
  } finally {
    client.close();
  }
}
