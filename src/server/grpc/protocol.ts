/**
 * The KurrentDB v1 protocol, loaded on demand. Logline ships no protocol files of its own: the
 * service definitions and message classes are the ones the official Node.js client package
 * (`@kurrent/kurrentdb-client`, Apache-2.0) generates and ships, served with `@grpc/grpc-js`.
 * Both packages are optional peers, needed only when `--grpc-port` is given.
 */
import { createRequire } from 'node:module';
import type * as GrpcJs from '@grpc/grpc-js';
import type * as GossipPb from '@kurrent/kurrentdb-client/generated/kurrentdb/protocols/v1/gossip_pb.js';
import type * as FeaturesPb from '@kurrent/kurrentdb-client/generated/kurrentdb/protocols/v1/serverfeatures_pb.js';
import type * as SharedPb from '@kurrent/kurrentdb-client/generated/kurrentdb/protocols/v1/shared_pb.js';
import type * as StreamsPb from '@kurrent/kurrentdb-client/generated/kurrentdb/protocols/v1/streams_pb.js';
import { DriverMissingError } from '../../core/errors.js';

export type { FeaturesPb, GossipPb, GrpcJs, SharedPb, StreamsPb };

export interface Protocol {
  grpc: typeof GrpcJs;
  streams: typeof StreamsPb;
  shared: typeof SharedPb;
  features: typeof FeaturesPb;
  gossip: typeof GossipPb;
  services: {
    streams: GrpcJs.ServiceDefinition;
    features: GrpcJs.ServiceDefinition;
    gossip: GrpcJs.ServiceDefinition;
  };
}

const GENERATED = '@kurrent/kurrentdb-client/generated/kurrentdb/protocols/v1/';

let loaded: Protocol | undefined;

/** Loads grpc-js and the client's generated v1 definitions; DriverMissing when either is absent. */
export function loadProtocol(): Protocol {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  let grpc: typeof GrpcJs;
  try {
    grpc = require('@grpc/grpc-js') as typeof GrpcJs;
  } catch (error) {
    throw new DriverMissingError('gRPC (--grpc-port)', '@grpc/grpc-js', error);
  }
  const generated = <T>(file: string): T => {
    try {
      return require(`${GENERATED}${file}`) as T;
    } catch (error) {
      throw new DriverMissingError('gRPC (--grpc-port)', '@kurrent/kurrentdb-client', error);
    }
  };
  loaded = {
    grpc,
    streams: generated<typeof StreamsPb>('streams_pb.js'),
    shared: generated<typeof SharedPb>('shared_pb.js'),
    features: generated<typeof FeaturesPb>('serverfeatures_pb.js'),
    gossip: generated<typeof GossipPb>('gossip_pb.js'),
    services: {
      streams: generated<{ StreamsService: GrpcJs.ServiceDefinition }>('streams_grpc_pb.js').StreamsService,
      features: generated<{ ServerFeaturesService: GrpcJs.ServiceDefinition }>('serverfeatures_grpc_pb.js').ServerFeaturesService,
      gossip: generated<{ GossipService: GrpcJs.ServiceDefinition }>('gossip_grpc_pb.js').GossipService,
    },
  };
  return loaded;
}
