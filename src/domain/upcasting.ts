/**
 * Schema versions and upcasting. Stored events are never rewritten: an event written at an old
 * schema version stays as it is forever and is upgraded each time it is read, one step at a time
 * (v1 -> v2 -> v3), possibly under a new type name. New events are written at the newest version,
 * recorded in `metadata.schemaVersion`.
 *
 * An event without `metadata.schemaVersion` is at the first version its type exists in (1, or the
 * version a rename introduced the type at), which is what an app wrote before it had versions.
 */
import { InvalidArgumentError } from '../core/errors.js';
import type { JsonObject, JsonValue, NewEvent, RecordedEvent } from '../core/types.js';
import { EventSchemaTooNewError } from './errors.js';

/** Upgrades events of `type` stored at schema version `from` to version `from + 1`. */
export interface Upcaster {
  type: string;
  from: number;
  /** The type name at version `from + 1`, when the step renames the type. */
  toType?: string;
  /** The new data. Gets the old data and the whole recorded event (for its metadata, times…). */
  upcast: (data: JsonValue, event: RecordedEvent) => JsonValue;
}

/** Typed sugar for one step: `upcaster<{ amt: number }, { amount: number }>({ type, from: 1, upcast: (d) => ({ amount: d.amt }) })`. */
export function upcaster<From extends JsonValue, To extends JsonValue>(step: {
  type: string;
  from: number;
  toType?: string;
  upcast: (data: From, event: RecordedEvent) => To;
}): Upcaster {
  return step as unknown as Upcaster;
}

export interface Upcasters {
  /** The newest schema version of a type: new events of that type are written at it. */
  currentVersion(type: string): number;
  /** The schema version a stored event is at. */
  versionOf(event: { type: string; metadata?: { [key: string]: JsonValue } }): number;
  /** Upgrades a recorded event to the newest version of its (possibly renamed) type. Sets metadata.schemaVersion; returns the same object when nothing changes. */
  upcast(event: RecordedEvent): RecordedEvent;
  /** Marks a new event with the newest schema version of its type. */
  stamp<E extends NewEvent>(event: E): E & { metadata: JsonObject };
}

const MAX_STEPS = 10_000;

export function defineUpcasters(steps: readonly Upcaster[]): Upcasters {
  const byKey = new Map<string, Upcaster>();
  // The version each type name starts at: 1, or the version a rename introduces it at.
  const firstVersion = new Map<string, number>();
  const lastVersion = new Map<string, number>();
  const note = (type: string, version: number) => {
    firstVersion.set(type, Math.min(firstVersion.get(type) ?? version, version));
    lastVersion.set(type, Math.max(lastVersion.get(type) ?? version, version));
  };
  for (const step of steps) {
    if (typeof step?.type !== 'string' || !step.type)
      throw new InvalidArgumentError('upcaster.type', `got ${JSON.stringify(step?.type)}`, 'an event type name');
    if (!Number.isSafeInteger(step.from) || step.from < 1) {
      throw new InvalidArgumentError('upcaster.from', `got ${JSON.stringify(step.from)} for '${step.type}'`, 'a schema version ≥ 1');
    }
    if (typeof step.upcast !== 'function')
      throw new InvalidArgumentError('upcaster.upcast', `missing for '${step.type}' v${step.from}`, 'a function');
    const key = `${step.type}\u0000${step.from}`;
    if (byKey.has(key))
      throw new InvalidArgumentError('upcasters', `two upcasters for '${step.type}' from version ${step.from}`, 'one per (type, version)');
    byKey.set(key, step);
    note(step.type, step.from);
    note(step.toType ?? step.type, step.from + 1);
  }
  // Every version between a type's first and last needs its step, or events in the gap could never be upgraded.
  for (const [type, first] of firstVersion) {
    const last = lastVersion.get(type) as number;
    for (let v = first; v < last; v++) {
      if (!byKey.has(`${type}\u0000${v}`)) {
        throw new InvalidArgumentError(
          'upcasters',
          `'${type}' has versions ${first}..${last} but no upcaster from version ${v}`,
          'a contiguous chain',
        );
      }
    }
  }

  const currentVersion = (type: string) => lastVersion.get(type) ?? 1;
  const versionOf = (event: { type: string; metadata?: { [key: string]: JsonValue } }) => {
    const declared = event.metadata?.schemaVersion;
    return typeof declared === 'number' && Number.isSafeInteger(declared) && declared >= 1 ? declared : (firstVersion.get(event.type) ?? 1);
  };

  return {
    currentVersion,
    versionOf,
    upcast(event) {
      let version = versionOf(event);
      let current = event;
      for (let steps = 0; steps < MAX_STEPS; steps++) {
        const step = byKey.get(`${current.type}\u0000${version}`);
        if (!step) break;
        const data = step.upcast(current.data, current);
        version++;
        current = { ...current, type: step.toType ?? current.type, data, metadata: { ...current.metadata, schemaVersion: version } };
      }
      const known = currentVersion(current.type);
      if (version > known) throw new EventSchemaTooNewError(current.type, version, known, event.id);
      // Events from before versioning get their version spelled out, so evolve can always read it.
      if (current.metadata.schemaVersion !== version) current = { ...current, metadata: { ...current.metadata, schemaVersion: version } };
      return current;
    },
    stamp(event) {
      return { ...event, metadata: { ...event.metadata, schemaVersion: currentVersion(event.type) } };
    },
  };
}

/** Upgrades events one by one as they stream past (for readers outside a decider, e.g. projections). */
export async function* upcastAll(events: AsyncIterable<RecordedEvent>, upcasters: Upcasters | undefined): AsyncIterable<RecordedEvent> {
  if (!upcasters) {
    yield* events;
    return;
  }
  for await (const event of events) yield upcasters.upcast(event);
}
