/**
 * What the access rules add to a route's OpenAPI operation: 401 and 403 where credentials are
 * checked, 403 where address lists apply, 429 with the RateLimit headers where a rate limit counts
 * the route's requests, and the security requirement Swagger UI's "Authorize" button fills in.
 *
 * Read from the config in force when the document is first built (the swagger plugin keeps it):
 * a reload that adds a credential source or a rate limit shows in /docs after the next restart or
 * endpoint switch, while the gateway itself enforces it at once.
 */
import type { Settings } from '../config/schema.js';
import { authenticatorFor } from '../auth/authenticator.js';
import { isQuiet } from './lifecycle.js';
import { errorResponse } from './schemas.js';

type Json = Record<string, unknown>;

interface RouteAccess {
  url: string;
  config?: { auth?: { roles: readonly string[] }; public?: boolean; allow?: readonly string[]; deny?: readonly string[]; rate_limit?: unknown };
}

export const SECURITY_SCHEMES = {
  ApiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'An API key (see `watchtower keys create`)' },
  Bearer: { type: 'http', scheme: 'bearer', description: 'A JWT, or an API key' },
} as const;

const AUTH_REQUIRED = [{ ApiKey: [] }, { Bearer: [] }];

const WWW_AUTHENTICATE = {
  'WWW-Authenticate': { description: 'The Bearer challenge (RFC 6750), with error= when a credential was refused', required: true, schema: { type: 'string' } },
};

const RATE_LIMIT_HEADERS = {
  'RateLimit-Limit': { description: 'Requests allowed per window by the rule closest to its limit (the slots of a resource send none)', schema: { type: 'string', pattern: '^[0-9]+$' } },
  'RateLimit-Remaining': { description: 'Requests left in the window', schema: { type: 'string', pattern: '^[0-9]+$' } },
  'RateLimit-Reset': { description: 'Seconds until the window resets', schema: { type: 'string', pattern: '^[0-9]+$' } },
  'RateLimit-Policy': { description: 'The rules counting the request, as `requests;w=seconds`', schema: { type: 'string' } },
};

function unauthorized(): Json {
  return { ...errorResponse('Missing or invalid credentials', 'authentication required: send Authorization: Bearer <token> or X-API-Key: <key>'), headers: WWW_AUTHENTICATE };
}

/** Which checks apply to the route, as the auth hook decides them (src/auth/hook.ts). */
function credentialCheck(route: RouteAccess, settings: Settings): { checked: boolean; roles: readonly string[]; optional: boolean; canAuthenticate: boolean } {
  const auth = settings.auth;
  const hasSources = auth !== undefined && (authenticatorFor(auth)?.sources.length ?? 0) > 0;
  const none = { checked: false, roles: [], optional: false, canAuthenticate: hasSources };
  if (route.url.startsWith('/health/')) return none;
  const special = route.url === '/metrics' ? auth?.metrics_roles : route.url === '/docs' || route.url.startsWith('/docs/') ? auth?.docs_roles : undefined;
  if (route.url === '/metrics' || route.url === '/docs' || route.url.startsWith('/docs/')) {
    return special !== undefined && special.length > 0 ? { ...none, checked: true, roles: special } : none;
  }
  const roles = route.config?.auth?.roles ?? [];
  // Without a credential source only a route naming roles is guarded (it refuses everyone).
  if (!hasSources) return roles.length > 0 ? { ...none, checked: true, roles } : none;
  return { ...none, checked: true, roles, optional: route.config?.public === true };
}

/** Whether a rate limit counts the route's requests. */
function rateLimited(route: RouteAccess, settings: Settings): boolean {
  if (isQuiet(route.url)) return false;
  return settings.rate_limit.length > 0 || route.config?.rate_limit !== undefined;
}

/**
 * The operation's extra responses (merged over its own: a data route's 429 of the slots becomes
 * "slots or rate limit") and its security requirement, if any.
 */
export function accessDocs(route: RouteAccess, settings: Settings, own: Json): { responses: Json; security?: Json[] } {
  const responses: Json = {};
  const check = credentialCheck(route, settings);
  if (check.checked) {
    responses[401] = unauthorized();
    if (check.roles.length > 0) {
      responses[403] = { ...errorResponse(`The caller holds none of the roles ${check.roles.join(', ')}`, "the caller's roles do not allow GET /example"), headers: WWW_AUTHENTICATE };
    }
  }
  const lists = [settings.allow, settings.deny, route.config?.allow, route.config?.deny];
  if (lists.some((l) => l !== undefined && l.length > 0)) {
    const earlier = responses[403] as { description: string } | undefined;
    const description = earlier === undefined ? 'The client address is not allowed' : `${earlier.description}, or the client address is not allowed`;
    // One 403 whatever refused the request: the WWW-Authenticate of a role refusal is then optional.
    responses[403] = { ...errorResponse(description, 'client address not allowed'), ...(earlier !== undefined && { headers: { 'WWW-Authenticate': { ...WWW_AUTHENTICATE['WWW-Authenticate'], required: false } } }) };
  }
  if (rateLimited(route, settings)) {
    const slots = own[429] as { description?: string } | undefined;
    const description = slots?.description === undefined ? "The caller's rate limit is reached (see Retry-After)" : `${slots.description}, or the caller's rate limit is reached`;
    responses[429] = { ...errorResponse(description, 'rate limit reached: 10 request(s) per 1 s per caller; retry in 1 s'), headers: RATE_LIMIT_HEADERS };
  }
  // Nobody can be authenticated: no scheme to offer (a route naming roles refuses everyone).
  if (!check.checked || !check.canAuthenticate) return { responses };
  return { responses, security: check.optional ? [...AUTH_REQUIRED, {}] : AUTH_REQUIRED };
}
