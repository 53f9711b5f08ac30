/** Liveness and readiness probes. */
import type { FastifyInstance } from 'fastify';

export interface Readiness {
  ready: boolean;
  /** Enabled resources that cannot serve now. */
  unavailable: string[];
}

export function healthRoutes(app: FastifyInstance, opts: { readiness: () => Readiness; shuttingDown: () => boolean }): void {
  app.get(
    '/health/live',
    {
      schema: {
        summary: 'Liveness: the process answers HTTP',
        tags: ['health'],
        response: { 200: { type: 'object', properties: { status: { type: 'string', enum: ['ok'] } } } },
      },
    },
    async () => ({ status: 'ok' }),
  );

  const readySchema = {
    type: 'object',
    properties: {
      status: { type: 'string', enum: ['ready', 'unavailable', 'shutting-down'] },
      unavailable: { type: 'array', items: { type: 'string' }, description: 'Enabled resources with no usable connection' },
    },
  } as const;
  app.get(
    '/health/ready',
    {
      schema: {
        summary: 'Readiness: every enabled database resource has a usable connection',
        tags: ['health'],
        response: { 200: readySchema, 503: readySchema },
      },
    },
    async (_req, reply) => {
      if (opts.shuttingDown()) return reply.code(503).send({ status: 'shutting-down', unavailable: [] });
      const r = opts.readiness();
      return reply.code(r.ready ? 200 : 503).send({ status: r.ready ? 'ready' : 'unavailable', unavailable: r.unavailable });
    },
  );
}
