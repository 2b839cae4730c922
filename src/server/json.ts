/** JSON for the wire: positions are bigints in memory and decimal strings in JSON (design.md §2). */
import type { RecordedEvent } from '../core/types.js';

export const toWire = (event: RecordedEvent) => ({ ...event, position: event.position.toString() });

export const stringify = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
