import { describe, expect, it } from 'vitest';
import { correlationId } from '../../src/http/cid.js';

describe('correlationId', () => {
  it('generates hex ids of the configured length, also past one UUID group', () => {
    for (const len of [4, 12, 13, 16, 32]) {
      const ids = new Set(Array.from({ length: 50 }, () => correlationId(undefined, len)));
      // 4 hex digits are 65,536 ids: 50 of them collide about 2% of the time (the birthday bound).
      if (len >= 12) expect(ids.size).toBe(50);
      for (const id of ids) expect(id).toMatch(new RegExp(`^[0-9a-f]{${len}}$`));
    }
  });

  it('stays unique and well-formed across many refills of its random bytes', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 5000; i++) ids.add(correlationId(undefined, i % 2 === 0 ? 32 : 13));
    expect(ids.size).toBe(5000);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{13}$|^[0-9a-f]{32}$/);
  });

  it('keeps a safe client id and replaces anything else', () => {
    expect(correlationId('client-42.a_b', 12)).toBe('client-42.a_b');
    expect(correlationId('bad id"', 12)).toMatch(/^[0-9a-f]{12}$/);
    expect(correlationId(['a', 'b'], 12)).toMatch(/^[0-9a-f]{12}$/);
    expect(correlationId('x'.repeat(65), 12)).toMatch(/^[0-9a-f]{12}$/);
  });
});
