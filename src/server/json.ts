/** JSON for the wire: positions are bigints in memory and decimal strings in JSON (docs/store.md, the event model). */
import type { RecordedEvent } from '../core/types.js';

export const toWire = (event: RecordedEvent) => ({ ...event, position: event.position.toString() });

export const stringify = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
