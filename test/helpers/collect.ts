import type { RecordedEvent } from '../../src/index.js';

export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/** Takes `count` events from a (live) iterable, then stops it; fails after `timeoutMs`. */
export async function take(iterable: AsyncIterable<RecordedEvent>, count: number, timeoutMs = 10_000): Promise<RecordedEvent[]> {
  const out: RecordedEvent[] = [];
  if (count === 0) return out;
  const iterator = iterable[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`take: got ${out.length} of ${count} events within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    while (out.length < count) {
      const next = await Promise.race([iterator.next(), timeout]);
      if (next.done) break;
      out.push(next.value);
    }
  } finally {
    clearTimeout(timer);
    await iterator.return?.();
  }
  return out;
}

export const event = (type: string, data: unknown = {}, extra: Record<string, unknown> = {}) =>
  ({ type, data, ...extra }) as { type: string; data: never };

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
