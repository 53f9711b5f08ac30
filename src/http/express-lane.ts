/**
 * The express lane: a repeated cache hit answered in the server's request listener, before Fastify
 * routes it. The gateway's own server (src/http/shared-server.ts) asks the lane first; an app that
 * embeds the plugin never has one, so its own hooks always run.
 *
 * It answers only a request that the whole path would answer with the same cached bytes and that
 * every request hook would let through untouched: a GET or HEAD whose URL and Accept a cached
 * endpoint learnt (src/cache/params-memo.ts: they passed validation and the param hooks before),
 * with no body and no trace context, from a client the network rules let in, to a route the
 * authentication hook lets through without a caller and no rate limit counts, whose resources are
 * enabled, while the server is not shutting down, and whose entry is in this process's memory with
 * no query under way for its key. (Server-Timing has nothing to say of a hit: it holds no resource.) Each hook's module says when it would
 * let a request through (admitsWithoutCaller, networkRulesPass, rateLimitsMayApply); anything else
 * goes to Fastify, as does every request when traces are on or the cache is kept in Redis.
 *
 * Its answer is what the hooks and the cache's preParsing send for such a request: the same
 * headers (the correlation id, Cache-Control, ETag, Vary, Content-Type, Content-Length,
 * X-Process-Time), 304 for a matching If-None-Match, no body for HEAD, the same request and
 * request-stats records, and the same request and cache metrics (test/http/express-lane.test.ts
 * compares the two answers). What it skips is Fastify's per-request work: the request and reply
 * objects, routing, the hook runners and the reply's header handling.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import proxyAddr from '@fastify/proxy-addr';
import type { SettingsReader } from '../config/index.js';
import { admitsWithoutCaller } from '../auth/hook.js';
import { cacheControlOf } from '../cache/http.js';
import { notModified, type CacheEntry } from '../cache/entry.js';
import type { ParamsMemo } from '../cache/params-memo.js';
import { networkRulesPass } from '../limits/network-rules.js';
import { rateLimitsMayApply } from '../limits/rate-limits.js';
import { trustProxy } from '../net/trust-proxy.js';
import { correlationId } from './cid.js';
import { expressRecords, processTimeSince, type RequestObserver } from './lifecycle.js';

/** What the lane needs of a cached endpoint (made by src/cache/http.ts). */
export interface ExpressRoute {
  /** The route template, as metrics and records name it. */
  readonly endpoint: string;
  readonly resources: readonly string[];
  /** The answer varies by Accept. */
  readonly vary: boolean;
  /** The entry of `key` when it is in memory with no query under way for it, counted as a hit; else undefined. */
  hit(key: string): CacheEntry | undefined;
}

/** Answers `req` and returns true, or returns false having written nothing (Fastify answers it then). */
export type ExpressLane = (req: IncomingMessage, res: ServerResponse) => boolean;

export interface ExpressLaneDeps {
  settings: SettingsReader;
  memo: ParamsMemo;
  acquirer: { has(rid: string): boolean };
  observer: RequestObserver;
  isShuttingDown: () => boolean;
}

/** A request body would be read (and perhaps refused) by Fastify. */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
}

export function expressLane(deps: ExpressLaneDeps): ExpressLane {
  const { settings, memo, acquirer, isShuttingDown } = deps;
  const records = expressRecords(deps.observer);
  const trusts = trustProxy(settings);

  return (req, res) => {
    const start = performance.now();
    const method = req.method;
    if (method !== 'GET' && method !== 'HEAD') return false;
    const url = req.url ?? '';
    const headers = req.headers;
    const learnt = memo.get(method, url, headers.accept);
    if (learnt === undefined || learnt.anonymousKey === undefined) return false;
    // The lifecycle would answer a trace context, and registerClientErrors a Host-less HTTP/1.1 request.
    if (headers.traceparent !== undefined || hasBody(req) || (headers.host === undefined && req.httpVersion !== '1.0')) return false;
    if (!learnt.recorded || isShuttingDown()) return false;
    const cfg = settings();
    const route = learnt.route;
    for (const rid of route.resources) if (!acquirer.has(rid)) return false;
    // request.ip as Fastify reads it with the same trust_proxy.
    const client = cfg.trust_proxy.length === 0 ? req.socket.remoteAddress : proxyAddr(req, trusts);
    if (client === undefined || !networkRulesPass(client, cfg, learnt.config)) return false;
    if (!admitsWithoutCaller(learnt.config, cfg.auth, headers) || rateLimitsMayApply(cfg, learnt.config)) return false;
    const entry = route.hit(learnt.anonymousKey);
    if (entry === undefined) return false;

    const cid = correlationId(headers['x-correlation-id'], cfg.cid_len);
    const messages = records.arrived(method, url, client, cid);
    const notModifiedAnswer = notModified(headers['if-none-match'], entry.etag);
    const length = notModifiedAnswer ? undefined : String(entry.body.length);
    const cacheControl = cacheControlOf(entry, false);
    // Lower-case names, in the order the hooks and Fastify set them; one array literal per shape.
    let out: string[];
    if (length === undefined) {
      out = route.vary
        ? ['x-correlation-id', cid, 'cache-control', cacheControl, 'etag', entry.etag, 'vary', 'Accept', 'x-process-time', processTimeSince(start)]
        : ['x-correlation-id', cid, 'cache-control', cacheControl, 'etag', entry.etag, 'x-process-time', processTimeSince(start)];
    } else {
      const type = entry.contentType;
      out = route.vary
        ? ['x-correlation-id', cid, 'cache-control', cacheControl, 'etag', entry.etag, 'vary', 'Accept', 'content-type', type, 'content-length', length, 'x-process-time', processTimeSince(start)]
        : ['x-correlation-id', cid, 'cache-control', cacheControl, 'etag', entry.etag, 'content-type', type, 'content-length', length, 'x-process-time', processTimeSince(start)];
    }
    // 'close' comes once, answered or not: no once() wrapper needed.
    res.on('close', () => records.ended(messages, route.endpoint, client, cid, req, res, start, length));
    res.writeHead(length === undefined ? 304 : entry.status, out);
    res.end(length === undefined || method === 'HEAD' ? undefined : entry.body);
    return true;
  };
}
