import { describe, expect, it } from 'vitest';
import { exactInteger } from '../../src/db/exact-integer.js';

describe('exactInteger', () => {
  it('gives a number while it is exact and the decimal text beyond 2^53', () => {
    expect(exactInteger(9007199254740991n)).toBe(9007199254740991);
    expect(exactInteger(-9007199254740991n)).toBe(-9007199254740991);
    expect(exactInteger(9007199254740993n)).toBe('9007199254740993');
    expect(exactInteger(-9007199254740993n)).toBe('-9007199254740993');
    expect(exactInteger('42')).toBe(42);
    expect(exactInteger('9007199254740993')).toBe('9007199254740993');
  });
});
