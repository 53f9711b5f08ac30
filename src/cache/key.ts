/**
 * The key of a cached answer: the endpoint (its cache id), the response format, the caller's roles
 * (sorted; `-` without a caller), the values of the identity params its SQL binds, and its params
 * as validated, coerced and defaulted, in declaration order. Everything the statements bind is in
 * it, and the roles besides, so callers who may see different rows never share an entry.
 */
import type { FastifyRequest } from 'fastify';
import { addIdentity, claimParams } from '../auth/sql-identity.js';
import type { Endpoint, ParamDecl } from '../endpoints/declaration.js';

type Obj = Record<string, unknown>;

/** Separates the id from the rest, so every key of an endpoint starts with `<id>\0`. */
export const SEP = '\u0000';

/**
 * The keys of one endpoint. `paramsPart` depends only on the request's params, so a request whose
 * URL and Accept repeat an earlier one's can reuse it (src/cache/params-memo.ts); `withParams` adds
 * the rest, which depends on the caller.
 */
export interface EndpointKeys {
  /** The params part of the key of a request whose params are validated and final. */
  paramsPart(req: FastifyRequest): string;
  /** The key of `req` with a params part computed before (for a request with the same params). */
  withParams(req: FastifyRequest, format: string, params: string): string;
  /**
   * The key of every request without a caller for `format` and `params`, when they all have the
   * same one (no identity param binds the address); undefined otherwise.
   */
  anonymous(format: string, params: string): string | undefined;
}

function valueOf(req: FastifyRequest, p: ParamDecl): unknown {
  const from = p.in === 'query' ? req.query : p.in === 'path' ? req.params : p.in === 'header' ? req.headers : req.body;
  return (from as Obj | undefined)?.[p.in === 'header' ? (p.header ?? p.name) : p.name] ?? null;
}

export function endpointKeys(ep: Endpoint, id: string): EndpointKeys {
  const names = ep.statements.flatMap((s) => s.names);
  const claims = claimParams(names);
  // The identity params the SQL binds (`_client` too: the answer may depend on the address).
  const identity = [...new Set(names.filter((n) => n === '_caller' || n === '_roles' || n === '_client' || n.startsWith('_claim_')))];
  const params = ep.params;
  const roleClaim = ep.pgRoleClaim !== undefined;
  const paramsPart = (req: FastifyRequest): string => {
    if (params.length === 1) return JSON.stringify(valueOf(req, params[0]));
    return params.length > 0 ? JSON.stringify(params.map((p) => valueOf(req, p))) : '';
  };
  const keyOf = (format: string, roles: string, identityPart: string, paramsText: string) => `${id}${SEP}${format}${SEP}${roles}${SEP}${identityPart}${SEP}${paramsText}`;
  const withParams = (req: FastifyRequest, format: string, paramsText: string): string => {
    const caller = req.wt.caller;
    const roles = caller === undefined ? '-' : caller.roles.length === 1 ? caller.roles[0] : [...caller.roles].sort().join(',');
    let identityPart = '';
    if (identity.length > 0) {
      const values: Obj = { _client: req.wt.client };
      addIdentity(values, caller, claims);
      identityPart = JSON.stringify(identity.map((n) => values[n] ?? null));
    }
    // A database role and request.jwt.claims: row-level security may read any claim.
    if (roleClaim) identityPart += JSON.stringify([caller?.id ?? null, caller?.claims ?? null]);
    return keyOf(format, roles, identityPart, paramsText);
  };
  const anonymousShared = identity.length === 0 && !roleClaim;
  const anonymous = (format: string, paramsText: string) => (anonymousShared ? keyOf(format, '-', '', paramsText) : undefined);
  return { paramsPart, withParams, anonymous };
}
