/**
 * The response cache on a declared endpoint's route:
 *
 * - a cached GET endpoint gets a preHandler that runs after validation and the param hooks and
 *   before the acquire hook: a hit is answered there, holding no slot and no connection; a request
 *   whose key has a query under way waits for it (single flight); otherwise the request leads: it
 *   goes on to acquire and its handler, which sends the answer through its Lead (kept, and shared
 *   with the waiters). A failure of the leader (from a hook or the handler: onError) is every
 *   waiter's answer; a leader whose client leaves lets its waiters go their own way.
 * - a write endpoint with `invalidates` removes those endpoints' entries once its statements succeed,
 *   before it answers.
 *
 * Every answer from the cache carries `ETag` (a hash of the bytes) and
 * `Cache-Control: max-age=<seconds left>`, `private` when a caller is known; If-None-Match
 * naming it gets 304. A streamed answer is teed: sent as it comes, and kept when it ends within
 * cache_max_entry_bytes (its own response has no ETag: its headers go before its bytes are known).
 */
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest, onErrorHookHandler, preHandlerHookHandler, preParsingHookHandler } from 'fastify';
import { resourceSettingsOf, type SettingsReader } from '../config/index.js';
import type { Endpoint, Format } from '../endpoints/declaration.js';
import { ClientClosedError } from '../errors.js';
import { negotiate } from '../endpoints/formats.js';
import { cacheIdOf } from './endpoint-cache.js';
import { etagOf, notModified, type CacheEntry } from './entry.js';
import { endpointKeys } from './key.js';
import type { ParamsMemo } from './params-memo.js';
import type { ExpressRoute } from '../http/express-lane.js';
import type { Flight, Lookup, ResponseCache } from './response-cache.js';

type Obj = Record<string, unknown>;

/** Times a waiter whose leader had nothing to share looks again before running its own query uncached. */
const MAX_ROUNDS = 3;

/** `max-age=<n>` up to an hour, made once each (at most 3,601 short strings): a hit's header without a string join per request. */
const MAX_AGES: string[] = [];
const MAX_AGES_KEPT = 3600;

/** Cache-Control of a hit: the whole seconds left, rounded up (a fresh answer says its full ttl); `private` for a known caller. */
export function cacheControlOf(entry: CacheEntry, caller: boolean): string {
  const left = Math.max(0, Math.ceil((entry.expiresAt - Date.now()) / 1000));
  if (caller) return `private, max-age=${left}`;
  if (left > MAX_AGES_KEPT) return `max-age=${left}`;
  return (MAX_AGES[left] ??= `max-age=${left}`);
}

function sendEntry(req: FastifyRequest, reply: FastifyReply, entry: CacheEntry, vary: boolean): FastifyReply {
  reply.header('cache-control', cacheControlOf(entry, req.wt.caller !== undefined));
  reply.header('etag', entry.etag);
  if (vary) reply.header('vary', 'Accept');
  if (notModified(req.headers['if-none-match'], entry.etag)) return reply.code(304).send();
  return reply.code(entry.status).type(entry.contentType).send(entry.body);
}

/** The request that runs the query for its key: what it sends is kept and shared with the waiters. */
export class Lead {
  private done = false;

  constructor(
    private readonly cache: ResponseCache,
    private readonly ep: CachedEndpoint,
    private readonly key: string,
    private readonly lookup: Lookup,
    private readonly flight: Flight,
  ) {}

  private entryOf(body: Buffer, contentType: string, status: number): CacheEntry {
    return { id: this.ep.id, endpoint: this.ep.path, status, contentType, body, etag: etagOf(body), expiresAt: Date.now() + this.ep.ttlMs };
  }

  /** Keeps and shares `entry`. */
  private complete(entry: CacheEntry): void {
    if (this.done) return;
    this.done = true;
    this.cache.endFlight(this.key, this.flight);
    this.flight.resolve(entry);
    this.cache.store(this.key, entry, this.lookup);
  }

  /** The leader failed: each waiter answers with the same error; nothing is kept. */
  fail(err: unknown): void {
    if (this.done) return;
    this.done = true;
    this.cache.endFlight(this.key, this.flight);
    this.flight.reject(err);
  }

  /** Nothing to share (the client left, or a stream too large): waiters go their own way. */
  abandon(): void {
    if (this.done) return;
    this.done = true;
    this.cache.endFlight(this.key, this.flight);
    this.flight.resolve(undefined);
  }

  /** Sends a complete answer (rows, one), keeping it. */
  send(req: FastifyRequest, reply: FastifyReply, payload: string, contentType: string): FastifyReply {
    const entry = this.entryOf(Buffer.from(payload), contentType, reply.statusCode);
    this.complete(entry);
    return sendEntry(req, reply, entry, this.ep.vary);
  }

  /** Sends a streamed answer as it comes, keeping a copy while it stays within cache_max_entry_bytes. */
  sendStream(req: FastifyRequest, reply: FastifyReply, chunks: AsyncIterable<string | Buffer>, contentType: string): FastifyReply {
    const max = this.cache.maxEntryBytes;
    const status = reply.statusCode;
    // Fresh for the ttl whether or not it is kept: the answer is as of now.
    reply.header('cache-control', req.wt.caller === undefined ? `max-age=${this.ep.ttlSeconds}` : `private, max-age=${this.ep.ttlSeconds}`);
    if (this.ep.vary) reply.header('vary', 'Accept');
    const tee = async function* (lead: Lead): AsyncGenerator<Buffer> {
      const parts: Buffer[] = [];
      let size = 0;
      let keep = true;
      let ended = false;
      try {
        for await (const chunk of chunks) {
          const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
          if (keep) {
            size += bytes.length;
            if (size > max) {
              keep = false;
              parts.length = 0;
            } else parts.push(bytes);
          }
          yield bytes;
        }
        ended = true;
      } catch (err) {
        lead.fail(err);
        throw err;
      } finally {
        if (ended && keep) lead.complete(lead.entryOf(Buffer.concat(parts, size), contentType, status));
        else lead.abandon();
      }
    };
    return reply.type(contentType).send(Readable.from(tee(this), { objectMode: false }));
  }
}

interface CachedEndpoint {
  id: string;
  path: string;
  ttlMs: number;
  ttlSeconds: number;
  /** The format is chosen by Accept when no ?format= is given: answers vary by it. */
  vary: boolean;
}

export interface EndpointCacheHooks {
  /**
   * Answers a hit early (cached reads whose params come from the path and query only, kept in this
   * process's memory): after the request hooks (records, network rules, authentication, rate
   * limits), before Fastify parses and validates a request whose URL and Accept passed before.
   */
  preParsing?: preParsingHookHandler;
  /** Lookup, single flight (cached reads). */
  preHandler?: preHandlerHookHandler;
  /** Hands a leader's failure to its waiters (cached reads). */
  onError?: onErrorHookHandler;
  /** The request's Lead when it runs the query of a cached read. */
  lead(req: FastifyRequest): Lead | undefined;
  /** Removes the entries of the endpoints this write invalidates (writes with `invalidates`). */
  afterWrite?(): Promise<void>;
}

/**
 * Whether a request's URL and Accept alone decide what validation and the param hooks make of it
 * (its format and param values): a GET whose params all come from the path and query string.
 */
function urlDecidesKey(ep: Endpoint): boolean {
  return ep.method === 'GET' && ep.params.every((p) => p.in === 'query' || p.in === 'path');
}

/** The longest a waiter waits for its leader: the leader's own waits (slot, connection, query) for every resource, plus a second. */
function waitBoundMs(settings: SettingsReader, ep: Endpoint): number {
  const cfg = settings();
  let seconds = 1;
  for (const rid of ep.resources) {
    const r = resourceSettingsOf(cfg, rid);
    seconds += r.request_slot_timeout + r.db_conn_timeout + Math.min(ep.timeout ?? Infinity, r.db_default_query_timeout);
  }
  return seconds * 1000;
}

/**
 * The hooks of `ep`, or undefined when it neither caches nor invalidates. `invalidates`: the cache
 * ids its `invalidates` names (src/cache/endpoint-cache.ts invalidationTargets).
 */
export function endpointCacheHooks(
  ep: Endpoint,
  cache: ResponseCache,
  settings: SettingsReader,
  invalidates: readonly string[] | undefined,
  appMemo: ParamsMemo,
): EndpointCacheHooks | undefined {
  if (ep.cache === undefined) {
    if (invalidates === undefined || invalidates.length === 0) return undefined;
    return { lead: () => undefined, afterWrite: () => cache.invalidate(invalidates) };
  }
  const id = cacheIdOf(ep);
  cache.register(id, ep.path);
  const spec: CachedEndpoint = {
    id,
    path: ep.path,
    ttlMs: ep.cache.ttl * 1000,
    ttlSeconds: Math.ceil(ep.cache.ttl),
    vary: ep.formats.length > 1,
  };
  const keys = endpointKeys(ep, id);
  // Only where an early hit (preParsing, or the express lane) can answer: entries in this process's
  // memory (not Redis), and the request's URL and Accept alone deciding its format and param values.
  const memo = !cache.shared && urlDecidesKey(ep) ? appMemo : undefined;
  const leads = new WeakMap<FastifyRequest, Lead>();
  const endpoint = ep.path;

  /** This request runs the query; later ones for `key` wait for it. */
  const lead = (req: FastifyRequest, reply: FastifyReply, key: string, lookup: Lookup, flight: Flight) => {
    const l = new Lead(cache, spec, key, lookup, flight);
    leads.set(req, l);
    // Ended without an answer to share (the client left before its handler ran or mid-stream): the waiters go their own way.
    if (reply.raw.destroyed) l.abandon();
    else reply.raw.once('close', () => l.abandon());
    cache.observer.miss(endpoint);
  };

  const hit = (req: FastifyRequest, reply: FastifyReply, entry: CacheEntry) => {
    cache.observer.hit(endpoint);
    // Answered without resources: the request's end has nothing to give back or cancel (ending an
    // unused RequestResources builds a ClientClosedError for waits that never began, about 6 µs).
    req.wt.resources = undefined;
    sendEntry(req, reply, entry, spec.vary);
  };

  /** Only an entry in memory with no query under way for its key; anything else goes the whole way. */
  const earlyEntry = (key: string): CacheEntry | undefined => (cache.flight(key) === undefined ? cache.memoryEntry(key) : undefined);

  // What the express lane needs of this endpoint (src/http/express-lane.ts).
  const route: ExpressRoute = {
    endpoint,
    resources: ep.resources,
    vary: spec.vary,
    hit: (key) => {
      const entry = earlyEntry(key);
      if (entry !== undefined) cache.observer.hit(endpoint);
      return entry;
    },
  };

  const preParsing: preParsingHookHandler = (req, reply, payload, done) => {
    const learnt = memo!.get(req.method, req.url, req.headers.accept);
    if (learnt === undefined) return done(null, payload);
    const key = learnt.anonymousKey !== undefined && req.wt.caller === undefined ? learnt.anonymousKey : keys.withParams(req, learnt.format, learnt.params);
    const entry = earlyEntry(key);
    if (entry === undefined) return done(null, payload);
    hit(req, reply, entry);
  };

  const preHandler: preHandlerHookHandler = (req, reply, done) => {
    let format: Format;
    try {
      format = negotiate(ep.formats, (req.query as Obj).format, req.headers.accept);
    } catch (err) {
      return done(err as Error);
    }
    const params = keys.paramsPart(req);
    const key = keys.withParams(req, format, params);
    memo?.set(req.method, req.url, req.headers.accept, {
      format,
      params,
      anonymousKey: keys.anonymous(format, params),
      route,
      config: req.routeOptions.config,
      recorded: req.wt.logged,
    });
    let rounds = 0;
    let answered = false;

    const wait = (flight: Flight) => {
      const timer = setTimeout(() => {
        // The leader takes longer than any of its own waits allow: run this one's query, uncached.
        if (answered) return;
        answered = true;
        done();
      }, waitBoundMs(settings, ep));
      flight.promise.then(
        (entry) => {
          clearTimeout(timer);
          if (answered) return;
          if (entry !== undefined) {
            answered = true;
            hit(req, reply, entry);
          } else if (++rounds < MAX_ROUNDS) attempt();
          else {
            answered = true;
            done();
          }
        },
        (err: unknown) => {
          clearTimeout(timer);
          if (answered) return;
          answered = true;
          done(err as Error);
        },
      );
    };

    const attempt = () => {
      const running = cache.flight(key);
      if (running !== undefined) return wait(running);
      const found = cache.lookup(id, key);
      if (!(found instanceof Promise)) {
        if (found.entry !== undefined) return hit(req, reply, found.entry);
        lead(req, reply, key, found, cache.startFlight(key));
        return done();
      }
      // Redis: the flight starts before the round trip, so requests arriving meanwhile wait for this one.
      const flight = cache.startFlight(key);
      void found.then((r) => {
        if (r.entry !== undefined) {
          cache.endFlight(key, flight);
          flight.resolve(r.entry);
          return hit(req, reply, r.entry);
        }
        lead(req, reply, key, r, flight);
        done();
      });
    };
    attempt();
  };

  const onError: onErrorHookHandler = (req, _reply, err, done) => {
    const l = leads.get(req);
    // The leader's own client left (its wait or statement was cancelled): nothing failed for the waiters.
    if (err instanceof ClientClosedError) l?.abandon();
    else l?.fail(err);
    done();
  };

  return {
    ...(memo !== undefined ? { preParsing } : {}),
    preHandler,
    onError,
    lead: (req) => leads.get(req),
    ...(invalidates !== undefined && invalidates.length > 0 ? { afterWrite: () => cache.invalidate(invalidates) } : {}),
  };
}
