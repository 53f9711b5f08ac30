/**
 * stopAndProve after a timeout: whichever of its steps fails first, the statement it was handed may
 * still fail later (it was cancelled), and that failure must never surface as an unhandled rejection
 * (the gateway logs those as tracebacks; a test runner fails on them).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { stopAndProve } from '../../src/db/timeout.js';

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

afterEach(() => {
  process.off('unhandledRejection', onUnhandled);
  unhandled.length = 0;
});

describe('stopAndProve', () => {
  it('leaves no unhandled rejection when the cancel fails before the statement does', async () => {
    process.on('unhandledRejection', onUnhandled);
    let failStatement!: (err: Error) => void;
    const running = new Promise<never>((_, reject) => (failStatement = reject));
    const clean = await stopAndProve(running, () => Promise.reject(new Error('side connection refused')), () => Promise.resolve());
    expect(clean).toBe(false);
    failStatement(new Error('statement cancelled'));
    await new Promise((r) => setTimeout(r, 20)); // unhandled rejections are reported after a macrotask
    expect(unhandled).toEqual([]);
  });

  it('is clean when the cancel works, the statement ends and the proof answers', async () => {
    const running = Promise.reject(new Error('statement cancelled'));
    expect(await stopAndProve(running, () => Promise.resolve(), () => Promise.resolve())).toBe(true);
  });
});
