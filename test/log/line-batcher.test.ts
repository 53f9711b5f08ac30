import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { LineBatcher } from '../../src/log/line-batcher.js';

const batchers: LineBatcher[] = [];
function batcher(maxBytes: number, flushMs = 60_000): { b: LineBatcher; chunks: string[] } {
  const chunks: string[] = [];
  const b = new LineBatcher({ write: (c: string) => chunks.push(c) }, maxBytes, flushMs);
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
