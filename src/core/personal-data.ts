/**
 * Personal data and crypto-shredding (docs/lifecycle.md#forget-a-person).
 *
 * An event declares its personal data at append: `metadata.subject` (whose data it is) and
 * `metadata.personal` (names of top-level `data` fields). Those fields leave `data` and are
 * stored sealed in `metadata.$sealed`: AES-256-GCM under the subject's key, a fresh random IV
 * per event, the event id and subject as associated data (a sealed blob moved to another event
 * does not open). Forgetting a subject destroys its key: its events then read with the personal
 * fields gone and `metadata.forgotten: true`, everything else unchanged.
 *
 * This file holds the pure parts every backend shares: validation, sealing, opening, key
 * wrapping. Each backend keeps its key table in `src/stores/<name>/subject-keys.ts`.
 */
import { createCipheriv, createDecipheriv, createHash, createSecretKey, type KeyObject, randomBytes } from 'node:crypto';
import { InvalidArgumentError, LoglineError } from './errors.js';
import { exportSubjectKeys, importSubjectKeys } from './key-backup.js';
import {
  type ForgetResult,
  type JsonObject,
  type JsonValue,
  MAX_SUBJECT_LENGTH,
  type RecordedEvent,
  type SubjectKeyImportResult,
  type SubjectKeyRecord,
  type SubjectStatus,
} from './types.js';
import type { PreparedEvent } from './validation.js';

/** Metadata key of the sealed personal fields in the stored form of an event. */
export const SEALED = '$sealed';
/** Stream and type of the notification `forget` appends (a system stream: `$` is reserved). */
export const SUBJECTS_STREAM = '$subjects';
export const SUBJECT_FORGOTTEN = 'SubjectForgotten';

const SEALED_PREFIX = 'v1.';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class UnknownSubjectError extends LoglineError {
  constructor(subject: string) {
    super(
      'UnknownSubject',
      `Subject '${subject}' is unknown: no event declared personal data for it. Expected the metadata.subject of an appended event.`,
      { subject },
    );
  }
}

export class SubjectForgottenError extends LoglineError {
  constructor(subject: string, forgottenAt: string) {
    super(
      'SubjectForgotten',
      `Subject '${subject}' was forgotten at ${forgottenAt}; personal data for it can no longer be stored. Expected a subject that was not forgotten (a new id).`,
      { subject, forgottenAt },
    );
  }
}

/** A subject's key as the key table holds it: raw, or wrapped by the master key. */
export interface StoredKey {
  /** undefined once forgotten. */
  key: Uint8Array | undefined;
  createdAt: string;
  forgottenAt: string | undefined;
}

function assertSubject(subject: unknown): asserts subject is string {
  if (typeof subject !== 'string' || subject.length === 0 || subject.length > MAX_SUBJECT_LENGTH) {
    throw new InvalidArgumentError('subject', `got ${JSON.stringify(subject)}`, `a string of 1 to ${MAX_SUBJECT_LENGTH} characters`);
  }
}

export function assertMasterKey(masterKey: Uint8Array | undefined): void {
  if (masterKey !== undefined && !(masterKey instanceof Uint8Array && masterKey.length === KEY_BYTES)) {
    throw new InvalidArgumentError(
      'masterKey',
      `got ${masterKey instanceof Uint8Array ? `${masterKey.length} bytes` : typeof masterKey}`,
      '32 bytes (AES-256)',
    );
  }
}

/** The master key in LOGLINE_MASTER_KEY (base64 of 32 bytes), if set. */
export function masterKeyFromEnv(env: NodeJS.ProcessEnv = process.env): Uint8Array | undefined {
  const raw = env.LOGLINE_MASTER_KEY;
  if (!raw) return undefined;
  const key = Buffer.from(raw, 'base64');
  if (key.length !== KEY_BYTES) {
    throw new InvalidArgumentError(
      'LOGLINE_MASTER_KEY',
      `it decodes to ${key.length} bytes`,
      '32 bytes in base64 (openssl rand -base64 32)',
    );
  }
  return key;
}

const NONE: string[] = [];

/**
 * The problems of one event's personal-data declaration ([] when fine or absent). A sealed event
 * (as `logline export` writes it) declares fields that are no longer in `data`.
 */
export function personalDataProblems(data: JsonValue, metadata: JsonObject | undefined): string[] {
  if (!metadata) return NONE;
  const { subject, personal } = metadata;
  const sealed = metadata[SEALED];
  if (subject === undefined && personal === undefined && sealed === undefined) return NONE;
  const problems: string[] = [];
  if (subject !== undefined && !(typeof subject === 'string' && subject.length > 0 && subject.length <= MAX_SUBJECT_LENGTH)) {
    problems.push(`metadata.subject must be a string of 1 to ${MAX_SUBJECT_LENGTH} characters`);
  }
  if (personal === undefined) {
    if (sealed !== undefined) problems.push(`metadata.${SEALED} is reserved for sealed personal fields and needs metadata.personal`);
    return problems;
  }
  if (!(Array.isArray(personal) && personal.length > 0 && personal.every((f) => typeof f === 'string' && f.length > 0))) {
    problems.push('metadata.personal must be a non-empty array of data field names');
    return problems;
  }
  if (new Set(personal).size !== personal.length) problems.push('metadata.personal names a field twice');
  if (subject === undefined) problems.push('metadata.personal needs metadata.subject (whose personal data it is)');
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    problems.push('metadata.personal needs data to be an object (it names top-level fields)');
    return problems;
  }
  if (sealed !== undefined) {
    if (typeof sealed !== 'string' || !sealed.startsWith(SEALED_PREFIX))
      problems.push(`metadata.${SEALED} must be a sealed blob as exported`);
    const inData = (personal as string[]).filter((f) => Object.hasOwn(data, f));
    if (inData.length) problems.push(`sealed field(s) ${inData.join(', ')} must not also be in data`);
    return problems;
  }
  const missing = (personal as string[]).filter((f) => !Object.hasOwn(data, f));
  if (missing.length) problems.push(`metadata.personal names field(s) ${missing.join(', ')} that are not in data`);
  return problems;
}

const isPersonal = (event: PreparedEvent): boolean => event.metadata.personal !== undefined;

/** Subjects whose keys an append needs: to seal (`create`: a key is made if missing) or to open a sealed import. */
function subjectsToSeal(events: PreparedEvent[]): { create: string[]; open: string[] } {
  const create = new Set<string>();
  const open = new Set<string>();
  for (const event of events) {
    if (!isPersonal(event)) continue;
    const subject = event.metadata.subject as string;
    (event.metadata[SEALED] === undefined ? create : open).add(subject);
  }
  return { create: [...create], open: [...open] };
}

/** A fresh subject key and the form the key table stores (wrapped when there is a master key). */
function newSubjectKey(masterKey: Uint8Array | undefined): { key: Buffer; stored: Buffer } {
  const key = randomBytes(KEY_BYTES);
  return { key, stored: masterKey ? encrypt(masterKey, key, Buffer.from('logline subject key')) : key };
}

/** The subject key from its stored form; a wrapped key needs the master key it was wrapped with. */
export function unwrapKey(stored: Uint8Array, masterKey: Uint8Array | undefined): Buffer {
  if (stored.length === KEY_BYTES) return Buffer.from(stored);
  const plain = masterKey ? decrypt(masterKey, stored, Buffer.from('logline subject key')) : undefined;
  if (!plain) {
    throw new InvalidArgumentError(
      'masterKey',
      masterKey
        ? 'it does not open the subject keys of this store'
        : 'the subject keys of this store are wrapped by a master key and none was given',
      'the master key the subject keys were created with (option masterKey or LOGLINE_MASTER_KEY)',
    );
  }
  return plain;
}

function encrypt(key: Uint8Array | KeyObject, plain: Buffer, aad: Buffer): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]);
}

function decrypt(key: Uint8Array | KeyObject, sealed: Uint8Array, aad: Buffer): Buffer | undefined {
  if (sealed.length < IV_BYTES + TAG_BYTES) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV_BYTES));
    decipher.setAAD(aad);
    decipher.setAuthTag(sealed.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(sealed.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
  } catch {
    return undefined;
  }
}

const aadOf = (id: string, subject: string) => Buffer.from(`${id}\u0000${subject}`);

/**
 * Seals the personal fields of `events` in place: `dataJson` / `metadataJson` (what the backend
 * stores) lose them and gain `$sealed`; `data` / `metadata` stay what a reader sees (inline
 * projections and idempotent-retry checks use them). A sealed import keeps its stored form and
 * is opened for `data` / `metadata` with the key it finds (or reads as forgotten without one).
 * `keys` maps each subject to its (unwrapped) key.
 */
function sealEvents(events: PreparedEvent[], keys: Map<string, KeyObject | undefined>): void {
  for (const event of events) {
    if (!isPersonal(event)) continue;
    const subject = event.metadata.subject as string;
    const key = keys.get(subject);
    if (event.metadata[SEALED] !== undefined) {
      const opened = openEvent({ id: event.id, data: event.data, metadata: event.metadata }, key);
      event.data = opened.data;
      event.metadata = opened.metadata;
      continue;
    }
    if (!key) throw new Error(`no key for subject '${subject}'`); // the key table creates them first
    const data = event.data as JsonObject;
    const fields: JsonObject = {};
    const rest: JsonObject = {};
    const personal = new Set(event.metadata.personal as string[]);
    for (const name of Object.keys(data)) {
      if (personal.has(name)) fields[name] = data[name] as JsonValue;
      else rest[name] = data[name] as JsonValue;
    }
    const sealed = encrypt(key, Buffer.from(JSON.stringify(fields)), aadOf(event.id, subject));
    event.dataJson = JSON.stringify(rest);
    event.metadataJson = JSON.stringify({ ...event.metadata, [SEALED]: `${SEALED_PREFIX}${sealed.toString('base64')}` });
  }
}

/** Subjects whose keys reading `events` needs ([] when none is sealed: the common case costs one scan). */
export function sealedSubjects(events: readonly { metadata: JsonObject }[]): string[] {
  let subjects: Set<string> | undefined;
  for (const event of events) {
    if (event.metadata[SEALED] === undefined) continue;
    subjects ??= new Set();
    subjects.add(String(event.metadata.subject));
  }
  return subjects ? [...subjects] : [];
}

/** The event a reader sees: personal fields back in `data`, or gone with `metadata.forgotten: true`. */
function openEvent<E extends { id: string; data: JsonValue; metadata: JsonObject }>(event: E, key: KeyObject | undefined): E {
  const { [SEALED]: sealed, ...metadata } = event.metadata;
  const subject = String(event.metadata.subject);
  const plain =
    key && typeof sealed === 'string'
      ? decrypt(key, Buffer.from(sealed.slice(SEALED_PREFIX.length), 'base64'), aadOf(event.id, subject))
      : undefined;
  // No key (forgotten, or an import from a store that held it) or a blob that does not open.
  if (!plain) return { ...event, metadata: { ...metadata, forgotten: true } };
  return { ...event, data: { ...(event.data as JsonObject), ...(JSON.parse(plain.toString()) as JsonObject) }, metadata };
}

/** Opens every sealed event of a page; `keys` maps subjects to keys (absent or undefined: forgotten). */
export function openEvents(events: RecordedEvent[], keys: Map<string, KeyObject | undefined>): RecordedEvent[] {
  return events.map((event) => (event.metadata[SEALED] === undefined ? event : openEvent(event, keys.get(String(event.metadata.subject)))));
}

/** Unwraps the readable keys of a key-table lookup (forgotten and unknown subjects map to undefined). */
export function readableKeys(
  stored: Map<string, Pick<StoredKey, 'key'>>,
  masterKey: Uint8Array | undefined,
): Map<string, KeyObject | undefined> {
  const keys = new Map<string, KeyObject | undefined>();
  // A KeyObject per page: ciphers made from one skip the key import (measured ~40% faster per event).
  for (const [subject, row] of stored) keys.set(subject, row.key ? createSecretKey(unwrapKey(row.key, masterKey)) : undefined);
  return keys;
}

/** A key as `load` answers it. */
export interface LoadedKey extends StoredKey {
  /**
   * With load's `stream`, where the backend answers it in the same read: whether the table notes
   * that stream for the subject already (then an append needs no write to note it).
   */
  streamNoted?: boolean;
}

/** A backend's key table (src/stores/<name>/subject-keys.ts); SQLite's and memory's answer synchronously. */
export interface KeyTable {
  /** The stored keys of these subjects (unknown subjects are absent); see LoadedKey for `stream`. */
  load(subjects: string[], stream?: string): MaybePromise<Map<string, LoadedKey>>;
  /**
   * Stores keys for subjects that have none (another writer's key wins) and notes which streams
   * hold a subject's events (so forget can drop their snapshots).
   */
  insert(keys: Map<string, Uint8Array>, streams: [subject: string, stream: string][], at: string): MaybePromise<void>;
  /**
   * Destroys the subject's key and drops the snapshots of its streams, in one transaction;
   * undefined for an unknown subject. Makes the old key bytes unrecoverable where the backend can.
   */
  forget(subject: string, at: string): MaybePromise<ForgetResult | undefined>;
  status(subject: string): MaybePromise<SubjectStatus | undefined>;
  /** Up to `limit` subjects after `after`, in subject order, with the streams holding their events (a key backup's page). */
  list(after: string, limit: number): MaybePromise<SubjectKeyRow[]>;
  /**
   * Stores these rows as given (a key, or forgotten without one) for subjects that have none yet
   * (a subject already there keeps its row) and notes their streams: a key backup's restore.
   */
  restore(rows: SubjectKeyRow[]): MaybePromise<void>;
}

/** One subject of the key table with the streams holding its events: what a key backup holds. */
export interface SubjectKeyRow extends StoredKey {
  subject: string;
  streams: string[];
}

type MaybePromise<T> = T | Promise<T>;

/** Whether an append declares personal data (most do not: they skip the key table). */
export const hasPersonalData = (events: PreparedEvent[]): boolean => events.some(isPersonal);

/**
 * (subject, stream) pairs this process already noted, so steady appends cost no key-table write.
 * The key lookup every sealing append makes tells whether its pair is noted anyway, so the memo
 * only spares that question for streams appended to again and again. 10k pairs hold those; at 100k
 * the identity service renaming random users of a million kept growing its heap for the ten
 * minutes of its mixed load (~10 MB in the first six, ~200 bytes a pair) for hits it never had.
 */
const MEMO_LIMIT = 10_000;

/**
 * Seals an append's personal fields (see sealEvents), creating the keys of new subjects first.
 * Refuses personal data for a forgotten subject. Call it only when hasPersonalData.
 */
export async function sealForAppend(
  stream: string,
  events: PreparedEvent[],
  table: KeyTable,
  masterKey: Uint8Array | undefined,
  noted: Set<string>,
): Promise<void> {
  const wanted = subjectsToSeal(events);
  const subjects = [...wanted.create, ...wanted.open];
  const unnoted = subjects.filter((subject) => !noted.has(`${subject}\u0000${stream}`));
  // Asks whether the stream is noted only for pairs this process has not noted itself.
  let stored = await table.load(subjects, unnoted.length ? stream : undefined);
  for (const subject of wanted.create) {
    const forgottenAt = stored.get(subject)?.forgottenAt;
    if (forgottenAt !== undefined) throw new SubjectForgottenError(subject, forgottenAt);
  }
  const missing = new Map<string, Uint8Array>();
  for (const subject of wanted.create) if (!stored.has(subject)) missing.set(subject, newSubjectKey(masterKey).stored);
  // Imported (already sealed) events count too: forget drops the snapshots of their streams as well.
  // A pair the key table or this process has noted costs no write (at 1M users on PostgreSQL,
  // nearly every name change went to a user whose pair the memo no longer held: a query each).
  const pairs = unnoted.filter((subject) => !stored.get(subject)?.streamNoted).map((subject): [string, string] => [subject, stream]);
  if (missing.size || pairs.length) {
    await table.insert(missing, pairs, new Date().toISOString());
    if (missing.size) stored = await table.load(subjects);
  }
  // Every pair is noted now (by the table already, or just above): later appends skip the question.
  if (noted.size > MEMO_LIMIT) noted.clear();
  for (const subject of unnoted) noted.add(`${subject}\u0000${stream}`);
  sealEvents(events, readableKeys(stored, masterKey));
}

/**
 * Keeps a store's appends in call order (docs/store.md) when some must first seal, which waits for
 * the key table: from then on later appends queue behind it, and each is submitted (handed to the
 * backend's write queue) only after the one called before it was. With nothing sealing, an append
 * is submitted at once, as without personal data.
 */
export interface CallOrder {
  /** Submits now, or after `sealing` and every append called before that is still waiting. */
  run<R>(sealing: Promise<void> | undefined, submit: () => Promise<R>): Promise<R>;
  /** Whether an append waits for its turn (close() lets them through before it drains). */
  readonly busy: boolean;
  /** Resolves once no append waits for its turn. */
  idle(): Promise<void>;
}

export function inCallOrder(): CallOrder {
  let last: Promise<void> = Promise.resolve();
  let waiting = 0;
  return {
    run(sealing, submit) {
      if (sealing === undefined && waiting === 0) return submit();
      waiting++;
      // Handled here at once: its failure reaches the caller through `turn`, maybe only after
      // earlier appends were submitted, and must not count as unhandled meanwhile.
      sealing?.catch(() => {});
      const turn = last.then(() => sealing);
      const result = turn.then(submit);
      // Registered after `submit`, so it runs once this append was submitted (or failed to seal).
      last = turn.then(
        () => {
          waiting--;
        },
        () => {
          waiting--;
        },
      );
      return result;
    },
    get busy() {
      return waiting > 0;
    },
    async idle() {
      while (waiting > 0) await last;
    },
  };
}

/**
 * Opens the sealed events of a page (see openEvents), looking their subjects' keys up once:
 * in `keysRead` when the backend read them with the page (it then holds every subject the page
 * needs, absent meaning no key), else in the key table.
 */
export async function openPage(
  events: RecordedEvent[],
  table: KeyTable,
  masterKey: Uint8Array | undefined,
  keysRead?: Map<string, Pick<StoredKey, 'key'>>,
): Promise<RecordedEvent[]> {
  const subjects = sealedSubjects(events);
  if (subjects.length === 0) return events;
  return openEvents(events, readableKeys(keysRead ?? (await table.load(subjects)), masterKey));
}

/**
 * store.forget: destroys the key, then appends the SubjectForgotten notification to `$subjects`
 * with an id derived from the subject, so a repeated forget re-sends the same event (an
 * idempotent retry that stores nothing) and a notification lost to a crash is sent by the next call.
 */
export async function forgetSubject(
  subject: string,
  table: KeyTable,
  appendNotice: (event: { id: string; type: string; data: JsonObject }) => Promise<unknown>,
): Promise<ForgetResult> {
  assertSubject(subject);
  const result = await table.forget(subject, new Date().toISOString());
  if (!result) throw new UnknownSubjectError(subject);
  await appendNotice({ id: forgottenEventId(subject), type: SUBJECT_FORGOTTEN, data: { subject } });
  return result;
}

export async function subjectStatus(subject: string, table: KeyTable): Promise<SubjectStatus | undefined> {
  assertSubject(subject);
  return table.status(subject);
}

/** What a store does with personal data, the same on every backend. */
export interface StorePersonalData {
  /**
   * Seals the personal fields of `prepared` (a subject's first event creates its key), then runs
   * `submit`; appends submitted through here stay in call order while one waits for a key.
   */
  append<T>(stream: string, prepared: PreparedEvent[], submit: () => Promise<T>): Promise<T>;
  /** Opens the sealed events of a page with this store's keys, or with the keys read with the page (see openPage). */
  open(events: RecordedEvent[], keysRead?: Map<string, Pick<StoredKey, 'key'>>): Promise<RecordedEvent[]>;
  /** Resolves once no append waits for a key: close() lets those through first. */
  settled(): Promise<void>;
  /**
   * The store's `forget` and `subjectStatus`; `appendNotice` submits the SubjectForgotten event to
   * `$subjects` (it runs in call order with the store's other appends).
   */
  methods(appendNotice: (event: { id: string; type: string; data: JsonObject }) => Promise<unknown>): {
    forget(subject: string): Promise<ForgetResult>;
    subjectStatus(subject: string): Promise<SubjectStatus | undefined>;
    exportSubjectKeys(): AsyncIterable<SubjectKeyRecord>;
    importSubjectKeys(records: Iterable<SubjectKeyRecord> | AsyncIterable<SubjectKeyRecord>): Promise<SubjectKeyImportResult>;
  };
}

export function storePersonalData(table: KeyTable, masterKey: Uint8Array | undefined, assertOpen: () => void): StorePersonalData {
  /** (subject, stream) pairs noted in the key table already (see sealForAppend). */
  const noted = new Set<string>();
  const order = inCallOrder();
  return {
    append(stream, prepared, submit) {
      const sealing = hasPersonalData(prepared) ? sealForAppend(stream, prepared, table, masterKey, noted) : undefined;
      return order.run(sealing, submit);
    },
    open: (events, keysRead) => openPage(events, table, masterKey, keysRead),
    async settled() {
      if (order.busy) await order.idle();
    },
    methods(appendNotice) {
      const forget = async (subject: string) => {
        assertOpen();
        return forgetSubject(subject, table, (event) => order.run(undefined, () => appendNotice(event)));
      };
      return {
        forget,
        async subjectStatus(subject) {
          assertOpen();
          return subjectStatus(subject, table);
        },
        exportSubjectKeys() {
          assertOpen();
          return exportSubjectKeys(table);
        },
        async importSubjectKeys(records) {
          assertOpen();
          // A forgotten record for a subject that holds a key here runs the store's own forget.
          return importSubjectKeys(records, { table, unwrap: (stored) => unwrapKey(stored, masterKey), forget });
        },
      };
    },
  };
}

/** The id of the notification `forget` appends: derived from the subject, so a repeated forget re-sends the same event (idempotent). */
function forgottenEventId(subject: string): string {
  const hex = createHash('sha256').update(`logline:forgotten:${subject}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
