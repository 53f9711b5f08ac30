/**
 * Turns a request's credential into its Caller. One Authenticator per auth settings object: a
 * reload builds new settings, so a new key table and a new JWT verifier (empty token cache, the
 * JWKS URL fetched again) serve from the next request on.
 *
 * Credentials: `Authorization: Bearer <token>` (a JWT when it has the form of one, else an API
 * key) or `X-API-Key: <key>`. Any other Authorization scheme (Basic, for /metrics) is not ours.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { KeyTable } from './api-keys.js';
import type { Caller } from './caller.js';
import { JwtVerifier, MAX_TOKEN_LENGTH, TokenError, type TokenFailure } from './jwt.js';
import { credentialSources, type ApiKeyEntry, type AuthSettings } from './settings.js';

export type Credential = { kind: 'api-key' | 'jwt'; value: string } | { kind: 'malformed' | 'ambiguous' };

/** The realm every WWW-Authenticate names. */
export const REALM = 'watchtower';

/**
 * A refused credential: `status` and `message` for the client (which kind of problem, never the
 * credential or why a signature failed), `reason` for the server's record.
 */
export class AuthFailure extends Error {
  constructor(
    readonly status: 401 | 503,
    message: string,
    /** RFC 6750 error code for WWW-Authenticate, when the credential itself was refused. */
    readonly bearerError: 'invalid_request' | 'invalid_token' | undefined,
    readonly reason: string,
  ) {
    super(message);
    this.name = 'AuthFailure';
  }

  /** The WWW-Authenticate value of a 401 with this failure. */
  get wwwAuthenticate(): string {
    return this.bearerError === undefined
      ? `Bearer realm="${REALM}"`
      : `Bearer realm="${REALM}", error="${this.bearerError}", error_description="${this.message}"`;
  }
}

export const MISSING = new AuthFailure(401, 'authentication required: send Authorization: Bearer <token> or X-API-Key: <key>', undefined, 'missing');

const TOKEN_FAILURES: Record<TokenFailure, (detail: string) => AuthFailure> = {
  malformed: (d) => new AuthFailure(401, 'the bearer token is malformed', 'invalid_request', `malformed token: ${d}`),
  invalid: (d) => new AuthFailure(401, 'the bearer token is not valid', 'invalid_token', `token refused: ${d}`),
  expired: (d) => new AuthFailure(401, 'the bearer token has expired', 'invalid_token', `token refused: ${d}`),
  'not-yet-valid': (d) => new AuthFailure(401, 'the bearer token is not valid yet', 'invalid_token', `token refused: ${d}`),
  unavailable: (d) => new AuthFailure(503, 'bearer tokens cannot be verified right now; retry later', undefined, `token not verified: ${d}`),
};

/** The credential a request carries, undefined for none. */
export function readCredential(headers: IncomingHttpHeaders): Credential | undefined {
  const authorization = headers.authorization;
  const apiKey = headers['x-api-key'];
  let bearer: string | undefined;
  if (authorization !== undefined && authorization.length > 7 && authorization.slice(0, 7).toLowerCase() === 'bearer ') bearer = authorization.slice(7).trim();
  else if (authorization !== undefined && authorization.trim().toLowerCase() === 'bearer') bearer = '';
  if (apiKey !== undefined && bearer !== undefined) return { kind: 'ambiguous' };
  if (apiKey !== undefined) return typeof apiKey === 'string' && apiKey.length > 0 && apiKey.length <= MAX_TOKEN_LENGTH ? { kind: 'api-key', value: apiKey.trim() } : { kind: 'malformed' };
  if (bearer === undefined) return undefined;
  if (bearer === '' || bearer.length > MAX_TOKEN_LENGTH) return { kind: 'malformed' };
  // A JWT is three dot-separated parts; an API key has no dot.
  return { kind: bearer.includes('.') ? 'jwt' : 'api-key', value: bearer };
}

function keyCaller(entry: ApiKeyEntry): Caller {
  return Object.freeze({
    id: entry.id,
    via: 'api-key',
    roles: entry.roles,
    claims: Object.freeze({ ...entry.claims, sub: entry.id, roles: entry.roles }),
  });
}

export class Authenticator {
  /** The configured credential sources; none: nobody can be authenticated. */
  readonly sources: readonly string[];
  private readonly keys: KeyTable;
  private readonly callers = new Map<ApiKeyEntry, Caller>();
  private readonly jwt?: JwtVerifier;

  constructor(auth: AuthSettings) {
    this.sources = credentialSources(auth);
    this.keys = new KeyTable(auth.api_keys);
    for (const entry of auth.api_keys) this.callers.set(entry, keyCaller(entry));
    if (auth.jwt_jwks_file || auth.jwt_jwks_url) this.jwt = new JwtVerifier(auth);
  }

  /**
   * The caller `credential` proves: synchronously for an API key or a token verified before, else
   * once the token is verified. Throws (or rejects with) an AuthFailure.
   */
  authenticate(credential: Credential, now = Date.now()): Caller | Promise<Caller> {
    switch (credential.kind) {
      case 'ambiguous':
        throw new AuthFailure(401, 'send one credential: Authorization: Bearer or X-API-Key, not both', 'invalid_request', 'two credentials');
      case 'malformed':
        throw new AuthFailure(401, 'the credential is malformed', 'invalid_request', 'malformed credential');
      case 'api-key': {
        const checked = this.keys.check(credential.value, now);
        if (checked.ok) return this.callers.get(checked.entry)!;
        if (checked.reason === 'expired') throw new AuthFailure(401, 'the API key has expired', 'invalid_token', `API key ${checked.entry!.id} expired`);
        if (checked.reason === 'malformed') throw new AuthFailure(401, 'the API key is malformed', 'invalid_request', 'malformed API key');
        throw new AuthFailure(401, 'the API key is not valid', 'invalid_token', 'unknown API key');
      }
      case 'jwt': {
        if (!this.jwt) throw new AuthFailure(401, 'the bearer token is not valid', 'invalid_token', 'token refused: no JWT key source configured');
        const hit = this.jwt.cached(credential.value, now);
        if (hit !== undefined) return hit;
        return this.jwt.verify(credential.value).catch((err: unknown) => {
          const e = err instanceof TokenError ? err : new TokenError('invalid', 'error');
          throw TOKEN_FAILURES[e.reason](e.detail);
        });
      }
    }
  }
}

const authenticators = new WeakMap<AuthSettings, Authenticator>();

/** The Authenticator of these settings, made once per settings object (so once per reload). */
export function authenticatorFor(auth: AuthSettings): Authenticator {
  let a = authenticators.get(auth);
  if (a === undefined) {
    a = new Authenticator(auth);
    authenticators.set(auth, a);
  }
  return a;
}
