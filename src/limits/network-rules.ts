/**
 * Network rules: allow and deny lists of client addresses and CIDR blocks, global (config `allow`,
 * `deny`, reloadable) and per endpoint (`allow`, `deny` in a declared endpoint or a code route's
 * config). Checked in an onRequest hook right after the lifecycle's, before authentication, a
 * body, a rate limit or a resource: a refused client gets 403 and an `access-denied` record.
 *
 * Every list narrows: a client must pass the global rules and the endpoint's. Deny wins over allow;
 * an empty allow list allows everyone. The address is the one the lifecycle read (`request.ip`:
 * the socket's peer, or with trust_proxy the client a trusted proxy names). An address that is no
 * IP address (a trusted proxy forwarding junk) is refused by any rule, deny lists included.
 */
import { isIP } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Settings, SettingsReader } from '../config/index.js';
import { AccessDeniedError } from '../errors.js';
import { getLogger } from '../log/index.js';
import { addressListProblem, inAddressList } from '../net/address-list.js';

const log = getLogger('network-rules.ts');

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Only these client addresses and CIDR blocks may call the route (besides the global `allow`). */
    allow?: readonly string[];
    /** These client addresses and CIDR blocks may not call the route (besides the global `deny`). */
    deny?: readonly string[];
  }
}

/** What is wrong with a route's `allow` / `deny`, or undefined. */
export function routeRulesProblem(config: { allow?: unknown; deny?: unknown } | undefined): string | undefined {
  for (const key of ['allow', 'deny'] as const) {
    const v = config?.[key];
    if (v === undefined) continue;
    const problem = addressListProblem(v, key);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/** The list that refuses `ip`, or undefined when the lists let it through. */
function refusedBy(ip: string | undefined, allow: readonly string[] | undefined, deny: readonly string[] | undefined): 'deny' | 'allow' | undefined {
  if (deny !== undefined && deny.length > 0 && (ip === undefined || isIP(ip) === 0 || inAddressList(deny, ip))) return 'deny';
  if (allow !== undefined && allow.length > 0 && (ip === undefined || !inAddressList(allow, ip))) return 'allow';
  return undefined;
}

/**
 * Whether the global rules of `cfg` and the route's own let `ip` through (the express lane answers
 * only such requests: src/http/express-lane.ts).
 */
export function networkRulesPass(ip: string | undefined, cfg: Pick<Settings, 'allow' | 'deny'>, route: { allow?: readonly string[]; deny?: readonly string[] }): boolean {
  return refusedBy(ip, cfg.allow, cfg.deny) === undefined && refusedBy(ip, route.allow, route.deny) === undefined;
}

function refuse(req: FastifyRequest, rule: 'deny' | 'allow', scope: 'global' | 'endpoint'): AccessDeniedError {
  const client = req.wt.client;
  const why = rule === 'deny' ? 'in a deny list' : 'not in an allow list';
  log.warning('access-denied', `${req.method} ${req.url} refused: client ${why}`, { client, rule, scope, cid: req.wt.cid });
  return new AccessDeniedError(`client ${client} may not call this endpoint`);
}

export function registerNetworkRules(app: FastifyInstance, settings: SettingsReader): void {
  // Reading a route's config builds an object per request: only done once some route has rules.
  let routeRules = false;
  app.addHook('onRoute', (route) => {
    const problem = routeRulesProblem(route.config);
    if (problem !== undefined) throw new Error(`route ${route.method} ${route.url}: config.${problem}`);
    if ((route.config?.allow?.length ?? 0) > 0 || (route.config?.deny?.length ?? 0) > 0) routeRules = true;
  });

  app.addHook('onRequest', (req, _reply, done) => {
    const cfg = settings();
    const ip = req.wt.client;
    const global = refusedBy(ip, cfg.allow, cfg.deny);
    if (global !== undefined) return done(refuse(req, global, 'global'));
    if (routeRules) {
      const config = req.routeOptions.config;
      const endpoint = refusedBy(ip, config.allow, config.deny);
      if (endpoint !== undefined) return done(refuse(req, endpoint, 'endpoint'));
    }
    done();
  });
}
