/**
 * logline/connectors: deliver the log to other services (webhooks, RabbitMQ, NATS, MQTT), at
 * least once and in order per stream, with retries, a circuit breaker per sink, a bulkhead per
 * connector, and parked events. See docs/connectors.md.
 */

export {
  type ConnectorConfig,
  connectorsFileSchema,
  loadConnectorsConfig,
  parseConnectorsConfig,
  startConnectors,
} from './connectors/config.js';
export {
  type BreakerState,
  type ConnectorHandle,
  type ConnectorOptions,
  type ConnectorSource,
  type ConnectorStats,
  type DeliveryOptions,
  type Mapping,
  startConnector,
  toMessage,
} from './connectors/connector.js';
export { type HttpSinkOptions, httpSink, SIGNATURE_HEADER, signBody } from './connectors/http-sink.js';
export { type MqttSinkOptions, mqttSink } from './connectors/mqtt-sink.js';
export { type NatsSinkOptions, natsSink } from './connectors/nats-sink.js';
export { type RabbitMqSinkOptions, rabbitMqSink } from './connectors/rabbitmq-sink.js';
export { type OutboundMessage, PoisonMessageError, type Sink, SinkUnavailableError } from './connectors/sink.js';
