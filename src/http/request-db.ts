/**
 * `request.db`: the statements of a route that declares `config.resources`, run on the connections
 * the request holds, with the timeouts, query-stats record and metrics of the declared endpoints
 * (it is their RequestQueries). What it runs is tied to the request, so the lifecycle's guarantees
 * hold for it: released once, a stream stopped when its client leaves, nothing left busy.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { RequestQueries, type QueryDeps } from '../query/query.js';
import './request-state.js';

/** What a route's handler runs its statements with. */
export type RequestDb = Pick<RequestQueries, 'rows' | 'stream' | 'transaction' | 'release'>;

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The statements of this request, on the connections of the resources its route declares in
     * `config.resources` (held before the handler runs). Each statement names its resource.
     */
    readonly db: RequestDb;
  }
}

/** A route that declares resources but was added before the plugin, so nothing was acquired for it. */
function notAcquired(req: FastifyRequest): Error | undefined {
  if (req.wt.resources !== undefined) return undefined;
  const declared = req.routeOptions.config.resources;
  if (declared === undefined || declared.length === 0) return undefined;
  return new Error(
    `route ${req.routeOptions.url ?? req.url} declares resources ${declared.join(', ')} but holds none: ` +
      'it was added before the WatchTower plugin finished registering (await app.register(...) first)',
  );
}

export function registerRequestDb(app: FastifyInstance, deps: QueryDeps): void {
  app.decorateRequest('db', {
    getter(this: FastifyRequest): RequestDb {
      const err = notAcquired(this);
      if (err) throw err;
      // Stateless over the request's state (what it holds, its query records): one per read is fine.
      return new RequestQueries(this.wt, deps.onQuery, deps.settings);
    },
  });
}
