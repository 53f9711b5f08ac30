import { afterEach, describe, expect, it } from 'vitest';
import { LineBatcher } from '../../src/log/line-batcher.js';

const batchers: LineBatcher[] = [];
function batcher(maxBytes: number, flushMs = 60_000): { b: LineBatcher; chunks: string[]; sizes: number[] } {
  const chunks: string[] = [];
  const sizes: number[] = [];
  const b = new LineBatcher(
    {
      write: (c: Buffer) => {
        chunks.push(c.toString('utf8'));
        sizes.push(c.length);
      },
    },
    maxBytes,
    flushMs,
  );
  batchers.push(b);
  return { b, chunks, sizes };
}

afterEach(() => {
  for (const b of batchers.splice(0)) b.close();
});

describe('LineBatcher', () => {
  it('writes whole lines in order, in one chunk that never exceeds the byte limit', () => {
    const { b, chunks } = batcher(20);
    b.write('aaaa aaaa\n');
    b.write('bbbb bbb\n'); // 19 bytes so far
    expect(chunks).toEqual([]);
    b.write('cc\n'); // would make 22: the pending lines go first
    expect(chunks).toEqual(['aaaa aaaa\nbbbb bbb\n']);
    b.write('dd\n');
    b.flush();
    expect(chunks).toEqual(['aaaa aaaa\nbbbb bbb\n', 'cc\ndd\n']);
    b.flush(); // nothing pending: no empty write
    expect(chunks).toHaveLength(2);
  });

  it('writes a chunk as soon as it is exactly full', () => {
    const { b, chunks } = batcher(10);
    b.write('abcd\n');
    b.write('efgh\n');
    expect(chunks).toEqual(['abcd\nefgh\n']);
  });

  it('measures in UTF-8 bytes, not characters, and never splits a character', () => {
    const { b, chunks, sizes } = batcher(12);
    b.write('ééé\n'); // 7 bytes, 4 characters
    b.write('€€\n'); // 7 more bytes: over 12, so the first line goes alone
    expect(chunks).toEqual(['ééé\n']);
    b.write('😀\n'); // 5 bytes: 12 in all, exactly full
    expect(chunks).toEqual(['ééé\n', '€€\n😀\n']);
    expect(sizes).toEqual([7, 12]);
  });

  it('writes a line longer than the limit by itself, after what was pending', () => {
    const { b, chunks } = batcher(8);
    b.write('ab\n');
    b.write('a line of 23 bytes....\n');
    b.write('cd\n');
    b.flush();
    expect(chunks).toEqual(['ab\n', 'a line of 23 bytes....\n', 'cd\n']);
  });

  it('writes what is pending when the limit changes, then batches under the new one', () => {
    const { b, chunks } = batcher(1000);
    b.write('pending\n');
    b.setLimit(10);
    expect(chunks).toEqual(['pending\n']);
    b.write('éé\n'); // 5 bytes
    expect(chunks).toHaveLength(1);
    b.write('éé\n'); // 10 bytes: full
    expect(chunks).toEqual(['pending\n', 'éé\néé\n']);
  });

  it('hands the sink a buffer it may keep: later lines never overwrite a written chunk', () => {
    const kept: Buffer[] = [];
    const b = new LineBatcher({ write: (c: Buffer) => kept.push(c) }, 8, 60_000);
    batchers.push(b);
    b.write('first\n');
    b.flush();
    b.write('second\n');
    b.flush();
    expect(kept.map(String)).toEqual(['first\n', 'second\n']);
  });

  it('writes what waits at least every flush interval', async () => {
    const { b, chunks } = batcher(1 << 20, 30);
    b.write('late line\n');
    expect(chunks).toEqual([]);
    await expect.poll(() => chunks, { timeout: 2000, interval: 10 }).toEqual(['late line\n']);
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
