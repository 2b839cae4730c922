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
   * Events as stored: personal fields stay sealed in `metadata.$sealed` (what `logline export`
   * writes, so an export never holds their plaintext). Default false: readers see them opened.
   */
  sealed?: boolean;
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

/** What `forget` answers (docs/lifecycle.md#forget-a-person). */
export interface ForgetResult {
  subject: string;
  /** When the subject's key was destroyed (by the first forget). */
  forgottenAt: string;
  /** true when an earlier forget had already destroyed the key: this call changed nothing. */
  alreadyForgotten: boolean;
}

/** A subject the store knows: an event declared personal data for it. */
export interface SubjectStatus {
  subject: string;
  /** When its key was created (its first personal data). */
  createdAt: string;
  /** Set once the subject is forgotten. */
  forgottenAt?: string;
}

/** Longest data subject id (metadata.subject), in characters. */
export const MAX_SUBJECT_LENGTH = 200;

/** The format tag every subject key record carries (docs/lifecycle.md#backups-and-restores). */
export const SUBJECT_KEYS_FORMAT = 'logline-subject-keys/1';

/**
 * One subject's key as `exportSubjectKeys` writes it and `importSubjectKeys` reads it (one NDJSON
 * line of `logline keys export`). As sensitive as the personal data itself unless `wrapped`.
 */
export interface SubjectKeyRecord {
  format: typeof SUBJECT_KEYS_FORMAT;
  subject: string;
  /** The key exactly as the store holds it, base64: 32 bytes raw, or 60 wrapped by the master key. Absent once forgotten. */
  key?: string;
  /** Whether `key` is wrapped by the store's master key (then only a store with the same master key opens it). */
  wrapped: boolean;
  createdAt: string;
  /** Set once the subject is forgotten (then there is no key). */
  forgottenAt?: string;
  /** The streams holding the subject's events (forget drops their snapshots). */
  streams: string[];
}

/** What `importSubjectKeys` did, per subject. */
export interface SubjectKeyImportResult {
  /** Subjects the store did not know, stored as given (a key, or forgotten). */
  imported: number;
  /** Subjects already in the same state: the same key, or forgotten here already (forget wins). */
  unchanged: number;
  /** Subjects that held a key here and were forgotten in the backup: forgotten here now. */
  forgotten: number;
  /** Subjects that hold a different live key here: reported, nothing changed for them. */
  conflicts: string[];
}

/**
 * A stream's retention settings (docs/lifecycle.md#retention-and-deletion). Events outside them are
 * invisible to every read at once; a scavenge later removes them physically.
 */
export interface StreamMetadata {
  /** Keep only the newest `maxCount` events (integer ≥ 1). */
  maxCount?: number;
  /** Keep only events recorded less than this many seconds ago (integer ≥ 1). */
  maxAgeSeconds?: number;
  /** Hide every event with a stream version below this one (integer ≥ 1). */
  truncateBefore?: number;
}

/** A stream's metadata and whether it was deleted (soft: until it is written again; hard: forever). */
export interface StreamLifecycle extends StreamMetadata {
  deleted?: 'soft' | 'hard';
}

/** One stream that has metadata or was deleted (the admin page's list). */
export interface StreamLifecycleInfo extends StreamLifecycle {
  streamId: string;
  /** The stream's version: it survives deletion and scavenges. */
  version: number;
}

export interface DeleteStreamOptions {
  /** Checked like an append's: the stream's current version must match. */
  expectedVersion?: ExpectedVersion;
  /** Tombstone: every later append fails with StreamDeletedError. Default false (soft delete). */
  hard?: boolean;
}

export interface ScavengeResult {
  /** Events removed physically. */
  removed: number;
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
  /** Replaces the stream's retention settings ({} clears them); reads honour them at once. */
  setStreamMetadata(stream: string, metadata: StreamMetadata): Promise<void>;
  getStreamMetadata(stream: string): Promise<StreamLifecycle>;
  /** Soft delete (reads find nothing, a later append continues the versions) or tombstone (`hard`). */
  deleteStream(stream: string, opts?: DeleteStreamOptions): Promise<{ streamVersion: number }>;
  /** Streams with metadata or deleted, by stream id. */
  listStreamLifecycles(opts?: { after?: string; limit?: number }): Promise<StreamLifecycleInfo[]>;
  /** Removes the events no read can see any more; versions and positions never change. */
  scavenge(): Promise<ScavengeResult>;
  /**
   * Restores where a stream starts (docs/lifecycle.md#backups-and-restores): the stream, which
   * must not exist, gets version `version` with its versions 1..version absent, as after a
   * scavenge that removed them, so an import can append the first event an export kept at its
   * original version (expectedVersion `version`). A stream already at `version` is left as it is
   * (an import resumed); one at another version is WrongExpectedVersionError (expected
   * 'no_stream'), a tombstoned one StreamDeletedError; `version` is an integer ≥ 1.
   */
  restoreStreamStart(stream: string, version: number): Promise<void>;
  saveSnapshot(snapshot: Snapshot): Promise<void>;
  loadSnapshot(stream: string, name: string): Promise<Snapshot | undefined>;
  /**
   * Forgets a person: destroys the subject's key, drops the snapshots of its streams and appends
   * a `SubjectForgotten` notification to `$subjects`. Idempotent; UnknownSubjectError for a
   * subject no event declared personal data for (docs/lifecycle.md#forget-a-person).
   */
  forget(subject: string): Promise<ForgetResult>;
  /** A subject's key state; undefined when the store does not know it. */
  subjectStatus(subject: string): Promise<SubjectStatus | undefined>;
  /**
   * Every subject's key, in subject order, read a page at a time: the key backup an event export
   * needs for its personal data to read plain after a restore (docs/lifecycle.md#backups-and-restores).
   */
  exportSubjectKeys(): AsyncIterable<SubjectKeyRecord>;
  /**
   * Restores subject keys: unknown subjects are stored as given, the same key again changes
   * nothing, a subject forgotten on either side ends forgotten (this store's forget runs when it
   * held a key), a different live key is a conflict (reported, left alone). A bad record is an
   * InvalidArgumentError naming the field; nothing of it is stored.
   */
  importSubjectKeys(records: Iterable<SubjectKeyRecord> | AsyncIterable<SubjectKeyRecord>): Promise<SubjectKeyImportResult>;
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
