export {
  dropLayout,
  NATS_LAYOUT_VERSION,
  NATS_POSITION_SCALE,
  type NatsEventStore,
  type NatsLayout,
  type NatsStoreOptions,
  openNatsStore,
} from './stores/nats/index.js';
