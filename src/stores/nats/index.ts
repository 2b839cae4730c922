/** The NATS JetStream backend. See docs/nats.md. */

export { POSITION_SCALE as NATS_POSITION_SCALE } from './rows.js';
export { dropLayout, LAYOUT_VERSION as NATS_LAYOUT_VERSION, type NatsLayout } from './schema.js';
export { isUnavailableError, type NatsEventStore, type NatsStoreOptions, openNatsStore } from './store.js';
