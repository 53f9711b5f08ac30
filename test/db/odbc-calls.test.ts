/**
 * The odbc package runs each call in a thread of its own; two calls at once on one connection race
 * inside the driver (the gateway crashed so, rarely, while clients left ODBC streams). A fake
 * driver connection counts the calls in flight on it while a stream is stopped mid-fetch: never
 * more than one, besides the cancel, which is meant to run beside a statement; the stream's cursor
 * comes from a statement of its own, cancelled and closed after it.
 */
import { describe, expect, it, vi } from 'vitest';
import { OdbcDbConnection } from '../../src/db/odbc.js';
import { targetFromUrl } from '../../src/db/target.js';

type Rows = Record<string, unknown>[] & { count: number };

function fakeDriver() {
  let inFlight = 0;
  let most = 0;
  const cancels: (() => void)[] = [];
  /** A call that takes `ms`; `cancellable`: cancel() makes it fail, as a stopped fetch does. */
  const call = <T>(ms: number, result: () => T, cancellable = false) =>
    new Promise<T>((resolve, reject) => {
      inFlight++;
      most = Math.max(most, inFlight);
      const timer = setTimeout(() => {
        inFlight--;
        resolve(result());
      }, ms);
      if (cancellable) {
        cancels.push(() => {
          clearTimeout(timer);
          inFlight--;
          reject(Object.assign(new Error('[MariaDB] Query execution was interrupted'), { odbcErrors: [{ state: 'HY008', code: 1317, message: 'interrupted' }] }));
        });
      }
    });
  const rows = (): Rows => Object.assign([{ n: 1 }, { n: 2 }, { n: 3 }], { count: 3 });
  let fetches = 0;
  /** What was closed, in order. */
  const closed: string[] = [];
  const cursor = {
    noData: false,
    // The first fetch answers at once; the next one runs until cancelled.
    fetch: () => (fetches++ === 0 ? call(1, rows) : call(10_000, rows, true)),
    close: () => call(30, () => void closed.push('cursor')),
  };
  // A stream's cursor comes from a statement of its own (see src/db/odbc.ts), which it cancels.
  const statement = {
    prepare: () => call(1, () => undefined),
    bind: () => call(1, () => undefined),
    execute: (opts: { cursor?: boolean }) => call(1, () => (opts.cursor ? cursor : Object.assign([], { count: 0 }))),
    // SQLCancel is called beside the running statement, by design: not counted.
    cancel: async () => {
      for (const c of cancels.splice(0)) setTimeout(c, 1);
    },
    close: () => call(1, () => void closed.push('statement')),
  };
  const conn = {
    query: (_sql: string, _params: unknown[], opts: { cursor?: boolean }) => (opts.cursor ? Promise.reject(new Error('a stream takes a statement of its own')) : call(5, () => Object.assign([{ one: 1 }], { count: 1 }))),
    beginTransaction: () => call(1, () => undefined),
    commit: () => call(1, () => undefined),
    rollback: () => call(1, () => undefined),
    // connection.cancel reaches only connection.query's statements, none of a stream's.
    cancel: async () => undefined,
    close: () => call(1, () => undefined),
    createStatement: () => call(1, () => statement),
  };
  return { conn, most: () => most, inFlight: () => inFlight, cancellable: () => cancels.length, closed };
}

describe('ODBC calls on one connection', () => {
  it('a stream stopped mid-fetch closes its cursor before the connection is proved, one call at a time', async () => {
    const driver = fakeDriver();
    const target = targetFromUrl('mysql://u@127.0.0.1:3306/db', { db_type: 'odbc', db_driver: 'PostgreSQL Unicode' });
    const conn = new OdbcDbConnection('odbc_fake', 1, driver.conn as never, target, undefined);
    const rows = conn.stream('SELECT n FROM t', [], { timeoutSeconds: 5 });
    const it = rows[Symbol.asyncIterator]();
    for (const n of [1, 2, 3]) expect((await it.next()).value).toEqual({ n });
    // The consumer asks for more, and the next fetch runs until cancelled; then it leaves.
    const more = it.next().catch((err: unknown) => err);
    await vi.waitFor(() => expect(driver.cancellable()).toBe(1));
    await rows.cancel();
    await more;
    expect(conn.usable).toBe(true);
    expect(driver.inFlight()).toBe(0);
    expect(driver.most()).toBe(1);
    // The cursor first, then the statement it came from.
    expect(driver.closed).toEqual(['cursor', 'statement']);
    await conn.close();
  });
});
