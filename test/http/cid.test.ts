import { describe, expect, it } from 'vitest';
import { correlationId } from '../../src/http/cid.js';

describe('correlationId', () => {
  it('generates hex ids of the configured length, also past one UUID group', () => {
    for (const len of [4, 12, 13, 16, 32]) {
      const ids = new Set(Array.from({ length: 50 }, () => correlationId(undefined, len)));
      expect(ids.size).toBe(50);
      for (const id of ids) expect(id).toMatch(new RegExp(`^[0-9a-f]{${len}}$`));
    }
  });

  it('keeps a safe client id and replaces anything else', () => {
    expect(correlationId('client-42.a_b', 12)).toBe('client-42.a_b');
    expect(correlationId('bad id"', 12)).toMatch(/^[0-9a-f]{12}$/);
    expect(correlationId(['a', 'b'], 12)).toMatch(/^[0-9a-f]{12}$/);
    expect(correlationId('x'.repeat(65), 12)).toMatch(/^[0-9a-f]{12}$/);
  });
});
