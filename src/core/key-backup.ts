/**
 * Backing up and restoring subject keys (docs/lifecycle.md#backups-and-restores). An event export
 * holds personal fields sealed, so a restore reads them as forgotten unless the subjects' keys
 * are restored too: these are the store's `exportSubjectKeys` and `importSubjectKeys`, the same on
 * every backend over its key table (src/stores/<name>/subject-keys.ts).
 *
 * Import rules: an unknown subject is stored as given; the same key again changes nothing; a
 * subject forgotten on either side ends forgotten (a key never comes back, and a key held here
 * is destroyed by the store's own forget); a different live key is a conflict, left alone.
 */
import { InvalidArgumentError } from './errors.js';
import type { KeyTable, StoredKey, SubjectKeyRow } from './personal-data.js';
import { MAX_SUBJECT_LENGTH, SUBJECT_KEYS_FORMAT, type SubjectKeyImportResult, type SubjectKeyRecord } from './types.js';

/** A raw subject key; a wrapped one adds the IV (12) and the tag (16) of AES-256-GCM. */
const RAW_KEY_BYTES = 32;
const WRAPPED_KEY_BYTES = 60;
/** Subjects per key-table page, on export and import. */
const PAGE = 500;
const FIELDS = new Set(['format', 'subject', 'key', 'wrapped', 'createdAt', 'forgottenAt', 'streams']);
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export interface KeyBackupParts {
  table: KeyTable;
  /** The subject key from its stored form; throws when this store's master key does not open it. */
  unwrap(stored: Uint8Array): Buffer;
  /** The store's forget: destroys the key as its backend documents and appends the notification. */
  forget(subject: string): Promise<unknown>;
}

/** Every subject of `table`, in subject order, a page at a time. */
export async function* exportSubjectKeys(table: KeyTable): AsyncGenerator<SubjectKeyRecord> {
  let after = '';
  for (;;) {
    const page = await table.list(after, PAGE);
    for (const row of page) yield toRecord(row);
    const last = page.at(-1);
    if (!last || page.length < PAGE) return;
    after = last.subject;
  }
}

function toRecord(row: SubjectKeyRow): SubjectKeyRecord {
  return {
    format: SUBJECT_KEYS_FORMAT,
    subject: row.subject,
    ...(row.key ? { key: Buffer.from(row.key).toString('base64') } : {}),
    wrapped: row.key !== undefined && row.key.length !== RAW_KEY_BYTES,
    createdAt: row.createdAt,
    ...(row.forgottenAt === undefined ? {} : { forgottenAt: row.forgottenAt }),
    streams: row.streams,
  };
}

/**
 * Imports `records` a page at a time. A bad record throws an InvalidArgumentError naming the
 * field; the records before it are imported, nothing of it or after it.
 */
export async function importSubjectKeys(
  records: Iterable<unknown> | AsyncIterable<unknown>,
  parts: KeyBackupParts,
): Promise<SubjectKeyImportResult> {
  const result: SubjectKeyImportResult = { imported: 0, unchanged: 0, forgotten: 0, conflicts: [] };
  let batch: SubjectKeyRow[] = [];
  const subjects = new Set<string>();
  const flush = async () => {
    await importPage(batch, parts, result);
    batch = [];
    subjects.clear();
  };
  // An input that fails (a bad record, a file that cannot be read) stops the import after the
  // records before it were stored: an import resumed or repeated from the start changes nothing twice.
  let stopped: { error: unknown } | undefined;
  async function* input() {
    try {
      yield* records;
    } catch (error) {
      stopped = { error };
    }
  }
  let n = 0;
  for await (const value of input()) {
    n++;
    let row: SubjectKeyRow;
    try {
      row = toRow(value, n, parts.unwrap);
    } catch (error) {
      stopped = { error };
      break;
    }
    // A subject twice in one page would be judged against the state before the page: flush first.
    if (subjects.has(row.subject) || batch.length >= PAGE) await flush();
    batch.push(row);
    subjects.add(row.subject);
  }
  await flush();
  if (stopped) throw stopped.error;
  return result;
}

async function importPage(rows: SubjectKeyRow[], { table, unwrap, forget }: KeyBackupParts, result: SubjectKeyImportResult): Promise<void> {
  if (rows.length === 0) return;
  const subjects = rows.map((row) => row.subject);
  const before = await table.load(subjects);
  const fresh = rows.filter((row) => !before.has(row.subject));
  if (fresh.length) await table.restore(fresh);
  // Read again: another writer may have created a key for a fresh subject meanwhile (its key wins).
  const now = fresh.length ? await table.load(subjects) : before;
  for (const row of rows) {
    const held = now.get(row.subject);
    if (!held) throw new Error(`the key table did not store subject '${row.subject}'`); // restore stores every unknown subject
    if (!before.has(row.subject) && held.forgottenAt === row.forgottenAt && sameBytes(held.key, row.key)) {
      result.imported++;
    } else if (held.forgottenAt !== undefined) {
      result.unchanged++; // forget wins: a forgotten subject never gets a key back
    } else if (row.forgottenAt !== undefined) {
      await forget(row.subject);
      result.forgotten++;
    } else if (sameKey(held, row, unwrap)) {
      result.unchanged++;
    } else {
      result.conflicts.push(row.subject);
    }
  }
}

const sameBytes = (a: Uint8Array | undefined, b: Uint8Array | undefined): boolean =>
  a === undefined || b === undefined ? a === b : Buffer.from(a).equals(Buffer.from(b));

/** The same subject key: the same stored bytes, or (wrapped with a fresh IV each time) the same once unwrapped. */
function sameKey(held: StoredKey, row: SubjectKeyRow, unwrap: KeyBackupParts['unwrap']): boolean {
  if (!held.key || !row.key) return false;
  if (sameBytes(held.key, row.key)) return true;
  try {
    return unwrap(held.key).equals(unwrap(row.key));
  } catch {
    return false;
  }
}

const isTime = (value: unknown): value is string => typeof value === 'string' && value.length > 0 && !Number.isNaN(Date.parse(value));

/** A validated record as a key-table row; `n` counts the records (1 = the first) for the error. */
function toRow(value: unknown, n: number, unwrap: KeyBackupParts['unwrap']): SubjectKeyRow {
  const bad = (field: string, problem: string, expected: string) => new InvalidArgumentError(field, `record ${n}: ${problem}`, expected);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw bad('record', `got ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}`, 'a subject key record (a JSON object)');
  }
  const record = value as Record<string, unknown>;
  const { format, subject, key, wrapped, createdAt, forgottenAt, streams } = record;
  if (format !== SUBJECT_KEYS_FORMAT) throw bad('format', `got ${JSON.stringify(format)}`, `'${SUBJECT_KEYS_FORMAT}'`);
  const unknown = Object.keys(record).filter((field) => !FIELDS.has(field));
  if (unknown.length) throw bad('record', `unknown field(s) ${unknown.join(', ')}`, `only the fields ${[...FIELDS].join(', ')}`);
  if (typeof subject !== 'string' || subject.length === 0 || subject.length > MAX_SUBJECT_LENGTH) {
    throw bad('subject', `got ${JSON.stringify(subject)}`, `a string of 1 to ${MAX_SUBJECT_LENGTH} characters`);
  }
  if (typeof wrapped !== 'boolean') throw bad('wrapped', `got ${JSON.stringify(wrapped)}`, 'true or false');
  if (!isTime(createdAt)) throw bad('createdAt', `got ${JSON.stringify(createdAt)}`, 'an ISO-8601 time');
  if (forgottenAt !== undefined && !isTime(forgottenAt)) throw bad('forgottenAt', `got ${JSON.stringify(forgottenAt)}`, 'an ISO-8601 time');
  if (!(Array.isArray(streams) && streams.every((s) => typeof s === 'string' && s.length > 0 && s.length <= 200))) {
    throw bad('streams', `got ${JSON.stringify(streams)}`, 'an array of stream ids');
  }
  const row = { subject, createdAt, forgottenAt, streams: streams as string[] };
  if (forgottenAt !== undefined) {
    if (key !== undefined) throw bad('key', `subject '${subject}' is forgotten but the record holds a key`, 'no key with forgottenAt');
    return { ...row, key: undefined };
  }
  if (typeof key !== 'string' || !BASE64.test(key)) throw bad('key', `got ${JSON.stringify(key)}`, 'the key in base64 (or forgottenAt)');
  const bytes = Buffer.from(key, 'base64');
  const size = wrapped ? WRAPPED_KEY_BYTES : RAW_KEY_BYTES;
  if (bytes.length !== size)
    throw bad('key', `it decodes to ${bytes.length} bytes`, `${size} bytes (a ${wrapped ? 'wrapped' : 'raw'} key)`);
  if (wrapped) {
    try {
      unwrap(bytes);
    } catch {
      // Stored, it would make every read of this subject's events fail: refused here instead.
      throw bad(
        'key',
        `subject '${subject}' has a key wrapped by a master key this store does not hold`,
        'a store opened with the master key the backup was made with (option masterKey or LOGLINE_MASTER_KEY)',
      );
    }
  }
  return { ...row, key: bytes };
}
