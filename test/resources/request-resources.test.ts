import { describe, expect, it } from 'vitest';
import { ClientClosedError } from '../../src/errors.js';
import { RequestResources } from '../../src/resources/request-resources.js';

/** A RequestResources holding one slot and one connection per id, every release recorded in `log`. */
function held(log: string[], ids = ['a']): RequestResources {
  const r = new RequestResources('cid1');
  r.begin(() => log.push('owner told'));
  for (const rid of ids) {
    r.addSlot(rid, { waitSeconds: 0.5, release: () => log.push(`slot ${rid}`) });
    r.addLease(rid, { connection: { connId: 7 } as never, waitSeconds: 0.25, pool: { acquire: () => Promise.reject(new Error('no other connection here')) }, release: (discard) => log.push(`conn ${rid}${discard ? ' discarded' : ''}`) });
  }
  r.complete();
  return r;
}

describe('RequestResources', () => {
  it('gives everything back exactly once, connections before slots, in reverse order of acquisition', async () => {
    const log: string[] = [];
    const r = held(log, ['a', 'b']);
    expect(r.resourceIds).toEqual(['a', 'b']);
    expect([r.slotWaitSeconds('b'), r.connWaitSeconds('b'), r.connWaitSeconds('x')]).toEqual([0.5, 0.25, 0]);
    r.releaseNow();
    r.releaseNow();
    await r.release();
    r.releaseIfIdle();
    expect(r.end()).toBeUndefined();
    expect(log).toEqual(['conn b', 'slot b', 'conn a', 'slot a', 'owner told']);
    expect(r.released).toBe(true);
    expect(() => r.connection('a')).toThrow(/no connection/);
    expect(r.connWaitSeconds('a')).toBe(0.25); // kept for the acquisition-stats record
  });

  it('releases early only when no statement runs and no stream is open', () => {
    const log: string[] = [];
    const r = held(log);
    r.statementStarted();
    r.releaseIfIdle();
    expect(log).toEqual([]);
    r.statementEnded();
    const cleanup = async () => undefined;
    r.addCleanup(cleanup);
    r.releaseIfIdle();
    expect(log).toEqual([]);
    r.removeCleanup(cleanup);
    r.releaseIfIdle();
    expect(log).toEqual(['conn a', 'slot a', 'owner told']);
  });

  it('at the request’s end, waits for every running statement and stops every stream before giving back', async () => {
    const log: string[] = [];
    const r = held(log);
    r.statementStarted();
    r.statementStarted();
    r.addCleanup(async () => {
      log.push('stream stopped');
    });
    const ending = r.end();
    expect(ending).toBeInstanceOf(Promise);
    expect(r.end()).toBeUndefined(); // only the first end acts
    r.statementEnded();
    await new Promise((resolve) => setImmediate(resolve));
    expect(log).toEqual(['stream stopped']); // one statement still runs
    r.statementEnded();
    await ending;
    expect(log).toEqual(['stream stopped', 'conn a', 'slot a', 'owner told']);
  });

  it('ended while still being acquired, it cancels the wait once with ClientClosedError and gives nothing back itself', () => {
    const r = new RequestResources();
    r.begin(() => undefined);
    const heard: unknown[] = [];
    const listener = () => heard.push(r.reason);
    const removed = () => heard.push('removed listener ran');
    r.addEventListener('abort', listener);
    r.addEventListener('abort', removed);
    r.removeEventListener('abort', removed);
    r.releaseIfIdle(); // nothing held yet: no early release
    expect(r.released).toBe(false);
    expect(r.end()).toBeUndefined();
    r.end();
    expect(r.aborted).toBe(true);
    expect(heard).toHaveLength(1);
    expect(heard[0]).toBeInstanceOf(ClientClosedError);
    expect(r.released).toBe(false); // the manager's failed acquisition gives back what it took
  });

  it('is filled once', () => {
    const r = held([]);
    expect(() => r.begin(() => undefined)).toThrow(/once/);
  });

  it('discards a connection instead of pooling it and keeps the slot', () => {
    const log: string[] = [];
    const r = held(log);
    r.discard('a');
    expect(() => r.connection('a')).toThrow();
    r.releaseNow();
    expect(log).toEqual(['conn a discarded', 'slot a', 'owner told']);
  });
});
