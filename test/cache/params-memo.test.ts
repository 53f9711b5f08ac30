/**
 * The params memo's bounds (src/cache/params-memo.ts): URLs and Accept headers are raw client input,
 * so a long one is not kept and many distinct ones empty it instead of growing it; HEAD learns apart
 * from GET.
 */
import { describe, expect, it } from 'vitest';
import { ParamsMemo, type Learnt } from '../../src/cache/params-memo.js';

const route = { endpoint: '/x', resources: [], vary: false, hit: () => undefined };
const learnt = (params: string): Learnt => ({ format: 'json', params, anonymousKey: undefined, route, config: {}, recorded: true });

describe('ParamsMemo', () => {
  it('keeps a URL per Accept, an absent Accept as an empty one', () => {
    const memo = new ParamsMemo();
    memo.set('GET', '/x?a=1', undefined, learnt('1'));
    memo.set('GET', '/x?a=1', 'text/csv', learnt('csv'));
    expect(memo.get('GET', '/x?a=1', undefined)?.params).toBe('1');
    expect(memo.get('GET', '/x?a=1', '')?.params).toBe('1');
    expect(memo.get('GET', '/x?a=1', 'text/csv')?.params).toBe('csv');
    expect(memo.get('GET', '/x?a=2', undefined)).toBeUndefined();
  });

  it('keeps HEAD apart from GET and nothing of other methods', () => {
    const memo = new ParamsMemo();
    memo.set('GET', '/x?a=1', undefined, learnt('get'));
    expect(memo.get('HEAD', '/x?a=1', undefined)).toBeUndefined();
    memo.set('HEAD', '/x?a=1', undefined, learnt('head'));
    memo.set('POST', '/x?a=1', undefined, learnt('post'));
    expect(memo.get('HEAD', '/x?a=1', undefined)?.params).toBe('head');
    expect(memo.get('GET', '/x?a=1', undefined)?.params).toBe('get');
    expect(memo.get('POST', '/x?a=1', undefined)).toBeUndefined();
  });

  it('keeps no URL over 256 characters and no Accept over 256', () => {
    const memo = new ParamsMemo();
    const long = `/x?a=${'1'.repeat(300)}`;
    memo.set('GET', long, undefined, learnt('long'));
    memo.set('GET', '/x?a=1', 'a/b, '.repeat(60), learnt('accept'));
    memo.set('GET', `/x?a=${'1'.repeat(251)}`, undefined, learnt('256'));
    expect(memo.get('GET', long, undefined)).toBeUndefined();
    expect(memo.get('GET', '/x?a=1', 'a/b, '.repeat(60))).toBeUndefined();
    expect(memo.get('GET', `/x?a=${'1'.repeat(251)}`, undefined)?.params).toBe('256');
  });

  it('empties itself at 4,000 URLs instead of growing, across every Accept', () => {
    const memo = new ParamsMemo();
    for (let i = 0; i < 4000; i++) memo.set('GET', `/x?a=${i}`, i % 2 === 0 ? undefined : 'text/csv', learnt(String(i)));
    expect(memo.get('GET', '/x?a=0', undefined)?.params).toBe('0');
    expect(memo.get('GET', '/x?a=3999', 'text/csv')?.params).toBe('3999');
    // Setting a URL already kept does not count twice.
    memo.set('GET', '/x?a=0', undefined, learnt('again'));
    expect(memo.get('GET', '/x?a=1', 'text/csv')?.params).toBe('1');
    memo.set('GET', '/x?a=4000', undefined, learnt('4000'));
    expect(memo.get('GET', '/x?a=0', undefined)).toBeUndefined();
    expect(memo.get('GET', '/x?a=3999', 'text/csv')).toBeUndefined();
    expect(memo.get('GET', '/x?a=4000', undefined)?.params).toBe('4000');
  });
});
