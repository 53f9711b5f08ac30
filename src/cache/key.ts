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

export type KeyOf = (req: FastifyRequest, format: string) => string;

function valueOf(req: FastifyRequest, p: ParamDecl): unknown {
  const from = p.in === 'query' ? req.query : p.in === 'path' ? req.params : p.in === 'header' ? req.headers : req.body;
  return (from as Obj | undefined)?.[p.in === 'header' ? (p.header ?? p.name) : p.name] ?? null;
}

export function keyFunction(ep: Endpoint, id: string): KeyOf {
  const names = ep.statements.flatMap((s) => s.names);
  const claims = claimParams(names);
  // The identity params the SQL binds (`_client` too: the answer may depend on the address).
  const identity = [...new Set(names.filter((n) => n === '_caller' || n === '_roles' || n === '_client' || n.startsWith('_claim_')))];
  const params = ep.params;
  const roleClaim = ep.pgRoleClaim !== undefined;
  return (req, format) => {
    const caller = req.wt.caller;
    const roles = caller === undefined ? '-' : caller.roles.length === 1 ? caller.roles[0] : [...caller.roles].sort().join(',');
    let key = `${id}${SEP}${format}${SEP}${roles}${SEP}`;
    if (identity.length > 0) {
      const values: Obj = { _client: req.wt.client };
      addIdentity(values, caller, claims);
      key += JSON.stringify(identity.map((n) => values[n] ?? null));
    }
    // A database role and request.jwt.claims: row-level security may read any claim.
    if (roleClaim) key += JSON.stringify([caller?.id ?? null, caller?.claims ?? null]);
    key += SEP;
    if (params.length === 1) return key + JSON.stringify(valueOf(req, params[0]));
    if (params.length > 0) key += JSON.stringify(params.map((p) => valueOf(req, p)));
    return key;
  };
}
