/**
 * The preHandler that gives a route the database resources it declares (`config.resources`)
 * before its handler runs, into the request's RequestResources (which give them back, also when the
 * client leaves while it waits). It is attached only to routes that declare resources, with their
 * ids bound at registration.
 */
import type { FastifyInstance, onRequestHookHandler, preHandlerHookHandler } from 'fastify';
import type { SettingsReader } from '../config/index.js';
import { NotFoundError } from '../errors.js';
import { getLogger } from '../log/index.js';
import { roundSeconds } from '../query/query-log.js';
import { RequestResources } from '../resources/request-resources.js';

const log = getLogger('acquire.ts');

export interface ResourceAcquirer {
  has(resourceId: string): boolean;
  /** Everything at once into `into` when nothing has to wait; undefined otherwise, holding nothing. */
  acquireNow(resourceIds: readonly string[], into: RequestResources): RequestResources | undefined;
  /** Waits for everything, into `into`; its end() cancels the wait. */
  acquire(resourceIds: readonly string[], into: RequestResources): Promise<RequestResources>;
}

function logAcquisition(resourceIds: readonly string[], held: RequestResources, settings: SettingsReader): void {
  const cfg = settings();
  if (!cfg.log_request_slot_durations && !cfg.log_db_conn_durations) return;
  const fields: Record<string, number | string> = {};
  for (const rid of resourceIds) {
    if (cfg.log_request_slot_durations) fields[`${rid}_request_slot_duration`] = roundSeconds(held.slotWaitSeconds(rid));
    if (cfg.log_db_conn_durations) fields[`${rid}_db_connection_duration`] = roundSeconds(held.connWaitSeconds(rid));
  }
  fields.cid = held.cid ?? '';
  log.info('acquisition-stats', 'acquisition durations', fields);
}

/**
 * A route of a disabled resource answers 404 in onRequest: before its query string or body is
 * parsed or validated, so nothing about the request can turn the 404 into a 400.
 */
function enabledHook(url: string, resourceIds: readonly string[], acquirer: ResourceAcquirer): onRequestHookHandler {
  return (req, _reply, done) => {
    const state = req.wt;
    state.endpoint = url;
    for (const rid of resourceIds) {
      if (!acquirer.has(rid)) return done(new NotFoundError(`resource ${rid} is not enabled on this server`, { resourceId: rid }));
    }
    // Given to the request now, before its body is read: a request that ends before its preHandler
    // runs has them ended by the lifecycle, and they are then never acquired.
    state.resources = new RequestResources(state.cid);
    done();
  };
}

function acquireHook(resourceIds: readonly string[], acquirer: ResourceAcquirer, settings: SettingsReader): preHandlerHookHandler {
  return (req, _reply, done) => {
    // The request's end (lifecycle) ends these: it cancels a wait, or gives back what is held.
    const resources = (req.wt.resources ??= new RequestResources(req.wt.cid));
    if (resources.aborted) return done(resources.reason as Error);
    // Usually everything is free: no promise, no listener.
    if (acquirer.acquireNow(resourceIds, resources) !== undefined) {
      logAcquisition(resourceIds, resources, settings);
      return done();
    }
    // Chained rather than async: most requests of a busy resource come this way.
    acquirer.acquire(resourceIds, resources).then(() => {
      logAcquisition(resourceIds, resources, settings);
      done();
    }, done);
  };
}

export function registerAcquire(app: FastifyInstance, acquirer: ResourceAcquirer, settings: SettingsReader): void {
  app.addHook('onRoute', (route) => {
    const ids = route.config?.resources;
    if (!ids || ids.length === 0) return;
    const onRequest = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest];
    route.onRequest = [...onRequest, enabledHook(route.url, [...ids], acquirer)];
    const existing = route.preHandler === undefined ? [] : Array.isArray(route.preHandler) ? route.preHandler : [route.preHandler];
    route.preHandler = [...existing, acquireHook([...ids], acquirer, settings)];
  });
}
