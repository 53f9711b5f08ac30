/**
 * Who is calling: what authentication (an API key or a JWT) established for a request, on
 * `request.wt.caller`. Everything that acts per caller (authorization, rate limits, the records and
 * metrics per client, the identity handed to SQL) reads this one shape.
 */
import type { RequestState } from '../http/request-state.js';

export interface Caller {
  /** The API key's id or the JWT's `sub`: the `client_id` of records, metrics and rate limits. */
  id: string;
  /** How the credential was given. */
  via: 'api-key' | 'jwt';
  roles: readonly string[];
  /** The verified JWT's claims; for an API key, its entry's `claims` with `sub` (its id) and `roles`. */
  claims: Readonly<Record<string, unknown>>;
}

/** The id records and metrics name a request's caller by. */
export const ANONYMOUS = 'anonymous';

export function callerId(wt: Pick<RequestState, 'caller'>): string {
  return wt.caller?.id ?? ANONYMOUS;
}
