import { describe, expect, it } from 'vitest';
import { waitFor } from './wait.js';

describe('waitFor', () => {
  it('resolves with the first value that is not undefined, null or false (0 counts), retrying a probe that throws', async () => {
    let calls = 0;
    const value = await waitFor('the third call', () => {
      calls++;
      if (calls === 1) throw new Error('not listening yet');
      return calls === 2 ? false : 0;
    }, { interval: 5 });
    expect({ value, calls }).toEqual({ value: 0, calls: 3 });
  });

  it('fails after the timeout naming what it waited for and the last error', async () => {
    await expect(waitFor('a server', () => Promise.reject(new Error('ECONNREFUSED')), { timeout: 100, interval: 10 })).rejects.toThrow(
      'timed out after 100 ms waiting for a server (last error: ECONNREFUSED)',
    );
    await expect(waitFor('nothing', () => undefined, { timeout: 50, interval: 10 })).rejects.toThrow(/^timed out after 50 ms waiting for nothing$/);
  });
});
