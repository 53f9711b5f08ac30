/**
 * The longest the event loop went without running a timer while `fn` ran, and what `fn` threw: how
 * a test shows that a driver call or a statement did not hold the event loop.
 */
export async function loopStallWhile(fn: () => Promise<unknown>, intervalMs = 20): Promise<{ stallMs: number; error: unknown }> {
  let last = performance.now();
  let stallMs = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    stallMs = Math.max(stallMs, now - last);
    last = now;
  }, intervalMs);
  try {
    await fn();
    return { stallMs: Math.max(stallMs, performance.now() - last), error: undefined };
  } catch (error) {
    return { stallMs: Math.max(stallMs, performance.now() - last), error };
  } finally {
    clearInterval(tick);
  }
}
