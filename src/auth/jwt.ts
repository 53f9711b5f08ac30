/**
 * JWT verification with jose: the signature with a key of the configured sources (the JWKS file's
 * public keys, its `oct` secrets for HS*, a JWKS URL cached and refreshed by jose), then exp, nbf
 * (with the configured clock skew), iss and aud. Only the configured algorithms are accepted, so
 * `alg: none` never is; each key serves only the algorithms of its own type (jose checks that too),
 * so a token signed HS256 with an RSA public key as the secret (algorithm confusion) finds no key.
 *
 * Verified tokens are kept (as PostgREST does), until their exp and at most jwt_cache_seconds, in a
 * bounded map: a client sending the same token again costs a map lookup, not a signature check. A
 * reload builds a new verifier, so a key removed from a source is refused from the next request.
 */
import type { createLocalJWKSet, createRemoteJWKSet, JWK, JWSHeaderParameters, JWTPayload } from 'jose';
import { jose } from '../on-first-use.js';
import type { Caller } from './caller.js';
import { ROLE_NAME, type AuthSettings, type JsonWebKey } from './settings.js';

export type TokenFailure = 'malformed' | 'invalid' | 'expired' | 'not-yet-valid' | 'unavailable';

/** Why a token was refused: `reason` for the client's answer, `detail` for the server's record only. */
export class TokenError extends Error {
  constructor(
    readonly reason: TokenFailure,
    readonly detail: string,
  ) {
    super(detail);
    this.name = 'TokenError';
  }
}

/** Longest token looked at; longer ones are refused unread. */
export const MAX_TOKEN_LENGTH = 8192;
/** Longest `sub` taken as a caller id (records and rate limits carry it). */
const MAX_SUBJECT_LENGTH = 255;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
/** jose fetches a JWKS URL again for an unknown kid at most this often. */
const JWKS_COOLDOWN_MS = 30_000;
const JWKS_FETCH_TIMEOUT_MS = 5_000;

interface Secret {
  kid?: string;
  alg?: string;
  key: Uint8Array;
}

/** The value at a dotted claim path, or undefined. */
export function claimAt(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  let v: unknown = claims;
  for (const part of path.split('.')) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/** Roles from a claim: a list of names, or one text of names separated by spaces (OAuth scopes). Others are left out. */
export function rolesFrom(value: unknown): string[] {
  const list = typeof value === 'string' ? value.split(' ') : Array.isArray(value) ? value : [];
  return [...new Set(list.filter((r): r is string => typeof r === 'string' && ROLE_NAME.test(r)))];
}

function toTokenError(err: unknown): TokenError {
  if (err instanceof TokenError) return err;
  const { errors } = jose();
  if (err instanceof errors.JWTExpired) return new TokenError('expired', 'exp is past');
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf' && err.reason === 'check_failed') return new TokenError('not-yet-valid', 'nbf is in the future');
    return new TokenError('invalid', `claim ${err.claim} ${err.reason === 'missing' ? 'missing' : 'refused'}`);
  }
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return new TokenError('malformed', err.message);
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) return new TokenError('invalid', 'algorithm not allowed');
  if (err instanceof errors.JWSSignatureVerificationFailed) return new TokenError('invalid', 'signature');
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) return new TokenError('invalid', 'no key matches');
  if (err instanceof errors.JOSEError) return new TokenError('invalid', err.code);
  return new TokenError('invalid', err instanceof Error ? err.name : 'error');
}

export class JwtVerifier {
  private readonly local?: ReturnType<typeof createLocalJWKSet>;
  private readonly remote?: ReturnType<typeof createRemoteJWKSet>;
  private readonly secrets: Secret[];
  private readonly cache = new Map<string, { caller: Caller; until: number }>();

  constructor(private readonly auth: AuthSettings) {
    const { createLocalJWKSet, createRemoteJWKSet } = jose();
    const publicKeys = auth.jwks.filter((k) => k.kty !== 'oct');
    if (publicKeys.length > 0) this.local = createLocalJWKSet({ keys: publicKeys as JWK[] });
    this.secrets = auth.jwks.filter((k) => k.kty === 'oct').map((k: JsonWebKey) => ({ kid: k.kid, alg: k.alg, key: Buffer.from(k.k as string, 'base64url') }));
    if (auth.jwt_jwks_url) {
      this.remote = createRemoteJWKSet(new URL(auth.jwt_jwks_url), {
        cacheMaxAge: auth.jwt_jwks_cache * 1000,
        cooldownDuration: JWKS_COOLDOWN_MS,
        timeoutDuration: JWKS_FETCH_TIMEOUT_MS,
      });
    }
  }

  /** The caller of a token verified before and still valid at `now`, or undefined. */
  cached(token: string, now = Date.now()): Caller | undefined {
    const hit = this.cache.get(token);
    if (hit === undefined) return undefined;
    if (now < hit.until) return hit.caller;
    this.cache.delete(token);
    return undefined;
  }

  /** The key for a token's header: an `oct` secret for HS*, else a public key of the file or the URL. */
  private readonly getKey = async (header: JWSHeaderParameters, token: Parameters<ReturnType<typeof createLocalJWKSet>>[1]) => {
    const { errors } = jose();
    const alg = header.alg ?? '';
    if (alg.startsWith('HS')) {
      const matches = this.secrets.filter((s) => (header.kid === undefined || s.kid === header.kid) && (s.alg === undefined || s.alg === alg));
      if (matches.length !== 1) throw new TokenError('invalid', matches.length === 0 ? 'no key matches' : 'several secrets match: give each a kid');
      return matches[0].key;
    }
    if (this.local) {
      try {
        return await this.local(header, token);
      } catch (err) {
        if (!this.remote || !(err instanceof errors.JWKSNoMatchingKey)) throw err;
      }
    }
    if (!this.remote) throw new errors.JWKSNoMatchingKey();
    try {
      return await this.remote(header, token);
    } catch (err) {
      // The set could not be fetched or read: the token may be fine, the server cannot tell now.
      if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys || err instanceof errors.JOSENotSupported) throw err;
      throw new TokenError('unavailable', `JWKS URL: ${err instanceof errors.JOSEError ? err.code : err instanceof Error ? err.message : 'error'}`);
    }
  };

  /** Verifies `token`; the caller it names, or a TokenError. */
  async verify(token: string): Promise<Caller> {
    if (token.length > MAX_TOKEN_LENGTH || !COMPACT_JWS.test(token)) throw new TokenError('malformed', 'not a compact JWS');
    const auth = this.auth;
    let payload: JWTPayload;
    try {
      ({ payload } = await jose().jwtVerify(token, this.getKey, {
        algorithms: [...auth.jwt_algorithms],
        issuer: [...auth.jwt_issuer],
        audience: [...auth.jwt_audience],
        clockTolerance: auth.jwt_clock_skew,
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (err) {
      throw toTokenError(err);
    }
    const sub = payload.sub;
    if (typeof sub !== 'string' || sub.length === 0 || sub.length > MAX_SUBJECT_LENGTH) throw new TokenError('invalid', 'sub is not a usable caller id');
    const claims = Object.freeze({ ...payload });
    const caller: Caller = Object.freeze({ id: sub, via: 'jwt', roles: Object.freeze(rolesFrom(claimAt(claims, auth.jwt_roles_claim))), claims });
    this.remember(token, caller, (payload.exp as number) * 1000 + auth.jwt_clock_skew * 1000);
    return caller;
  }

  private remember(token: string, caller: Caller, expiresAt: number): void {
    const max = this.auth.jwt_cache_size;
    if (max === 0 || this.auth.jwt_cache_seconds === 0) return;
    const until = Math.min(expiresAt, Date.now() + this.auth.jwt_cache_seconds * 1000);
    // Oldest first out: a Map iterates in insertion order.
    while (this.cache.size >= max) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(token, { caller, until });
  }
}
