/**
 * A bounded HTTP load generator for tests, to 127.0.0.1 only. Each of `clients` loops issues
 * requests until `durationMs` has passed; some clients leave in the middle of responses, and when
 * the time is up every request still in flight is dropped, as wrk does at the end of a run. Counts
 * what came back by status, so a test can demand zero 5xx.
 */
import { request, Agent } from 'node:http';

export type ClientKind =
  /** Reads every response to its end. */
  | 'reader'
  /** Drops the connection as soon as the first body bytes arrive. */
  | 'leave-mid-body'
  /** Drops the connection a few milliseconds after sending, before or after the headers came. */
  | 'leave-early';

export interface LoadOptions {
  url: string;
  /** Paths, used in turn. */
  paths: string[];
  clients: number;
  durationMs: number;
  /** Kinds of the clients, assigned in turn (default: readers only). */
  kinds?: ClientKind[];
  /** Most requests in total, so a run is bounded in count as well as time. */
  maxRequests?: number;
}

export interface LoadResult {
  /** Responses whose headers arrived, by status code. */
  statuses: Record<number, number>;
  /** Requests dropped by the client on purpose (mid-body, early, or at the end of the run). */
  dropped: number;
  /** Requests that failed on the client side for another reason (connection refused or reset). */
  errors: string[];
  /** Responses read to their end. */
  completed: number;
}

export function fiveXx(result: LoadResult): number {
  return Object.entries(result.statuses).reduce((n, [code, count]) => (Number(code) >= 500 ? n + count : n), 0);
}

export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const target = new URL(opts.url);
  if (target.hostname !== '127.0.0.1' && target.hostname !== 'localhost') throw new Error('load tests only target the loopback address');
  const kinds = opts.kinds ?? ['reader'];
  const maxRequests = opts.maxRequests ?? 100_000;
  const result: LoadResult = { statuses: {}, dropped: 0, errors: [], completed: 0 };
  const deadline = Date.now() + opts.durationMs;
  const inFlight = new Set<() => void>();
  let issued = 0;
  let next = 0;
  const agent = new Agent({ keepAlive: true, maxSockets: opts.clients });

  const once = (kind: ClientKind): Promise<void> =>
    new Promise((resolve) => {
      const path = opts.paths[next++ % opts.paths.length];
      let settled = false;
      const done = () => {
        if (settled) return;
        settled = true;
        inFlight.delete(drop);
        clearTimeout(earlyTimer);
        resolve();
      };
      const drop = () => {
        if (settled) return;
        result.dropped++;
        req.destroy();
        done();
      };
      const req = request({ host: target.hostname, port: target.port, path, agent }, (res) => {
        result.statuses[res.statusCode ?? 0] = (result.statuses[res.statusCode ?? 0] ?? 0) + 1;
        if (kind === 'leave-mid-body') {
          res.once('data', drop);
          return;
        }
        res.on('data', () => undefined);
        res.on('end', () => {
          result.completed++;
          done();
        });
        res.on('error', drop);
      });
      req.on('error', (err) => {
        if (!settled) result.errors.push(err.message);
        done();
      });
      const earlyTimer = kind === 'leave-early' ? setTimeout(drop, 1 + Math.floor(Math.random() * 5)) : undefined;
      inFlight.add(drop);
      req.end();
    });

  const client = async (kind: ClientKind) => {
    while (Date.now() < deadline && issued < maxRequests) {
      issued++;
      await once(kind);
    }
  };
  const loops = Array.from({ length: opts.clients }, (_, i) => client(kinds[i % kinds.length]));
  // The end of the run: whatever is still in flight is dropped, mid-response if it must be.
  const end = setTimeout(() => {
    for (const drop of [...inFlight]) drop();
  }, opts.durationMs);
  await Promise.all(loops);
  clearTimeout(end);
  agent.destroy();
  return result;
}
