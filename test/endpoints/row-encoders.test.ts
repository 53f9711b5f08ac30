/**
 * The row encoders compiled per column list (src/endpoints/row-encoders.ts) against the plain
 * definitions of each format, value by value: JSON.stringify for json lines, RFC 4180 for csv, the
 * text of each field for psv. Every value kind takes the compiled fast path or its fallback, so a
 * wrong fast path (an escape skipped, a number written as JSON would not, a separator unquoted)
 * shows here; column names that would break generated code if spliced into it are included.
 */
import { describe, expect, it } from 'vitest';
import { compiledRowEncoder, indexedRowEncoder, loopRowEncoder, MAX_COMPILED_COLUMNS, rowEncoder, type LineFormat } from '../../src/endpoints/row-encoders.js';
import type { Row } from '../../src/db/types.js';

const asText = (v: unknown): string =>
  v === null || v === undefined ? '' : v instanceof Date ? v.toISOString() : Buffer.isBuffer(v) ? v.toString('base64') : typeof v === 'object' ? JSON.stringify(v) : String(v);
const csvQuoted = (v: unknown): string => {
  const t = asText(v);
  return /[",\r\n]/.test(t) ? `"${t.replaceAll('"', '""')}"` : t;
};

/** What each format's line must be, from its plain definition. */
const REFERENCE: Record<LineFormat, (row: Row, columns: string[]) => string> = {
  json: (row) => JSON.stringify(row),
  csv: (row, columns) => columns.map((c) => csvQuoted(row[c])).join(','),
  psv: (row, columns) => columns.map((c) => asText(row[c])).join('|'),
};
const FORMATS = Object.keys(REFERENCE) as LineFormat[];

/** One value of each kind a driver gives, and strings on every side of each fast path's test. */
const VALUES: unknown[] = [
  'plain',
  '',
  '2025-01-06 00:00:00',
  'say "hi"',
  'back\\slash',
  'comma, here',
  'pipe | here',
  'line\nfeed',
  'carriage\rreturn',
  'crlf\r\n',
  'tab\tand nul \u0000 and \u001f',
  '\u007f del and \u0080',
  'line sep \u2028 para sep \u2029',
  'lone high \ud800 end',
  'lone low \udfff',
  'pair 🚀 and é ü ß 日本',
  "'; process.exit(1); //",
  '12345678901234567890', // bigint beyond 2^53, as decimal text
  '-0.000000000000000000001', // a decimal column as text
  0,
  -0,
  42,
  -7,
  2 ** 53,
  2 ** 31,
  0.1,
  -2.5e-7,
  1e21,
  123456789.125,
  NaN,
  Infinity,
  -Infinity,
  null,
  true,
  false,
  new Date(Date.UTC(2025, 0, 6, 12, 30, 1, 5)),
  Buffer.from([0, 1, 254, 255]),
  Buffer.alloc(0),
  { a: [1, 'x', null], 'k"ey': { b: true } },
  [1, '2', null],
  { toJSON: () => 'by toJSON' },
];

/** Column names that are awkward in JSON, csv or as JavaScript source. */
const NAMES = ['id', '1', 'ke,y "x"', 'back\\slash', '"]; throw new Error("injected"); //', "'", 'nl\nname', '\u2028', 'é', '', 'constructor', 'toString'];

function check(rows: Row[]) {
  const columns = Object.keys(rows[0]);
  for (const format of FORMATS) {
    for (const end of ['', '\n', '\r\n']) {
      const compiled = compiledRowEncoder(format, columns, end);
      expect(compiled, `${format} compiled for ${columns.length} columns`).toBeDefined();
      const loop = loopRowEncoder(format, columns, end);
      const indexed = indexedRowEncoder(format, columns, end);
      for (const row of rows) {
        const expected = REFERENCE[format](row, columns) + end;
        expect(compiled!(row), `${format} ${JSON.stringify(columns)}`).toBe(expected);
        expect(loop(row), `${format} loop`).toBe(expected);
        // The same values as an array in column order (SQLite's raw rows).
        expect(indexed!(columns.map((c) => row[c])), `${format} indexed`).toBe(expected);
      }
    }
  }
}

describe('compiled row encoders write what the plain definitions write', () => {
  it('every kind of value, in a single-column row and beside others', () => {
    for (const v of VALUES) {
      check([{ v }]);
      check([{ id: 1, v, last: 'x' }]);
    }
  });

  it('awkward column names are data, never code', () => {
    const row: Row = {};
    NAMES.forEach((n, i) => (row[n] = VALUES[i % VALUES.length]));
    check([row, { ...row }]);
    for (const n of NAMES) check([{ [n]: 'value' }]);
  });

  it('a __proto__ column read from a driver row (an own property)', () => {
    const row = JSON.parse('{"__proto__": "own", "b": 2}') as Row;
    check([row]);
  });

  it('a row holding undefined is written as JSON.stringify writes it (key left out); csv and psv leave the field empty', () => {
    const rows: Row[] = [
      { a: 1, b: 'x', c: null },
      { a: undefined, b: 'x', c: null },
      { a: 1, b: undefined, c: () => 1 },
    ];
    check(rows);
    expect(rowEncoder('json', ['a', 'b', 'c'], '\n')(rows[1])).toBe('{"b":"x","c":null}\n');
  });

  // SQLite's worker encodes rows whose integers are still bigints: each is written as exactInteger
  // gives it, a number when exact as one, else its decimal text (a string in json).
  it('a bigint is written exactly: its digits in csv and psv; in json a number when safe, else a string', () => {
    const row: Row = { id: 1, big: 2n ** 64n, low: -(2n ** 53n), safe: -(2n ** 53n - 1n) };
    const columns = ['id', 'big', 'low', 'safe'];
    for (const encode of [rowEncoder, loopRowEncoder]) {
      expect(encode('csv', columns, '')(row)).toBe('1,18446744073709551616,-9007199254740992,-9007199254740991');
      expect(encode('psv', columns, '')(row)).toBe('1|18446744073709551616|-9007199254740992|-9007199254740991');
      expect(encode('json', columns, '')(row)).toBe('{"id":1,"big":"18446744073709551616","low":"-9007199254740992","safe":-9007199254740991}');
    }
  });

  it('many rows of mixed values through one compiled encoder (its inline caches see every kind)', () => {
    const rows: Row[] = [];
    for (let i = 0; i < 2000; i++) rows.push({ n: VALUES[i % VALUES.length], s: VALUES[(i * 7) % VALUES.length], k: i });
    check(rows);
  });

  it('the same columns reuse one compiled encoder; different ones, formats or endings do not', () => {
    const a = compiledRowEncoder('csv', ['x', 'y'], '\r\n');
    expect(compiledRowEncoder('csv', ['x', 'y'], '\r\n')).toBe(a);
    expect(compiledRowEncoder('csv', ['x', 'z'], '\r\n')).not.toBe(a);
    expect(compiledRowEncoder('psv', ['x', 'y'], '\r\n')).not.toBe(a);
    expect(compiledRowEncoder('csv', ['x', 'y'], '\n')).not.toBe(a);
    // Names that join to the same text stay apart.
    expect(compiledRowEncoder('csv', ['a,b'], '')!({ 'a,b': 1 })).toBe('1');
    expect(compiledRowEncoder('csv', ['a', 'b'], '')!({ a: 1, b: 2 })).toBe('1,2');
  });

  it('rows wider than the compiled limit, and rows without columns, use the loops', () => {
    const wide: Row = {};
    for (let i = 0; i <= MAX_COMPILED_COLUMNS; i++) wide[`c${i}`] = i % 3 === 0 ? `v,"${i}"` : i;
    const columns = Object.keys(wide);
    for (const format of FORMATS) {
      expect(compiledRowEncoder(format, columns, '\n')).toBeUndefined();
      expect(rowEncoder(format, columns, '\n')(wide)).toBe(`${REFERENCE[format](wide, columns)}\n`);
      expect(compiledRowEncoder(format, [], '\n')).toBeUndefined();
      expect(rowEncoder(format, [], '\n')({})).toBe(`${REFERENCE[format]({}, [])}\n`);
    }
  });
});
