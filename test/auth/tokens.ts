/**
 * Keys and tokens for the auth tests, made with jose the way an identity provider would, plus the
 * hostile ones no provider makes (alg none, an HS256 token keyed with an RSA public key).
 */
import { createHmac, randomBytes } from 'node:crypto';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

export const ISSUER = 'https://idp.test/';
export const AUDIENCE = 'watchtower-test';

export interface SigningKey {
  kid: string;
  alg: string;
  /** What a JWKS publishes for it. */
  jwk: JWK;
  sign(claims: JWTPayload, header?: Record<string, unknown>): Promise<string>;
}

function signer(kid: string, alg: string, key: CryptoKey | Uint8Array) {
  return (claims: JWTPayload, header: Record<string, unknown> = {}) =>
    new SignJWT(claims).setProtectedHeader({ alg, kid, typ: 'JWT', ...header }).sign(key);
}

export async function asymmetricKey(kid: string, alg: 'RS256' | 'ES256' | 'EdDSA'): Promise<SigningKey & { publicPem: string }> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, jwk, sign: signer(kid, alg, privateKey), publicPem: await exportSPKI(publicKey) };
}

export function hmacKey(kid: string): SigningKey & { secret: Uint8Array } {
  const secret = randomBytes(32);
  return { kid, alg: 'HS256', jwk: { kty: 'oct', kid, alg: 'HS256', k: Buffer.from(secret).toString('base64url') }, secret, sign: signer(kid, 'HS256', secret) };
}

/** Claims a valid token carries: issuer, audience, subject, an hour of life. */
export function claims(sub: string, extra: JWTPayload = {}): JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  return { iss: ISSUER, aud: AUDIENCE, sub, iat: now, exp: now + 3600, ...extra };
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** An unsecured JWT: alg none and no signature. */
export function unsignedToken(payload: JWTPayload): string {
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`;
}

/** HS256 signed with `secret` by hand (jose would refuse to use a public key's text as an HMAC secret). */
export function hs256With(secret: string | Buffer, payload: JWTPayload, header: Record<string, unknown> = {}): string {
  const input = `${b64({ alg: 'HS256', typ: 'JWT', ...header })}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}
