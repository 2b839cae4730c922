/**
 * The memory store keeps RecordedEvent objects themselves (no schema, no serialization); its only
 * mapping is the copy handed out, so callers can't mutate stored events.
 */
import type { RecordedEvent } from '../../core/types.js';

/** Deep-freeze-free copy so callers can't mutate stored events through returned objects. */
export const copy = (event: RecordedEvent): RecordedEvent => ({
  ...event,
  data: structuredClone(event.data),
  metadata: structuredClone(event.metadata),
});
