import { describe, expect, it } from 'vitest';
import { encodeAll, encodeRows, negotiate, NotAcceptableError } from '../../src/endpoints/formats.js';

/** Rows encoded here come as strings (only a SQLite thread's batches come as bytes). */
async function collect(gen: AsyncIterable<string | Buffer>): Promise<string> {
  let out = '';
  for await (const c of gen) out += typeof c === 'string' ? c : c.toString('utf8');
  return out;
}

async function* rowsOf<T>(rows: T[]): AsyncGenerator<T> {
  yield* rows;
}

const rows = [
  { id: 1, name: 'plain', note: null },
  { id: 2, name: 'a,"b"\r\nc', note: 'x|y' },
];

describe('formats', () => {
  it('csv is RFC 4180: header row, fields with comma, quote, CR or LF quoted, quotes doubled, CRLF line ends', () => {
    const expected = 'id,name,note\r\n1,plain,\r\n2,"a,""b""\r\nc",x|y\r\n';
    expect(encodeAll(rows, 'csv')).toBe(expected);
  });

  it('streams the same text as it encodes in memory, for every format', async () => {
    for (const f of ['json', 'ndjson', 'csv', 'psv'] as const) {
      expect(await collect(encodeRows(rowsOf(rows), f)), f).toBe(encodeAll(rows, f));
    }
    expect(JSON.parse(encodeAll(rows, 'json'))).toEqual(rows);
    expect(encodeAll(rows, 'ndjson').split('\n').filter(Boolean).map((l) => JSON.parse(l) as unknown)).toEqual(rows);
    expect(encodeAll(rows, 'psv')).toBe('1|plain|\n2|a,"b"\r\nc|x|y\n');
    expect(encodeAll([], 'json')).toBe('[]');
    expect(encodeAll([], 'csv')).toBe('');
  });

  it('stops a stream at max_rows', async () => {
    const many = Array.from({ length: 50 }, (_, i) => ({ i }));
    expect(await collect(encodeRows(rowsOf(many), 'ndjson', 3))).toBe('{"i":0}\n{"i":1}\n{"i":2}\n');
  });

  it('chooses ?format= first, then the Accept type rated highest, else the first offered', () => {
    const offered = ['json', 'csv', 'psv'] as const;
    expect(negotiate(offered, 'csv', 'application/json')).toBe('csv');
    expect(negotiate(offered, undefined, undefined)).toBe('json');
    expect(negotiate(offered, undefined, 'text/csv')).toBe('csv');
    expect(negotiate(offered, undefined, 'text/plain;q=0.5, text/csv;q=0.4')).toBe('psv');
    expect(negotiate(offered, undefined, 'text/*')).toBe('csv');
    expect(negotiate(offered, undefined, 'application/xml, */*;q=0.1')).toBe('json');
    expect(negotiate(offered, undefined, 'text/csv;q=0, */*')).toBe('json');
  });

  it('answers 406 naming what is offered', () => {
    expect(() => negotiate(['json', 'csv'], undefined, 'application/xml')).toThrow(NotAcceptableError);
    expect(() => negotiate(['json', 'csv'], 'ndjson', undefined)).toThrow(
      'not acceptable: this endpoint answers json (application/json), csv (text/csv); choose one with ?format= or Accept',
    );
  });
});
