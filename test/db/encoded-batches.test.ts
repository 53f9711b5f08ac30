/**
 * encodedBatches over a source whose reads and stops are counted: what it asks of the source at
 * max_rows, and how it cuts a batch of wide rows. The bytes themselves, on every real driver, are
 * in driver-suite.ts.
 */
import { describe, expect, it } from 'vitest';
import { encodedBatches } from '../../src/db/encoded-batches.js';
import type { BatchSource } from '../../src/db/row-stream.js';
import { EncodedRows, type Row } from '../../src/db/types.js';
import { CHUNK_CHARS } from '../../src/endpoints/row-encoders.js';

/** Endless batches of `size` rows { n, pad }, counting next() and stop() calls. */
function countedSource(size: number, pad = '') {
  const calls = { next: 0, stop: 0 };
  let n = 0;
  const source: BatchSource<Row | EncodedRows> = {
    next: async () => {
      calls.next++;
      return Array.from({ length: size }, () => ({ n: ++n, pad }));
    },
    stop: async () => {
      calls.stop++;
      return true;
    },
  };
  return { source, calls };
}

const psv = { format: 'psv' as const, eol: '\n', separator: '' };

describe('encodedBatches', () => {
  it('cuts at max_rows inside a batch, then stops the statement instead of reading on', async () => {
    const { source, calls } = countedSource(500);
    const batches = encodedBatches(source, { ...psv, maxRows: 700 });
    const first = (await batches.next()) as EncodedRows[];
    const second = (await batches.next()) as EncodedRows[];
    expect(first.reduce((r, i) => r + i.rows, 0)).toBe(500);
    expect(second.reduce((r, i) => r + i.rows, 0)).toBe(200);
    expect(second.map((i) => i.text).join('').split('\n').at(-2)).toBe('700|');
    expect(await batches.next()).toBeNull();
    expect(calls).toEqual({ next: 2, stop: 1 });
  });

  it('makes chunks of about CHUNK_CHARS of a batch of wide rows, every row once and in order', async () => {
    const { source } = countedSource(500, 'x'.repeat(200));
    const items = (await encodedBatches(source, psv).next()) as EncodedRows[];
    expect(items.length).toBeGreaterThan(1);
    for (const item of items) expect(item.text.length).toBeLessThan(CHUNK_CHARS + 210);
    const lines = items.map((i) => i.text).join('').split('\n').slice(0, -1);
    expect(lines.map((l) => Number(l.split('|')[0]))).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    expect(items.reduce((r, i) => r + i.rows, 0)).toBe(500);
    expect(items.every((i) => i.columns.join() === 'n,pad')).toBe(true);
  });

  it('passes batches already encoded as they are, counting their rows toward max_rows', async () => {
    let calls = 0;
    const encoded = new EncodedRows('1\n2\n', 2, ['n']);
    const batches = encodedBatches({ next: async () => (++calls, [encoded]), stop: async () => true }, { ...psv, maxRows: 4 });
    expect(await batches.next()).toEqual([encoded]);
    expect(await batches.next()).toEqual([encoded]);
    expect(await batches.next()).toBeNull();
    expect(calls).toBe(2);
  });
});
