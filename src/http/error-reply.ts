/**
 * The one place errors become HTTP replies: AppErrors by their own status, validation errors as
 * 400 naming the field, Fastify's client errors as they are, anything else as 500 with a
 * traceback record. The body is always {"detail": "...", "cid": "..."}.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, ResourceError, WithDetailsError } from '../errors.js';
import { getLogger, oneLineTraceback } from '../log/index.js';

const log = getLogger('error-reply.ts');

export interface ErrorBody {
  detail: string;
  cid: string;
}

function send(reply: FastifyReply, req: FastifyRequest, status: number, detail: string): FastifyReply {
  return reply.code(status).type('application/json; charset=utf-8').send({ detail, cid: req.wt?.cid ?? '' } satisfies ErrorBody);
}

function isFastifyError(err: unknown): err is FastifyError {
  return err instanceof Error && typeof (err as FastifyError).statusCode === 'number';
}

export function registerErrorReplies(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, req, reply) => {
    if (err instanceof AppError) {
      if (err instanceof ResourceError) reply.header('Retry-After', String(err.retryAfterSeconds));
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
