/** A declared endpoint as the loader leaves it: checked, with its SQL compiled for its resources. */
import type { DbType } from '../config/schema.js';
import type { RateLimitRule } from '../limits/rate-limit-rules.js';
import type { CacheDecl } from '../cache/endpoint-cache.js';

export const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
export const RESULTS = ['rows', 'one', 'stream', 'exec', 'transaction'] as const;
export const FORMATS = ['json', 'ndjson', 'csv', 'psv'] as const;
export const LOCATIONS = ['query', 'path', 'body', 'header'] as const;
/**
 * Values the gateway binds itself; a client cannot set them. `_caller` and `_roles` are the caller's
 * (src/auth/sql-identity.ts), and `_claim_<name>` binds a claim listed in auth.sql_claims.
 */
export const MAGIC_PARAMS = ['_cid', '_client', '_now', '_caller', '_roles'] as const;
/** Paths of the gateway's own routes, which no endpoint may take or shadow. */
export const RESERVED_PATHS = ['/metrics', '/docs', '/health'] as const;

export type Method = (typeof METHODS)[number];
export type ResultKind = (typeof RESULTS)[number];
export type Format = (typeof FORMATS)[number];
export type Location = (typeof LOCATIONS)[number];

export interface ParamDecl {
  name: string;
  in: Location;
  /** The header a header param is read from (lower case). */
  header?: string;
  required: boolean;
  /** The JSON schema of the value (type, bounds, pattern, enum, default, description...). */
  schema: Record<string, unknown>;
  /** Another param this one may not be below (`to` not before `from`): 400 naming both. */
  notBefore?: string;
}

export interface CompiledStatement {
  resource: string;
  dbType: DbType;
  /** SQL with `?` placeholders. */
  sql: string;
  /** Names bound to the `?` in order. */
  names: string[];
  /** A body array param: the statement runs once per item, item fields binding by name. */
  each?: string;
}

export interface Endpoint {
  file: string;
  method: Method;
  path: string;
  summary?: string;
  description?: string;
  tags: string[];
  resources: string[];
  params: ParamDecl[];
  statements: CompiledStatement[];
  result: ResultKind;
  formats: Format[];
  maxRows?: number;
  timeout?: number;
  /** exec and transaction: runs after a serialization failure or deadlock (else the resource's tx_retries). */
  txRetries?: number;
  conflict: number;
  status: number;
  /** The key of the count in an exec or transaction answer. */
  countAs: string;
  /** JSON schemas of the result's columns, for the OpenAPI document (rows are not checked against them). */
  columns?: Record<string, Record<string, unknown>>;
  /** Client addresses and CIDR blocks allowed / refused (src/limits/network-rules.ts), besides the global lists. */
  allow?: string[];
  deny?: string[];
  /** This endpoint's own rate limits (src/limits/rate-limit-rules.ts). */
  rateLimit?: RateLimitRule | RateLimitRule[];
  /** Who may call it (src/auth/hook.ts): callers holding one of these roles. */
  auth?: { roles: string[] };
  /** Callers without a credential may call it too. */
  public?: boolean;
  /** PostgreSQL: run the statements in a transaction as the role this claim names, with request.jwt.claims set. */
  pgRoleClaim?: string;
  /** GET reads: answers kept for `ttl` seconds (src/cache/). */
  cache?: CacheDecl;
  /** Writes: the cached GET endpoints ("GET <path>") whose entries a success removes. */
  invalidates?: string[];
}
