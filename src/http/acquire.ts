/**
 * The preHandler that gives a route the database resources it declares (`config.resources`)
 * before its handler runs, and makes sure they go back even if the client leaves while it waits.
 * It is attached only to routes that declare resources, with their ids bound at registration.
 */
import type { FastifyInstance, FastifyRequest, onRequestHookHandler, preHandlerHookHandler } from 'fastify';
import { config } from '../config/index.js';
import { BadRequestError, ClientClosedError } from '../errors.js';
import { getLogger } from '../log/index.js';
import { roundSeconds } from '../query/query-log.js';
import { CancelOnce, type CancelSignal } from '../resources/util.js';
import { releaseHeld } from './lifecycle.js';
import type { HeldResources } from './request-state.js';

const log = getLogger('acquire.ts');

export interface ResourceAcquirer {
  has(resourceId: string): boolean;
  /** Everything at once when nothing has to wait; undefined otherwise, holding nothing. */
  acquireNow(resourceIds: readonly string[]): HeldResources | undefined;
  /** `cid` goes on the records of a failed acquisition. */
  acquire(resourceIds: readonly string[], signal?: CancelSignal, cid?: string): Promise<HeldResources>;
}

function logAcquisition(resourceIds: readonly string[], held: HeldResources, cid: string): void {
  const cfg = config();
  if (!cfg.log_request_slot_durations && !cfg.log_db_conn_durations) return;
  const fields: Record<string, number | string> = {};
  for (const rid of resourceIds) {
    if (cfg.log_request_slot_durations) fields[`${rid}_request_slot_duration`] = roundSeconds(held.slotWaitSeconds(rid));
    if (cfg.log_db_conn_durations) fields[`${rid}_db_connection_duration`] = roundSeconds(held.connWaitSeconds(rid));
  }
  fields.cid = cid;
  log.info('acquisition-stats', 'acquisition durations', fields);
}

/** Hands `held` to the request, unless the request already ended (then nobody else would give it back). */
function adopt(req: FastifyRequest, resourceIds: readonly string[], held: HeldResources): Promise<void> | undefined {
  req.wt.held = held;
  if (req.wt.finished) return releaseHeld(req.wt).then(() => Promise.reject(new ClientClosedError()));
  logAcquisition(resourceIds, held, req.wt.cid);
  return undefined;
}

/**
 * The waiting path: a slot or a connection is not free, so the client may leave while we wait.
 * Chained rather than async: most requests of a busy resource come this way.
 */
function acquireWaiting(req: FastifyRequest, resourceIds: readonly string[], acquirer: ResourceAcquirer): Promise<void> {
  const state = req.wt;
  const gone = new CancelOnce();
  // The request's end (its response closing before we answered: the client went away) aborts the wait.
  state.abandon = () => gone.cancel(new ClientClosedError());
  return acquirer.acquire(resourceIds, gone, state.cid).then(
    (held) => {
      state.abandon = undefined;
      return adopt(req, resourceIds, held);
    },
    (err: unknown) => {
      state.abandon = undefined;
      throw err;
    },
  );
}

/**
 * A route of a disabled resource answers 404 in onRequest: before its query string or body is
 * parsed or validated, so nothing about the request can turn the 404 into a 400.
 */
function enabledHook(url: string, resourceIds: readonly string[], acquirer: ResourceAcquirer): onRequestHookHandler {
  return (req, _reply, done) => {
    req.wt.endpoint = url;
    for (const rid of resourceIds) {
      if (!acquirer.has(rid)) return done(new BadRequestError(`resource ${rid} is not enabled on this server`, { statusCode: 404, resourceId: rid }));
    }
    done();
  };
}

function acquireHook(resourceIds: readonly string[], acquirer: ResourceAcquirer): preHandlerHookHandler {
  return (req, _reply, done) => {
    // Usually everything is free: no promise, no abort signal, no listener.
    const held = acquirer.acquireNow(resourceIds);
    const pending = held !== undefined ? adopt(req, resourceIds, held) : acquireWaiting(req, resourceIds, acquirer);
    if (pending === undefined) done();
    else pending.then(() => done(), done);
  };
}

export function registerAcquire(app: FastifyInstance, acquirer: ResourceAcquirer): void {
  app.addHook('onRoute', (route) => {
    const ids = route.config?.resources;
    if (!ids || ids.length === 0) return;
    const onRequest = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest];
    route.onRequest = [...onRequest, enabledHook(route.url, [...ids], acquirer)];
    const existing = route.preHandler === undefined ? [] : Array.isArray(route.preHandler) ? route.preHandler : [route.preHandler];
    route.preHandler = [...existing, acquireHook([...ids], acquirer)];
  });
}
