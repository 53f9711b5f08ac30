/**
 * GET /metrics: Prometheus text exposition, at exactly that path (no redirect). Optional guards:
 * an allow-list of client addresses and CIDR blocks (config `metrics_allow`, read per request so a reload applies) and
 * basic auth (env WT_METRICS_USER / WT_METRICS_PASSWORD). Encapsulated on purpose (no
 * fastify-plugin): it decorates nothing others need.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema } from 'fastify';
import { config, type SettingsReader } from '../config/index.js';
import { AppError } from '../errors.js';
import { errorResponse } from '../http/schemas.js';
import { isAllowed } from './allow-list.js';
import type { Metrics } from './catalogue.js';

const WWW_AUTHENTICATE = 'Basic realm="metrics", charset="UTF-8"';
/** The exposition format's media type as the OpenAPI document names it (the reply adds charset=utf-8). */
const EXPOSITION_TYPE = 'text/plain; version=0.0.4';

export interface MetricsPluginOptions {
  metrics: Metrics;
  /** Replaces the local registry's output; cluster workers pass the aggregate of all workers. */
  getText?: () => Promise<string>;
  /** The live settings (metrics_allow); the process config by default. */
  settings?: SettingsReader;
}

/** Compares via SHA-256 digests so neither the content nor the length leaks through timing. */
function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

/** "::ffff:10.0.0.1" (IPv4 on a dual-stack socket) is the same client as "10.0.0.1". */
function plainIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

function allowList(settings: SettingsReader): readonly string[] {
  try {
    return settings().metrics_allow;
  } catch {
    return []; // config not loaded (embedded use): no allow-list
  }
}

/**
 * A refused or failed scrape. Thrown, so the app's error replies answer it like every other error
 * ({"detail", "cid"}, X-Correlation-ID).
 */
export class MetricsError extends AppError {
  /** A 401 is a failed authentication like any other (counted in wt_auth_failures_total); a 403 is the address rule. */
  readonly code: 'unauthenticated' | 'metrics';
  readonly statusCode: 401 | 403 | 503;

  constructor(statusCode: 401 | 403 | 503, message: string) {
    super(message);
    this.statusCode = statusCode;
    this.code = statusCode === 401 ? 'unauthenticated' : 'metrics';
  }
}

/** Throws a MetricsError when the client may not read the metrics. */
function guard(request: FastifyRequest, reply: FastifyReply, settings: SettingsReader): void {
  const allowed = allowList(settings);
  if (allowed.length > 0) {
    const ip = plainIp(request.ip);
    if (!isAllowed(allowed, request.ip)) throw new MetricsError(403, `client ${ip} is not allowed to read /metrics`);
  }
  const user = process.env.WT_METRICS_USER;
  const password = process.env.WT_METRICS_PASSWORD;
  if (user && password) {
    const header = request.headers.authorization ?? '';
    const ok = header.startsWith('Basic ') && safeEqual(Buffer.from(header.slice(6).trim(), 'base64').toString('utf8'), `${user}:${password}`);
    if (!ok) {
      reply.header('WWW-Authenticate', WWW_AUTHENTICATE);
      throw new MetricsError(401, 'authentication required for /metrics');
    }
  }
}

export async function metricsPlugin(app: FastifyInstance, opts: MetricsPluginOptions): Promise<void> {
  const { registry } = opts.metrics;
  const getText = opts.getText ?? (() => registry.metrics());
  const settings = opts.settings ?? config;
  // Built outside the route literal: `hide`/`tags` are typed by @fastify/swagger and
  // `skipRequestLog` by the app's hooks, neither of which this module depends on.
  const schema: FastifySchema & Record<string, unknown> = {
    tags: ['operations'],
    summary: 'Prometheus metrics',
    description:
      'All wt_* metrics in the Prometheus text format. With `metrics_allow` set only clients whose address is listed, or lies in a listed CIDR block, may read them; ' +
      'with WT_METRICS_USER and WT_METRICS_PASSWORD set, only with those basic-auth credentials.',
    response: {
      200: { description: 'The metrics', content: { [EXPOSITION_TYPE]: { schema: { type: 'string' } } } },
      401: {
        ...errorResponse('Basic auth is configured and the request has no valid credentials', 'authentication required for /metrics'),
        headers: { 'WWW-Authenticate': { type: 'string', description: 'Basic realm="metrics", charset="UTF-8"' } },
      },
      403: errorResponse('The client address is not in metrics_allow', 'client 10.0.0.7 is not allowed to read /metrics'),
      503: errorResponse('The server is shutting down, or (cluster mode) the metrics of the workers could not be collected in time', 'metrics unavailable: timeout'),
    },
  };
  const routeConfig = { skipRequestLog: true };
  app.get('/metrics', { schema, config: routeConfig }, async (request, reply) => {
    guard(request, reply, settings);
    let text: string;
    try {
      text = await getText();
    } catch (err) {
      throw new MetricsError(503, `metrics unavailable: ${(err as Error).message}`);
    }
    return reply.type(registry.contentType).send(text);
  });
}
