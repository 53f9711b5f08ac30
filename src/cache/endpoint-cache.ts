/**
 * A declared endpoint's response-cache keys, checked by the endpoint loader (src/endpoints/load.ts):
 *
 * - `cache: { ttl: <seconds> }` on a GET endpoint whose result is `rows`, `one` or `stream`;
 * - `invalidates: [<path> | "GET <path>", ...]` on a write (any other method): after its statements
 *   succeed, the entries of those cached GET endpoints are removed.
 *
 * An endpoint whose SQL binds `:_cid` or `:_now` cannot be cached: they differ on every request.
 * Identity params (`:_caller`, `:_roles`, `:_claim_<name>`, `:_client`) are allowed; their bound values
 * become part of the key (src/cache/key.ts), so no two callers who may see different rows share an entry.
 */
import { createHash } from 'node:crypto';
import type { Endpoint, Method, ResultKind } from '../endpoints/declaration.js';

type Obj = Record<string, unknown>;

export interface CacheDecl {
  /** Seconds an entry is served. */
  ttl: number;
}

/** Longest ttl: a year (Redis takes the expiry in milliseconds as a 64-bit integer; this keeps it readable). */
const MAX_TTL = 31_536_000;
/** Values that change on every request: an entry keyed by them would never be hit. */
const PER_REQUEST = ['_cid', '_now'];

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Problems of `cache` and `invalidates`, each a message starting with its key. `names`: every placeholder of the statements. */
export function endpointCacheProblems(raw: { cache?: unknown; invalidates?: unknown }, method: Method, result: ResultKind, names: readonly string[]): string[] {
  const problems: string[] = [];
  if (raw.cache !== undefined) {
    const c = raw.cache;
    if (!isObj(c) || Object.keys(c).some((k) => k !== 'ttl')) problems.push('cache: must be a mapping { ttl: <seconds> }');
    else if (typeof c.ttl !== 'number' || !Number.isFinite(c.ttl) || c.ttl < 0.001 || c.ttl > MAX_TTL) {
      problems.push(`cache.ttl: must be a number of seconds from 0.001 to ${MAX_TTL}`);
    }
    if (method !== 'GET') problems.push(`cache: only a GET endpoint is cached, and a ${method} endpoint writes (its invalidates: clears the entries it changes)`);
    else if (result !== 'rows' && result !== 'one' && result !== 'stream') problems.push(`cache: result ${result} writes and is never cached`);
    const perRequest = PER_REQUEST.filter((n) => names.includes(n));
    if (perRequest.length > 0) problems.push(`cache: the SQL binds ${perRequest.map((n) => `:${n}`).join(' and ')}, which differ on every request, so an entry could never be served again`);
  }
  if (raw.invalidates !== undefined) {
    const list = raw.invalidates;
    if (!Array.isArray(list) || list.length === 0 || !list.every((s) => typeof s === 'string' && s.trim() !== '')) {
      problems.push('invalidates: must be a list of the paths of cached GET endpoints (/items or "GET /items")');
    } else if (method === 'GET') problems.push('invalidates: a GET endpoint writes nothing (list it in the invalidates of the endpoints that write)');
    else if (result === 'stream') problems.push('invalidates: a stream answers before its statement ends (use result rows, one, exec or transaction)');
  }
  return problems;
}

/** `invalidates` as written, each normalised to "GET <path>". */
function targetsOf(list: readonly string[]): string[] {
  return list.map((s) => {
    const t = s.trim();
    return /^GET\s+/i.test(t) ? `GET ${t.replace(/^GET\s+/i, '')}` : `GET ${t}`;
  });
}

/** The checked values, as the Endpoint keeps them. */
export function endpointCacheOf(raw: { cache?: unknown; invalidates?: unknown }): { cache?: CacheDecl; invalidates?: string[] } {
  return {
    ...(raw.cache !== undefined ? { cache: { ttl: (raw.cache as CacheDecl).ttl } } : {}),
    ...(raw.invalidates !== undefined ? { invalidates: targetsOf(raw.invalidates as string[]) } : {}),
  };
}

/** Two paths differing only in parameter names are one route: compared with the names taken out. */
const routeOf = (methodAndPath: string) => methodAndPath.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, ':');

/**
 * Problems of the `invalidates` of every endpoint against the whole set (files included): each
 * target must be a GET endpoint that declares `cache`. Each message names the file and endpoint.
 */
export function invalidationProblems(endpoints: readonly Endpoint[]): string[] {
  const cached = new Map(endpoints.filter((ep) => ep.method === 'GET').map((ep) => [routeOf(`GET ${ep.path}`), ep]));
  const problems: string[] = [];
  for (const ep of endpoints) {
    for (const target of ep.invalidates ?? []) {
      const found = cached.get(routeOf(target));
      if (found === undefined) problems.push(`${ep.file}: ${ep.method} ${ep.path}: invalidates: ${target} is not a declared endpoint`);
      else if (found.cache === undefined) problems.push(`${ep.file}: ${ep.method} ${ep.path}: invalidates: ${target} has no cache key, so nothing of it is cached`);
    }
  }
  return problems;
}

/**
 * The id of an endpoint's entries: a hash of everything that shapes its answers (method, path, SQL,
 * params, result, formats, row cap, database role). A changed declaration (an endpoint switch, or
 * replicas of two versions sharing Redis) therefore never serves the entries of the old one.
 */
export function cacheIdOf(ep: Endpoint): string {
  const shape = [ep.method, ep.path, ep.statements, ep.params, ep.result, ep.formats, ep.maxRows ?? null, ep.pgRoleClaim ?? null, ep.status];
  return createHash('sha256').update(JSON.stringify(shape)).digest('hex').slice(0, 16);
}

/** The ids of the cached endpoints each write endpoint's `invalidates` names (by "METHOD path" of the writer). */
export function invalidationTargets(endpoints: readonly Endpoint[]): Map<string, string[]> {
  const ids = new Map(endpoints.filter((ep) => ep.cache !== undefined).map((ep) => [routeOf(`GET ${ep.path}`), cacheIdOf(ep)]));
  const out = new Map<string, string[]>();
  for (const ep of endpoints) {
    if (ep.invalidates === undefined) continue;
    out.set(`${ep.method} ${ep.path}`, [...new Set(ep.invalidates.map((t) => ids.get(routeOf(t))).filter((id): id is string => id !== undefined))]);
  }
  return out;
}
