/**
 * GET /metrics: Prometheus text exposition, at exactly that path (no redirect). Optional guards:
 * an allow-list of client addresses and CIDR blocks (config `metrics_allow`, read per request so a reload applies) and
 * basic auth (env WT_METRICS_USER / WT_METRICS_PASSWORD). Encapsulated on purpose (no
 * fastify-plugin): it decorates nothing others need.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema } from 'fastify';
import { config } from '../config/index.js';
import { isAllowed } from './allow-list.js';
import type { Metrics } from './catalogue.js';

export interface MetricsPluginOptions {
  metrics: Metrics;
  /** Replaces the local registry's output; cluster workers pass the aggregate of all workers. */
  getText?: () => Promise<string>;
}

/** Compares via SHA-256 digests so neither the content nor the length leaks through timing. */
function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

/** "::ffff:10.0.0.1" (IPv4 on a dual-stack socket) is the same client as "10.0.0.1". */
function plainIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

function allowList(): readonly string[] {
  try {
    return config().metrics_allow;
  } catch {
    return []; // config not loaded (embedded use): no allow-list
  }
}

/** Returns true when the request may proceed; otherwise has already replied. */
function guard(request: FastifyRequest, reply: FastifyReply): boolean {
  const allowed = allowList();
  if (allowed.length > 0) {
    const ip = plainIp(request.ip);
    if (!isAllowed(allowed, request.ip)) {
      void reply.code(403).send({ detail: `client ${ip} is not allowed to read /metrics` });
      return false;
    }
  }
  const user = process.env.WT_METRICS_USER;
  const password = process.env.WT_METRICS_PASSWORD;
  if (user && password) {
    const header = request.headers.authorization ?? '';
    const ok = header.startsWith('Basic ') && safeEqual(Buffer.from(header.slice(6).trim(), 'base64').toString('utf8'), `${user}:${password}`);
    if (!ok) {
      void reply.code(401).header('WWW-Authenticate', 'Basic realm="metrics", charset="UTF-8"').send({ detail: 'authentication required for /metrics' });
      return false;
    }
  }
  return true;
}

export async function metricsPlugin(app: FastifyInstance, opts: MetricsPluginOptions): Promise<void> {
  const { registry } = opts.metrics;
  const getText = opts.getText ?? (() => registry.metrics());
  // Built outside the route literal: `hide`/`tags` are typed by @fastify/swagger and
  // `skipRequestLog` by the app's hooks, neither of which this module depends on.
  const schema: FastifySchema & Record<string, unknown> = { tags: ['observability'], summary: 'Prometheus metrics', description: 'All wt_* metrics in the Prometheus text format.' };
  const routeConfig = { skipRequestLog: true };
  app.get('/metrics', { schema, config: routeConfig }, async (request, reply) => {
    if (!guard(request, reply)) return reply;
    let text: string;
    try {
      text = await getText();
    } catch (err) {
      return reply.code(503).send({ detail: `metrics unavailable: ${(err as Error).message}` });
    }
    return reply.type(registry.contentType).send(text);
  });
}
