import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Summariser } from '../../src/log/summarise.js';

type Call = [tag: string, msg: string, fields?: Record<string, unknown>];

describe('Summariser', () => {
  let calls: Call[];
  const write = (tag: string, msg: string, fields?: Record<string, unknown>) => void calls.push([tag, msg, fields]);

  beforeEach(() => {
    calls = [];
    vi.useFakeTimers();
  });
  afterEach(() => vi.useRealTimers());

  it('writes the first record at once and one record with the count per interval after it', () => {
    const s = new Summariser(() => 1000);
    for (let i = 0; i < 500; i++) s.write('dbconn-err pg', write, 'dbconn-err', 'could not open', { resource_id: 'pg', cid: `c${i}` });
    expect(calls).toEqual([['dbconn-err', 'could not open', { resource_id: 'pg', cid: 'c0' }]]);

    vi.advanceTimersByTime(1000);
    // The last suppressed record stands for all 499, without a cid that would name just one request.
    expect(calls[1]).toEqual(['dbconn-err', 'could not open', { resource_id: 'pg', suppressed: 499, interval: 1 }]);

    // Still failing: the next interval again writes one record, with its own count.
    for (let i = 0; i < 20; i++) s.write('dbconn-err pg', write, 'dbconn-err', 'could not open', { resource_id: 'pg', cid: `d${i}` });
    expect(calls).toHaveLength(2);
    vi.advanceTimersByTime(1000);
    expect(calls[2][2]).toMatchObject({ suppressed: 20 });

    // A quiet interval ends the summary; the next failure is written at once.
    vi.advanceTimersByTime(1000);
    expect(calls).toHaveLength(3);
    s.write('dbconn-err pg', write, 'dbconn-err', 'could not open', { resource_id: 'pg', cid: 'e0' });
    expect(calls[3][2]).toEqual({ resource_id: 'pg', cid: 'e0' });
  });

  it('keeps keys apart: each tag and resource gets its own first record and count', () => {
    const s = new Summariser(() => 1000);
    for (const key of ['slot-err a', 'slot-err b', 'dbconn-err a', 'slot-err a', 'slot-err a']) s.write(key, write, key.split(' ')[0], 'm', { resource_id: key.split(' ')[1] });
    expect(calls.map((c) => `${c[0]} ${String(c[2]?.resource_id)}`)).toEqual(['slot-err a', 'slot-err b', 'dbconn-err a']);
    vi.advanceTimersByTime(1000);
    expect(calls.slice(3)).toEqual([['slot-err', 'm', { resource_id: 'a', suppressed: 2, interval: 1 }]]);
  });

  it('flush() writes pending counts at once (the process exit does)', () => {
    const s = new Summariser(() => 60_000);
    s.write('k', write, 't', 'm', {});
    s.write('k', write, 't', 'm', {});
    s.flush();
    expect(calls).toEqual([['t', 'm', {}], ['t', 'm', { suppressed: 1, interval: 60 }]]);
  });
});
