/**
 * The HTTP server's own timeouts, from config: how long a client may take to send a request, how
 * long an idle keep-alive connection stays, and an optional inactivity limit. Without them a client
 * trickling a body a byte every few seconds, or opening connections and sending nothing, holds a
 * socket (and, for a body, the request) for ever. Answers are bounded elsewhere: query timeouts,
 * and stream_stall_timeout for clients that stop reading.
 */
import type { GlobalSettings } from '../config/schema.js';

export type TimeoutSettings = Pick<GlobalSettings, 'http_headers_timeout' | 'http_request_timeout' | 'http_keep_alive_timeout' | 'http_idle_timeout'>;

const ms = (seconds: number) => Math.max(1, Math.round(seconds * 1000));

/** Fastify's own options (it applies them to the server it creates). */
export function fastifyTimeouts(cfg: TimeoutSettings): { requestTimeout: number; keepAliveTimeout: number; connectionTimeout: number } {
  return {
    requestTimeout: ms(cfg.http_request_timeout),
    keepAliveTimeout: ms(cfg.http_keep_alive_timeout),
    connectionTimeout: cfg.http_idle_timeout > 0 ? ms(cfg.http_idle_timeout) : 0,
  };
}

/** Options for node:http's createServer (Fastify's `http` option). */
export function nodeServerTimeouts(cfg: TimeoutSettings): { headersTimeout: number; requestTimeout: number; connectionsCheckingInterval: number } {
  const request = ms(cfg.http_request_timeout);
  // Node refuses a headers timeout above the request timeout: the headers are part of the request.
  const headers = Math.min(ms(cfg.http_headers_timeout), request);
  return {
    headersTimeout: headers,
    requestTimeout: request,
    // Node enforces both only when it sweeps its connections (every 30 s by default), which would
    // let a 10 s limit run to 40 s; a sweep every second (or a tenth of the shorter limit) is cheap.
    connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(headers / 10))),
  };
}
