import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { LineBatcher } from '../../src/log/line-batcher.js';

const batchers: LineBatcher[] = [];
function batcher(maxSize: number, flushMs = 60_000, unit: 'bytes' | 'chars' = 'bytes'): { b: LineBatcher; chunks: string[] } {
  const chunks: string[] = [];
  const b = new LineBatcher({ write: (c: string) => chunks.push(c) }, maxSize, flushMs, unit);
  batchers.push(b);
  return { b, chunks };
}

afterEach(() => {
  for (const b of batchers.splice(0)) b.close();
});

describe('LineBatcher', () => {
  it('writes whole lines in order, one chunk once the byte limit is reached', () => {
    const { b, chunks } = batcher(20);
    b.write('aaaa aaaa\n');
    b.write('bbbb bbb\n');
    expect(chunks).toEqual([]);
    b.write('cc\n'); // 22 bytes: over the limit
    expect(chunks).toEqual(['aaaa aaaa\nbbbb bbb\ncc\n']);
    b.write('dd\n');
    b.flush();
    expect(chunks).toEqual(['aaaa aaaa\nbbbb bbb\ncc\n', 'dd\n']);
    b.flush(); // nothing pending: no empty write
    expect(chunks).toHaveLength(2);
  });

  it('counts bytes, not characters', () => {
    const { b, chunks } = batcher(12);
    b.write('ééé\n'); // 7 bytes, 4 characters
    expect(chunks).toEqual([]);
    b.write('€€\n'); // 7 more bytes: 14 >= 12
    expect(chunks).toEqual(['ééé\n€€\n']);
  });

  it('counts characters when asked to, for a sink without a byte limit', () => {
    const { b, chunks } = batcher(12, 60_000, 'chars');
    b.write('ééé\n'); // 4 characters
    b.write('€€\n'); // 3 more: 7 < 12, though 14 bytes
    expect(chunks).toEqual([]);
    b.write('abcde\n'); // 13 >= 12
    expect(chunks).toEqual(['ééé\n€€\nabcde\n']);
  });

  it('writes what is pending when the limit changes, then batches under the new one', () => {
    const { b, chunks } = batcher(1000, 60_000, 'chars');
    b.write('pending\n');
    b.setLimit(10, 'bytes');
    expect(chunks).toEqual(['pending\n']);
    b.write('éé\n'); // 5 bytes
    expect(chunks).toHaveLength(1);
    b.write('éé\n'); // 10 bytes >= 10
    expect(chunks).toEqual(['pending\n', 'éé\néé\n']);
  });

  it('writes what waits at least every flush interval', async () => {
    const { b, chunks } = batcher(1 << 20, 30);
    b.write('late line\n');
    await sleep(120);
    expect(chunks).toEqual(['late line\n']);
  });

  it('calls back a flush with a callback, as pino does', () => {
    const { b, chunks } = batcher(1 << 20);
    b.write('x\n');
    let called = false;
    b.flush(() => (called = true));
    expect(called).toBe(true);
    expect(chunks).toEqual(['x\n']);
  });
});
