/**
 * Authentication and authorization of every request, in one onRequest hook that runs after the
 * lifecycle's and the network rules', before rate limits, a body or a resource.
 *
 * The rule is the matched route's (Fastify's router has already decoded the path, told case apart,
 * and resolved trailing slashes and double slashes), read from its config: `auth: { roles: [...] }`
 * or `public: true`, the same keys a declared endpoint has. So no spelling of a URL can reach a
 * route while skipping its rule: whatever reaches the route gets the route's rule.
 *
 * With any credential source configured, a route that declares nothing requires a valid
 * credential; `public: true` lets a request without one through (one that brings a credential is
 * still checked, so it reaches SQL as its caller). Without a credential source nobody can be
 * authenticated: routes are open as before, except those naming roles, which refuse everyone.
 * /health is always open; /metrics and /docs require the roles of auth.metrics_roles and
 * auth.docs_roles when those are set (the metrics allow-list and basic auth apply besides).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { SettingsReader } from '../config/index.js';
import { AppError, ForbiddenError, UnauthorizedError } from '../errors.js';
import { getLogger } from '../log/index.js';
import { failures } from '../log/summarise.js';
import { AuthFailure, authenticatorFor, MISSING, readCredential, REALM, type Authenticator, type Credential } from './authenticator.js';
import type { Caller } from './caller.js';
import { ROLE_NAME, type AuthSettings } from './settings.js';

const log = getLogger('auth.ts');

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route: a caller holding one of these roles. */
    auth?: { roles: readonly string[] };
    /** Callers without a credential may call the route too (write routes only when said so). */
    public?: boolean;
  }
}

/** A credential source could not be reached to check a credential (a JWKS URL): 503, retry later. */
export class AuthUnavailableError extends AppError {
  readonly statusCode = 503;
  readonly code = 'auth-unavailable';
}

type Rule =
  /** health: never asks. */
  | { kind: 'open' }
  | { kind: 'public' }
  | { kind: 'authenticated' }
  | { kind: 'roles'; roles: readonly string[] }
  /** /metrics and /docs: roles from the config, read at each request (reloadable). */
  | { kind: 'metrics' }
  | { kind: 'docs' };

/** What is wrong with a route's `auth` / `public`, or undefined (checked when the route is added). */
export function routeAuthProblem(config: { auth?: unknown; public?: unknown } | undefined): string | undefined {
  if (config?.public !== undefined && typeof config.public !== 'boolean') return 'public: must be true or false';
  const auth = config?.auth;
  if (auth === undefined) return undefined;
  if (typeof auth !== 'object' || auth === null || Array.isArray(auth)) return 'auth: must be a mapping { roles: [...] }';
  const extra = Object.keys(auth).filter((k) => k !== 'roles');
  if (extra.length > 0) return 'auth: has only roles';
  const roles = (auth as { roles?: unknown }).roles;
  if (!Array.isArray(roles) || roles.length === 0 || !roles.every((r) => typeof r === 'string' && ROLE_NAME.test(r))) {
    return `auth.roles: must be a list of at least one role name (${ROLE_NAME})`;
  }
  if (config?.public === true) return 'public: true and auth.roles contradict each other: a public route asks no role';
  return undefined;
}

function ruleOf(config: RouteConfig): Rule {
  const url = config.url ?? '';
  if (url === '/metrics') return { kind: 'metrics' };
  if (url === '/docs' || url.startsWith('/docs/')) return { kind: 'docs' };
  if (url.startsWith('/health/')) return { kind: 'open' };
  if (config.public === true) return { kind: 'public' };
  if (config.auth !== undefined) return { kind: 'roles', roles: [...config.auth.roles] };
  return { kind: 'authenticated' };
}

function holdsOne(caller: Caller, roles: readonly string[]): boolean {
  for (const r of caller.roles) if (roles.includes(r)) return true;
  return false;
}

/** Records a refusal, summarised per route and reason: a scan of bad credentials writes one record per 10 s. */
function record(req: FastifyRequest, reason: string, caller?: string): void {
  const route = `${req.method} ${req.routeOptions.config.url ?? ''}`;
  failures.write(`auth-refused ${route} ${reason}`, log.info, 'auth-refused', `${route}: ${reason}`, {
    client: req.wt.client,
    client_id: caller,
    cid: req.wt.cid,
  });
}

function refused(req: FastifyRequest, reply: FastifyReply, failure: AuthFailure): AppError {
  record(req, failure.reason);
  if (failure.status === 503) return new AuthUnavailableError(failure.message);
  reply.header('WWW-Authenticate', failure.wwwAuthenticate);
  return new UnauthorizedError(failure.message);
}

function forbidden(req: FastifyRequest, reply: FastifyReply, caller: Caller): AppError {
  record(req, 'roles do not allow the route', caller.id);
  reply.header('WWW-Authenticate', `Bearer realm="${REALM}", error="insufficient_scope"`);
  return new ForbiddenError(`the caller's roles do not allow ${req.method} ${req.routeOptions.config.url ?? ''}`);
}

/** Rules per route config object (one per route, kept by Fastify for the app's life). */
const rules = new WeakMap<object, Rule>();

function ruleFor(config: RouteConfig): Rule {
  let rule = rules.get(config);
  if (rule === undefined) {
    rule = ruleOf(config);
    rules.set(config, rule);
  }
  return rule;
}

type RouteConfig = { url?: string; auth?: { roles: readonly string[] }; public?: boolean };
const ADMIT = 'admit';
const REFUSE = 'refuse';
/** A credential to check, and the roles the route asks for (none: any valid caller). */
interface Check {
  authenticator: Authenticator;
  credential: Credential;
  roles: readonly string[] | undefined;
}

/**
 * The hook's decision before any credential is checked: let the request through with no caller,
 * refuse it for a missing credential, or check the credential it brings.
 */
function firstStep(config: RouteConfig, auth: AuthSettings | undefined, headers: IncomingHttpHeaders): typeof ADMIT | typeof REFUSE | Check {
  const rule = ruleFor(config);
  if (rule.kind === 'open') return ADMIT;
  const roles = rule.kind === 'roles' ? rule.roles : rule.kind === 'metrics' ? auth?.metrics_roles : rule.kind === 'docs' ? auth?.docs_roles : undefined;
  // /metrics and /docs without roles: as before, guarded by their own rules only.
  if ((rule.kind === 'metrics' || rule.kind === 'docs') && (roles === undefined || roles.length === 0)) return ADMIT;
  const authenticator = auth === undefined ? undefined : authenticatorFor(auth);
  if (authenticator === undefined || authenticator.sources.length === 0) {
    // Nobody can be authenticated: a route naming roles refuses everyone rather than open up.
    return roles !== undefined && roles.length > 0 ? REFUSE : ADMIT;
  }
  const credential = readCredential(headers);
  if (credential === undefined) return rule.kind === 'public' ? ADMIT : REFUSE;
  return { authenticator, credential, roles };
}

/**
 * Whether the hook lets a request with `headers` to the route of `config` through with no caller,
 * adding nothing to its answer (the express lane answers only such requests: src/http/express-lane.ts).
 */
export function admitsWithoutCaller(config: RouteConfig, auth: AuthSettings | undefined, headers: IncomingHttpHeaders): boolean {
  return firstStep(config, auth, headers) === ADMIT;
}

export function registerAuth(app: FastifyInstance, settings: SettingsReader): void {
  app.addHook('onRoute', (route) => {
    const problem = routeAuthProblem(route.config);
    if (problem !== undefined) throw new Error(`route ${String(route.method)} ${route.url}: config.${problem}`);
  });

  app.addHook('onRequest', (req, reply, done) => {
    // No route: the 404 says nothing a caller could misuse.
    if (req.is404) return done();
    const step = firstStep(req.routeOptions.config, settings().auth, req.headers);
    if (step === ADMIT) return done();
    if (step === REFUSE) return done(refused(req, reply, MISSING));
    const { authenticator, credential, roles } = step;
    const admit = (caller: Caller) => {
      // Known from here on, whatever follows: records, metrics and rate limits name the caller.
      req.wt.caller = caller;
      done(roles !== undefined && roles.length > 0 && !holdsOne(caller, roles) ? forbidden(req, reply, caller) : undefined);
    };
    const fail = (err: unknown) => done(err instanceof AuthFailure ? refused(req, reply, err) : (err as Error));
    let result: Caller | Promise<Caller>;
    try {
      result = authenticator.authenticate(credential);
    } catch (err) {
      return fail(err);
    }
    if (result instanceof Promise) result.then(admit, fail);
    else admit(result);
  });
}
