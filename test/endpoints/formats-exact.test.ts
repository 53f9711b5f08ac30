/**
 * The encoders of src/endpoints/formats.ts write rows with hand-written loops (for speed); these
 * hold them to what the plain definitions give: JSON.stringify for json and ndjson, RFC 4180
 * quoting for csv, and the same text whether streamed or encoded in memory, for awkward values.
 */
import { describe, expect, it } from 'vitest';
import { encodeAll, encodeRows, MEDIA_TYPES, negotiate, negotiator } from '../../src/endpoints/formats.js';
import type { Format } from '../../src/endpoints/declaration.js';
import type { Row } from '../../src/db/types.js';

const AWKWARD: Row[] = [
  {
    s: 'say "hi"',
    q: 'quote " backslash \\ slash / nl \n cr \r tab \t nul \u0000 ctl \u001f line sep \u2028 emoji 🚀',
    latin: 'é ü ß \u007f ~ <>&',
    lone: 'x\ud800y \udfff',
    n: -0,
    big: 1e21,
    frac: -2.5e-7,
    nan: NaN,
    inf: -Infinity,
    t: true,
    f: false,
    nil: null,
    d: new Date(Date.UTC(2025, 0, 6, 12, 30, 1, 5)),
    o: { a: [1, 'x', null], 'k"ey': { b: true } },
    buf: Buffer.from('hi'),
    '1': 'integer-like key',
    'ke,y "x"': 'key needing quotes',
  },
  // A row holding undefined: JSON.stringify leaves the key out.
  { s: undefined, q: 'x', n: 1, big: 2, frac: 3, nan: 4, inf: 5, t: false, f: true, nil: 'not null', d: null, o: [], buf: null, '1': '', 'ke,y "x"': ',' },
];

/** Rows encoded here come as strings (only a SQLite thread's batches come as bytes). */
async function collect(gen: AsyncIterable<string | Buffer>): Promise<string> {
  let out = '';
  for await (const c of gen) out += typeof c === 'string' ? c : c.toString('utf8');
  return out;
}

async function* each(rows: Row[]): AsyncGenerator<Row> {
  yield* rows;
}

describe('encoders written as loops give what the plain definitions give', () => {
  it('json and ndjson: exactly JSON.stringify of each row', async () => {
    expect(encodeAll(AWKWARD, 'json')).toBe(JSON.stringify(AWKWARD));
    expect(encodeAll(AWKWARD, 'ndjson')).toBe(AWKWARD.map((r) => `${JSON.stringify(r)}\n`).join(''));
    expect(await collect(encodeRows(each(AWKWARD), 'ndjson'))).toBe(encodeAll(AWKWARD, 'ndjson'));
  });

  it('csv and psv: each field as text, csv quoting what RFC 4180 says and nothing else', async () => {
    const columns = Object.keys(AWKWARD[0]);
    const asText = (v: unknown) =>
      v === null || v === undefined ? '' : v instanceof Date ? v.toISOString() : Buffer.isBuffer(v) ? v.toString('base64') : typeof v === 'object' ? JSON.stringify(v) : String(v);
    const quoted = (v: unknown) => {
      const t = asText(v);
      return /[",\r\n]/.test(t) ? `"${t.replaceAll('"', '""')}"` : t;
    };
    const csv = [columns, ...AWKWARD.map((r) => columns.map((c) => r[c]))].map((fields) => `${fields.map(quoted).join(',')}\r\n`).join('');
    expect(encodeAll(AWKWARD, 'csv')).toBe(csv);
    expect(encodeAll(AWKWARD, 'psv')).toBe(AWKWARD.map((r) => `${columns.map((c) => asText(r[c])).join('|')}\n`).join(''));
    for (const f of ['csv', 'psv'] as const) expect(await collect(encodeRows(each(AWKWARD), f))).toBe(encodeAll(AWKWARD, f));
  });

  it('many rows stream as the same text they encode to in memory, in chunks', async () => {
    const rows = Array.from({ length: 5000 }, (_, i) => ({ id: i, name: i % 7 === 0 ? `a,"${i}"` : `n${i}`, v: i / 3, ok: i % 2 === 0, none: null }));
    for (const f of ['json', 'ndjson', 'csv', 'psv'] as const) {
      const chunks: string[] = [];
      for await (const c of encodeRows(each(rows), f)) chunks.push(typeof c === 'string' ? c : c.toString('utf8'));
      expect(chunks.length, f).toBeGreaterThan(5);
      expect(chunks.join(''), f).toBe(encodeAll(rows, f));
    }
    expect(encodeAll(rows, 'json')).toBe(JSON.stringify(rows));
  });
});

/** Content negotiation as first written: every Accept range re-parsed for every offered format. */
function negotiateReference(offered: readonly Format[], accept: string): Format | undefined {
  let best: Format | undefined;
  let bestQ = 0;
  for (const format of offered) {
    const [type, sub] = MEDIA_TYPES[format].split('/');
    let q = 0;
    let specificity = -1;
    for (const part of accept.split(',')) {
      const [range, ...paramsText] = part.trim().toLowerCase().split(';');
      const [t, s] = range.trim().split('/');
      const spec = t === type && s === sub ? 2 : t === type && s === '*' ? 1 : t === '*' && s === '*' ? 0 : -1;
      if (spec <= specificity) continue;
      const qParam = paramsText.map((p) => p.trim()).find((p) => p.startsWith('q='));
      const value = qParam === undefined ? 1 : Number(qParam.slice(2));
      specificity = spec;
      q = Number.isFinite(value) ? Math.min(1, Math.max(0, value)) : 0;
    }
    if (q > bestQ) {
      best = format;
      bestQ = q;
    }
  }
  return best;
}

describe('negotiation with parsed Accept headers remembered', () => {
  it('chooses what the reference chooses for thousands of headers, the same header asked again and again', () => {
    const ranges = ['application/json', 'application/x-ndjson', 'text/csv', 'text/plain', 'text/*', '*/*', 'application/*', 'TEXT/CSV', 'application/xml', 'image/png', 'text', ''];
    const params = ['', ';q=0', ';q=0.5', ';q=1', ';q=0.9;level=1', '; q=0.3', ';q=abc', ';q=', ';Q=0.2', ';charset=utf-8'];
    const offers: Format[][] = [['json', 'csv'], ['psv', 'csv', 'ndjson', 'json'], ['ndjson'], ['csv', 'psv']];
    let seed = 7;
    const pick = <T>(xs: T[]): T => xs[(seed = (seed * 1103515245 + 12345) % 2147483648) % xs.length];
    for (let i = 0; i < 3000; i++) {
      const accept = Array.from({ length: 1 + (i % 4) }, () => `${pick(ranges)}${pick(params)}`).join(i % 3 === 0 ? ', ' : ',');
      for (const offered of offers) {
        const expected = negotiateReference(offered, accept);
        for (let again = 0; again < 2; again++) {
          if (expected === undefined || accept.trim() === '') {
            if (accept.trim() === '') expect(negotiate(offered, undefined, accept)).toBe(offered[0]);
            else expect(() => negotiate(offered, undefined, accept), accept).toThrow('not acceptable');
          } else expect(negotiate(offered, undefined, accept), `${accept} from ${offered.join(',')}`).toBe(expected);
        }
      }
    }
  });

  it('the negotiator of an endpoint, which remembers its last Accept header, answers as negotiate does request after request', () => {
    const offered: Format[] = ['psv', 'csv', 'ndjson', 'json'];
    const formatOf = negotiator(offered);
    const requests: [unknown, string | undefined][] = [
      [undefined, 'text/csv'],
      [undefined, 'text/csv'],
      ['json', 'text/csv'],
      [undefined, 'text/csv'],
      ['xml', 'text/csv'],
      [undefined, undefined],
      [undefined, 'application/x-ndjson'],
      [undefined, 'image/png'],
      [undefined, 'application/x-ndjson'],
      [undefined, ''],
      [undefined, '*/*'],
      ['csv', '*/*'],
      [undefined, '*/*'],
    ];
    for (const [format, accept] of requests) {
      const req = { query: format === undefined ? {} : { format }, headers: accept === undefined ? {} : { accept } };
      let expected: Format | Error;
      try {
        expected = negotiate(offered, format, accept);
      } catch (err) {
        expected = err as Error;
      }
      if (expected instanceof Error) expect(() => formatOf(req), `${String(format)} ${accept}`).toThrow(expected.message);
      else expect(formatOf(req), `${String(format)} ${accept}`).toBe(expected);
    }
  });
});
