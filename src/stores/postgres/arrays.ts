/** Encoding of PostgreSQL array parameters (sent as text, parsed once by the server). */

/**
 * A PostgreSQL array literal (`{"a","b\"c",NULL,7}`) for a parameter cast to an array type, e.g.
 * `= ANY(${arrayLiteral(ids)}::uuid[])`: the store's connections do not fetch types, so
 * postgres.js cannot encode a JavaScript array itself. Strings are always quoted (so 'NULL' stays
 * a string); null and undefined are NULL; numbers and bigints are written as they are.
 */
export function arrayLiteral(values: ReadonlyArray<string | number | bigint | null | undefined>): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (i) out += ',';
    if (value === undefined || value === null) out += 'NULL';
    else if (typeof value !== 'string') out += value;
    else out += `"${/["\\]/.test(value) ? value.replace(/["\\]/g, '\\$&') : value}"`;
  }
  return `${out}}`;
}
