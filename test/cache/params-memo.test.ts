/**
 * The params memo's bounds (src/cache/params-memo.ts): URLs and Accept headers are raw client input,
 * so a long one is not kept and many distinct ones empty it instead of growing it.
 */
import { describe, expect, it } from 'vitest';
import { ParamsMemo, type Learnt } from '../../src/cache/params-memo.js';

const route = { endpoint: '/x', resources: [], vary: false, hit: () => undefined };
const learnt = (params: string): Learnt => ({ format: 'json', params, anonymousKey: undefined, route, config: {}, recorded: true });

describe('ParamsMemo', () => {
  it('keeps a URL per Accept, an absent Accept as an empty one', () => {
    const memo = new ParamsMemo();
    memo.set('/x?a=1', undefined, learnt('1'));
    memo.set('/x?a=1', 'text/csv', learnt('csv'));
    expect(memo.get('/x?a=1', undefined)?.params).toBe('1');
    expect(memo.get('/x?a=1', '')?.params).toBe('1');
    expect(memo.get('/x?a=1', 'text/csv')?.params).toBe('csv');
    expect(memo.get('/x?a=2', undefined)).toBeUndefined();
  });

  it('keeps no URL over 256 characters and no Accept over 256', () => {
    const memo = new ParamsMemo();
    const long = `/x?a=${'1'.repeat(300)}`;
    memo.set(long, undefined, learnt('long'));
    memo.set('/x?a=1', 'a/b, '.repeat(60), learnt('accept'));
    memo.set(`/x?a=${'1'.repeat(251)}`, undefined, learnt('256'));
    expect(memo.get(long, undefined)).toBeUndefined();
    expect(memo.get('/x?a=1', 'a/b, '.repeat(60))).toBeUndefined();
    expect(memo.get(`/x?a=${'1'.repeat(251)}`, undefined)?.params).toBe('256');
  });

  it('empties itself at 4,000 URLs instead of growing, across every Accept', () => {
    const memo = new ParamsMemo();
    for (let i = 0; i < 4000; i++) memo.set(`/x?a=${i}`, i % 2 === 0 ? undefined : 'text/csv', learnt(String(i)));
    expect(memo.get('/x?a=0', undefined)?.params).toBe('0');
    expect(memo.get('/x?a=3999', 'text/csv')?.params).toBe('3999');
    // Setting a URL already kept does not count twice.
    memo.set('/x?a=0', undefined, learnt('again'));
    expect(memo.get('/x?a=1', 'text/csv')?.params).toBe('1');
    memo.set('/x?a=4000', undefined, learnt('4000'));
    expect(memo.get('/x?a=0', undefined)).toBeUndefined();
    expect(memo.get('/x?a=3999', 'text/csv')).toBeUndefined();
    expect(memo.get('/x?a=4000', undefined)?.params).toBe('4000');
  });
});
