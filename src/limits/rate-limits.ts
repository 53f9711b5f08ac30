/**
 * Per-client rate limits: the global rules (config `rate_limit`, reloadable) count a client's
 * requests to every route but the quiet ones (/metrics, /docs, /health), a route's own
 * (`rate_limit` in a declared endpoint or a code route's config) its requests to that route.
 * Over a limit the request is answered 429 (RateLimitedError) with Retry-After; every counted
 * request gets the RateLimit-Limit, -Remaining, -Reset and -Policy headers (IETF
 * draft-ietf-httpapi-ratelimit-headers-07) of the rule closest to its limit.
 *
 * The check is a route-level onRequest hook: route hooks run after every app-level onRequest hook,
 * so after authentication has set `request.wt.caller` whatever order plugins were registered in,
 * and before the body is read or a resource slot is taken (acquire's preHandler). A refused request
 * never holds a slot, and the slots' own 429 (overload) stays a separate matter.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import type { Settings, SettingsReader } from '../config/index.js';
import { RateLimitedError } from '../errors.js';
import { isQuiet } from '../http/lifecycle.js';
import { effectiveRules, rateLimitProblem, type EffectiveRule, type RateLimitRule } from './rate-limit-rules.js';
import type { Outcome, RateLimitStore, RuleLimiter } from './rate-limit-store.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** This route's own rate limits: one rule or a list (see ./rate-limit-rules.ts). */
    rate_limit?: RateLimitRule | readonly RateLimitRule[];
  }
}

interface Bound {
  rule: EffectiveRule;
  limiter: RuleLimiter;
}

/** The keys `rule` counts this request under: none when the rule does not apply to its caller. */
function keysOf(rule: EffectiveRule, req: FastifyRequest): string[] {
  const caller = req.wt.caller;
  const roles = rule.roles;
  if (roles !== undefined && !caller?.roles.some((r) => roles.includes(r))) return [];
  switch (rule.by) {
    case 'address':
      return [`a:${req.wt.client}`];
    case 'caller':
      // Anonymous clients by address: one shared budget would let one of them lock out the rest.
      return [caller === undefined ? `a:${req.wt.client}` : `c:${caller.id}`];
    case 'role':
      return [...new Set(caller?.roles ?? [])].filter((r) => roles === undefined || roles.includes(r)).map((r) => `r:${r}`);
  }
}

function policyOf(rule: EffectiveRule): string {
  const main = `${rule.requests};w=${rule.interval}`;
  return rule.burst > 0 ? `${main}, ${rule.burst};w=${rule.burstInterval};comment="burst"` : main;
}

function describe(rule: EffectiveRule): string {
  const per = rule.by === 'address' ? 'client address' : rule.by;
  return `${rule.requests} request(s) per ${rule.interval} s per ${per}${rule.burst > 0 ? ` (burst ${rule.burst} per ${rule.burstInterval} s)` : ''}`;
}

/** Headers of the rule closest to its limit, and 429 when any refused. */
function answer(reply: FastifyReply, rules: EffectiveRule[], outcomes: Outcome[]): RateLimitedError | undefined {
  let shown = 0;
  for (let i = 1; i < outcomes.length; i++) {
    const a = outcomes[i];
    const b = outcomes[shown];
    if (a.remaining < b.remaining || (a.remaining === b.remaining && a.msBeforeNext > b.msBeforeNext)) shown = i;
  }
  let refused: number | undefined;
  for (let i = 0; i < outcomes.length; i++) {
    if (!outcomes[i].allowed && (refused === undefined || outcomes[i].msBeforeNext > outcomes[refused].msBeforeNext)) refused = i;
  }
  if (refused !== undefined) shown = refused;
  const seconds = Math.max(1, Math.ceil(outcomes[shown].msBeforeNext / 1000));
  reply.header('RateLimit-Limit', String(rules[shown].requests));
  reply.header('RateLimit-Remaining', String(refused === undefined ? outcomes[shown].remaining : 0));
  reply.header('RateLimit-Reset', String(seconds));
  reply.header('RateLimit-Policy', [...new Set(rules.map(policyOf))].join(', '));
  if (refused === undefined) return undefined;
  return new RateLimitedError(`rate limit reached: ${describe(rules[refused])}; retry in ${seconds} s`, { retryAfterSeconds: seconds });
}

/**
 * Whether a rule could count a request to the route of `config`: a global rule, or one of the
 * route's own (the express lane answers no such request: src/http/express-lane.ts).
 */
export function rateLimitsMayApply(cfg: Pick<Settings, 'rate_limit'>, config: { rate_limit?: RateLimitRule | readonly RateLimitRule[] }): boolean {
  const own = config.rate_limit;
  return cfg.rate_limit.length > 0 || (own !== undefined && (!Array.isArray(own) || own.length > 0));
}

export function registerRateLimits(app: FastifyInstance, settings: SettingsReader, store: RateLimitStore): void {
  // The global rules with their limiters, per config list (a reload brings a new list).
  const globalCache = new WeakMap<readonly RateLimitRule[], Bound[]>();
  const globalRules = (): Bound[] => {
    const list = settings().rate_limit;
    let bound = globalCache.get(list);
    if (bound === undefined) {
      bound = effectiveRules(list).map((rule) => ({ rule, limiter: store.limiter(rule, 'global') }));
      globalCache.set(list, bound);
    }
    return bound;
  };

  const hookFor = (own: Bound[]): onRequestHookHandler => {
    return (req, reply, done) => {
      const rules: EffectiveRule[] = [];
      const counts: Promise<Outcome>[] = [];
      for (const list of [globalRules(), own]) {
        for (const { rule, limiter } of list) {
          for (const key of keysOf(rule, req)) {
            rules.push(rule);
            counts.push(limiter.consume(key));
          }
        }
      }
      if (counts.length === 0) return done();
      Promise.all(counts).then((outcomes) => done(answer(reply, rules, outcomes)), done);
    };
  };

  app.addHook('onRoute', (route) => {
    const raw = route.config?.rate_limit;
    if (raw !== undefined) {
      const problem = rateLimitProblem(raw, 'rate_limit');
      if (problem !== undefined) throw new Error(`route ${String(route.method)} ${route.url}: config.${problem}`);
    }
    if (isQuiet(route.url)) return;
    // HEAD answers what GET does: one budget for both, so alternating them gains nothing.
    const methods = (Array.isArray(route.method) ? route.method : [route.method]).map((m) => (m === 'HEAD' ? 'GET' : m));
    const scope = `${[...new Set(methods)].sort().join(',')} ${route.url}`;
    const own = effectiveRules(raw).map((rule) => ({ rule, limiter: store.limiter(rule, scope) }));
    const existing = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest];
    route.onRequest = [...existing, hookFor(own)];
  });
}
