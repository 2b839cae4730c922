/** Encoding of PostgreSQL array parameters (sent as text, parsed once by the server). */

/** A PostgreSQL array literal; every element quoted (so 'NULL' stays a string), undefined is NULL. */
export function arrayLiteral(values: Array<string | number | undefined>): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (i) out += ',';
    if (value === undefined) out += 'NULL';
    else if (typeof value === 'number') out += value;
    else out += `"${/["\\]/.test(value) ? value.replace(/["\\]/g, '\\$&') : value}"`;
  }
  return `${out}}`;
}
