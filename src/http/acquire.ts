/**
 * preHandler that gives a route the database resources it declares (`config.resources`) before its
 * handler runs, and makes sure they go back even if the client leaves while it waits.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { config } from '../config/index.js';
import { BadRequestError, ClientClosedError } from '../errors.js';
import { getLogger } from '../log/index.js';
import { releaseHeld } from './lifecycle.js';
import type { HeldResources } from './request-state.js';

const log = getLogger('acquire.ts');

export interface ResourceAcquirer {
  has(resourceId: string): boolean;
  acquire(resourceIds: string[], signal?: AbortSignal): Promise<HeldResources>;
}

function logAcquisition(resourceIds: string[], held: HeldResources): void {
  const cfg = config();
  if (!cfg.log_request_slot_durations && !cfg.log_db_conn_durations) return;
  const fields: Record<string, number> = {};
  for (const rid of resourceIds) {
    if (cfg.log_request_slot_durations) fields[`${rid}_request_slot_duration`] = Number(held.slotWaitSeconds(rid).toFixed(4));
    if (cfg.log_db_conn_durations) fields[`${rid}_db_connection_duration`] = Number(held.connWaitSeconds(rid).toFixed(4));
  }
  log.info('acquisition-stats', 'acquisition durations', fields);
}

export function registerAcquire(app: FastifyInstance, acquirer: ResourceAcquirer): void {
  app.addHook('preHandler', async (req: FastifyRequest, reply) => {
    const resourceIds = req.routeOptions.config.resources;
    if (!resourceIds || resourceIds.length === 0) return;
    for (const rid of resourceIds) {
      if (!acquirer.has(rid)) throw new BadRequestError(`resource ${rid} is not enabled on this server`, { statusCode: 404, resourceId: rid });
    }
    const gone = new AbortController();
    const onClose = () => gone.abort();
    // Before the reply is sent, the response closing means the client went away.
    reply.raw.once('close', onClose);
    const held = await acquirer.acquire(resourceIds, gone.signal);
    reply.raw.removeListener('close', onClose);
    req.wt.held = held;
    if (req.wt.finished) {
      // The request ended while we waited: nobody else will give these back.
      await releaseHeld(req.wt);
      throw new ClientClosedError();
    }
    logAcquisition(resourceIds, held);
  });
}
