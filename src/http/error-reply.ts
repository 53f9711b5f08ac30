/**
 * The one place errors become HTTP replies: AppErrors by their own status, validation errors as
 * 400 naming the field, Fastify's client errors as they are, anything else as 500 with a
 * traceback record. The body is always {"detail": "...", "cid": "..."}.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { resourceSettingsOf, type SettingsReader } from '../config/index.js';
import { AppError, BreakerOpenError, DatabaseError, RateLimitedError, TooManyPendingError, WithDetailsError } from '../errors.js';
import { getLogger, oneLineTraceback } from '../log/index.js';

const log = getLogger('error-reply.ts');

export interface ErrorBody {
  detail: string;
  cid: string;
}

function send(reply: FastifyReply, req: FastifyRequest, status: number, detail: string): FastifyReply {
  return reply.code(status).type('application/json; charset=utf-8').send({ detail, cid: req.wt?.cid ?? '' } satisfies ErrorBody);
}

/** Retry-After of a 503 that names no better time (shutting down, a health check). */
export const DEFAULT_RETRY_AFTER_SECONDS = 5;

/**
 * Seconds a client should wait after a 503: for a database that could not be reached, the time the
 * pool waits before trying it again (db_conn_retry_wait_period), since an earlier retry is refused
 * at once without an attempt.
 */
function retryAfter(err: AppError, settings: SettingsReader): number {
  if (err instanceof DatabaseError && err.unreachable && err.resourceId) {
    try {
      return Math.max(1, Math.ceil(resourceSettingsOf(settings(), err.resourceId).db_conn_retry_wait_period));
    } catch {
      // the resource left the config on a reload: fall through to the default
    }
  }
  return DEFAULT_RETRY_AFTER_SECONDS;
}

function isFastifyError(err: unknown): err is FastifyError {
  return err instanceof Error && typeof (err as FastifyError).statusCode === 'number';
}

export function registerErrorReplies(app: FastifyInstance, settings: SettingsReader): void {
  app.setErrorHandler((err: unknown, req, reply) => {
    if (err instanceof AppError) {
      if (err instanceof TooManyPendingError || err instanceof RateLimitedError || err instanceof BreakerOpenError) reply.header('Retry-After', String(err.retryAfterSeconds));
      else if (err.statusCode === 503) reply.header('Retry-After', String(retryAfter(err, settings)));
      if (err instanceof WithDetailsError) {
        log.error('traceback', err.message, { ...err.details, traceback: oneLineTraceback(err), cid: req.wt?.cid });
      }
      return send(reply, req, err.statusCode, err.message);
    }
    if (isFastifyError(err) && err.validation) {
      // e.g. "querystring/limit must be <= 10000", "body/rows/2/port must be integer"
      return send(reply, req, 400, err.message);
    }
    const status = isFastifyError(err) ? (err.statusCode ?? 500) : 500;
    if (status >= 400 && status < 500) return send(reply, req, status, (err as Error).message);
    log.error('traceback', 'unexpected error', {
      method: req.method,
      url: req.url,
      error: err instanceof Error ? err.message : String(err),
      traceback: oneLineTraceback(err),
      cid: req.wt?.cid,
    });
    return send(reply, req, 500, 'unexpected error; see the server log for this cid');
  });

  app.setNotFoundHandler((req, reply) => send(reply, req, 404, `no route for ${req.method} ${req.url.split('?')[0]}`));
}
