/**
 * The caller's identity as values a declared statement binds (never text spliced into SQL):
 *
 * - `:_caller`  the API key's id or the JWT's `sub`; NULL without a caller
 * - `:_roles`   the caller's roles joined by commas (role names hold none); NULL without a caller
 * - `:_claim_<name>` a claim listed in auth.sql_claims: text, number or true/false as given, a list
 *               or mapping as JSON text; NULL when absent
 *
 * And, for an endpoint with `pg_role_claim`, the statement that makes its PostgreSQL transaction
 * run as the caller's database role with the caller's claims, as PostgREST does, so row-level
 * security policies apply: set_config('role', ...) is SET LOCAL ROLE with the role name bound as a
 * value (PostgreSQL checks it names a role the connecting user may become), and
 * request.jwt.claims holds the claims as JSON for current_setting() in policies.
 */
import type { Statement } from '../db/types.js';
import { ForbiddenError } from '../errors.js';
import type { Caller } from './caller.js';
import { claimAt } from './jwt.js';

export const IDENTITY_PARAMS = ['_caller', '_roles'] as const;
export const CLAIM_PARAM_PREFIX = '_claim_';
/** A database role name as a claim may give it: PostgreSQL's 63-byte names, of plain characters. */
const PG_ROLE = /^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/;

function claimValue(v: unknown): string | number | boolean | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  return JSON.stringify(v);
}

/** Adds the identity params to a statement's values: `claims` are the claim names the endpoint binds. */
export function addIdentity(values: Record<string, unknown>, caller: Caller | undefined, claims: readonly string[]): void {
  values._caller = caller?.id ?? null;
  values._roles = caller === undefined ? null : caller.roles.join(',');
  for (const name of claims) values[CLAIM_PARAM_PREFIX + name] = claimValue(caller?.claims[name]);
}

/** The claim names `names` (a statement's placeholders) bind as `_claim_<name>`. */
export function claimParams(names: Iterable<string>): string[] {
  const out = new Set<string>();
  for (const n of names) if (n.startsWith(CLAIM_PARAM_PREFIX)) out.add(n.slice(CLAIM_PARAM_PREFIX.length));
  return [...out];
}

/** The statement run first in the endpoint's transaction: the role of the claim at `claimPath`, and the claims. */
export function pgRoleSetup(caller: Caller | undefined, claimPath: string): Statement {
  const role = caller === undefined ? undefined : claimAt(caller.claims, claimPath);
  if (typeof role !== 'string' || !PG_ROLE.test(role)) {
    throw new ForbiddenError(`the caller's credential names no database role (claim ${claimPath}) for this endpoint`);
  }
  return {
    sql: "SELECT set_config('role', ?, true), set_config('request.jwt.claims', ?, true)",
    params: [role, JSON.stringify(caller!.claims)],
  };
}
