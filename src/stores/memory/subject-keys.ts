/** The memory store's subject keys: a map that lives as long as the store (docs/lifecycle.md#forget-a-person). */
import type { KeyTable, StoredKey } from '../../core/personal-data.js';

/** `dropSnapshots` removes the snapshots of a forgotten subject's streams. */
export function createMemoryKeyTable(dropSnapshots: (streams: string[]) => void): KeyTable {
  const keys = new Map<string, StoredKey>();
  const streams = new Map<string, Set<string>>();
  return {
    load(subjects) {
      const found = new Map<string, StoredKey>();
      for (const subject of subjects) {
        const row = keys.get(subject);
        if (row) found.set(subject, row);
      }
      return found;
    },
    insert(created, pairs, at) {
      for (const [subject, key] of created) if (!keys.has(subject)) keys.set(subject, { key, createdAt: at, forgottenAt: undefined });
      for (const [subject, stream] of pairs) {
        const known = streams.get(subject) ?? new Set<string>();
        known.add(stream);
        streams.set(subject, known);
      }
    },
    forget(subject, at) {
      const row = keys.get(subject);
      if (!row) return undefined;
      if (row.forgottenAt !== undefined) return { subject, forgottenAt: row.forgottenAt, alreadyForgotten: true };
      row.key?.fill(0);
      keys.set(subject, { key: undefined, createdAt: row.createdAt, forgottenAt: at });
      dropSnapshots([...(streams.get(subject) ?? [])]);
      return { subject, forgottenAt: at, alreadyForgotten: false };
    },
    list(after, limit) {
      return [...keys.keys()]
        .filter((subject) => subject > after)
        .sort()
        .slice(0, limit)
        .map((subject) => ({ subject, ...(keys.get(subject) as StoredKey), streams: [...(streams.get(subject) ?? [])].sort() }));
    },
    restore(rows) {
      for (const { subject, key, createdAt, forgottenAt, streams: held } of rows) {
        // A copy: forget zeroes the stored bytes, which must not be the caller's.
        if (!keys.has(subject)) keys.set(subject, { key: key && Uint8Array.from(key), createdAt, forgottenAt });
        streams.set(subject, new Set([...(streams.get(subject) ?? []), ...held]));
      }
    },
    status(subject) {
      const row = keys.get(subject);
      return row && { subject, createdAt: row.createdAt, ...(row.forgottenAt === undefined ? {} : { forgottenAt: row.forgottenAt }) };
    },
  };
}
