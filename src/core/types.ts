/** The event model and the store contract (docs/store.md). */

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** What a writer hands in. */
export interface NewEvent<Type extends string = string, Data extends JsonValue = JsonValue> {
  /** UUID; generated when absent. The idempotency key. */
  id?: string;
  /** Past-tense noun: 'UserCreated'. */
  type: Type;
  data: Data;
  /** correlationId, causationId, userId, schemaVersion… */
  metadata?: JsonObject;
  /** ISO-8601 valid time ("when it happened"); defaults to recordedAt. */
  occurredAt?: string;
}

/** An event as the store returns it. */
export interface RecordedEvent<Type extends string = string, Data extends JsonValue = JsonValue> {
  id: string;
  type: Type;
  data: Data;
  metadata: JsonObject;
  occurredAt: string;
  streamId: string;
  /** 1 for the first event of a stream; contiguous. */
  streamVersion: number;
  /** Position in the global `$all` log; strictly increasing, may have gaps. */
  position: bigint;
  /** ISO-8601 transaction time, set by the store. */
  recordedAt: string;
}

/** 'any': no check; 'no_stream': the stream must not exist; 'exists': it must; n: its current version must be n. */
export type ExpectedVersion = 'any' | 'no_stream' | 'exists' | number;

export interface AppendOptions {
  expectedVersion?: ExpectedVersion;
}

export interface AppendResult {
  /** Version of the last event written (or of the stream, for an empty append). */
  streamVersion: number;
  /** Position of the last event written. */
  position: bigint;
}

export interface ReadOptions {
  /** First version to return (inclusive). Default: 1 forward, the last version backward. */
  from?: number;
  direction?: 'forward' | 'backward';
  /** Maximum number of events to return. */
  limit?: number;
}

export interface ReadAllOptions {
  /** Exclusive: only events with position > from. Default 0n. */
  from?: bigint;
  limit?: number;
  /** Only these event types. */
  types?: string[];
  /** Only streams whose id starts with this prefix. */
  streamPrefix?: string;
  /**
   * Only streams of this category: the part of a stream id before its first '-' (`user` holds
   * `user-1`, `user-1-a`; a stream id without '-' is in no category). Read through an index.
   */
  category?: string;
}

export interface SubscribeOptions {
  /** Exclusive position, 'start' (= 0n, the default) or 'end' (only events appended from now on). */
  from?: bigint | 'start' | 'end';
  types?: string[];
  streamPrefix?: string;
  /** See ReadAllOptions.category. */
  category?: string;
  signal?: AbortSignal;
}

export interface StreamInfo {
  streamId: string;
  version: number;
  lastPosition: bigint;
  lastRecordedAt: string;
}

export interface ListStreamsOptions {
  /** Only stream ids starting with this prefix. */
  prefix?: string;
  /** Only stream ids that sort after this one (paging). */
  after?: string;
  limit?: number;
}

export interface StoreStats {
  events: number;
  streams: number;
  headPosition: bigint;
}

/** A snapshot of an aggregate's state at a stream version (see src/domain). */
export interface Snapshot {
  streamId: string;
  /** Which decider/aggregate took it: one stream can have several. */
  name: string;
  /** The stream version whose state this is. */
  streamVersion: number;
  /** The decider's snapshot schema version; older ones are ignored and rebuilt. */
  snapshotVersion: number;
  state: JsonValue;
  takenAt: string;
}

export interface EventStore {
  append(stream: string, events: NewEvent[], opts?: AppendOptions): Promise<AppendResult>;
  read(stream: string, opts?: ReadOptions): AsyncIterable<RecordedEvent>;
  readAll(opts?: ReadAllOptions): AsyncIterable<RecordedEvent>;
  subscribe(opts?: SubscribeOptions): AsyncIterable<RecordedEvent>;
  /** Current version of a stream, 0 when it does not exist. */
  streamVersion(stream: string): Promise<number>;
  /** Position of the newest event in the log, 0n when empty. */
  headPosition(): Promise<bigint>;
  listStreams(opts?: ListStreamsOptions): Promise<StreamInfo[]>;
  stats(): Promise<StoreStats>;
  saveSnapshot(snapshot: Snapshot): Promise<void>;
  loadSnapshot(stream: string, name: string): Promise<Snapshot | undefined>;
  close(): Promise<void>;
  /** 'memory' | 'sqlite' | 'postgres' | 'nats' */
  readonly backend: string;
  readonly limits: StoreLimits;
}

export interface StoreLimits {
  /** Largest JSON size of one event (data + metadata + envelope), bytes. */
  maxEventBytes: number;
  /** Largest JSON size of one append, bytes. */
  maxAppendBytes: number;
  /** Most events in one append. */
  maxAppendEvents: number;
}

export const DEFAULT_LIMITS: StoreLimits = {
  maxEventBytes: 1024 * 1024,
  maxAppendBytes: 16 * 1024 * 1024,
  maxAppendEvents: 10_000,
};
