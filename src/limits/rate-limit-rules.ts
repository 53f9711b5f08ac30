/**
 * Rate-limit rules, as the config's `rate_limit` list and an endpoint's `rate_limit` (one rule or a
 * list) state them, checked where they are read so a mistake names its key and stops start-up or a
 * reload instead of limiting nothing.
 *
 *   by:             address | caller | role   (default address)
 *   requests:       requests allowed per interval, per key
 *   interval:       seconds (whole)
 *   burst:          extra requests allowed once `requests` are spent (default 0) ...
 *   burst_interval: ... at most `burst` of them per this many seconds (default 10 x interval)
 *   roles:          only callers holding one of these roles are counted by this rule
 *
 * Keys: `address` counts per client address; `caller` per API key id or JWT subject (a request
 * without a caller per address, so anonymous clients do not share one budget); `role` per role,
 * shared by every caller holding it (a request counts against each of its caller's roles that the
 * rule names, or all of them without `roles`; a request without roles is not counted).
 */

export const RATE_LIMIT_BY = ['address', 'caller', 'role'] as const;
export type RateLimitBy = (typeof RATE_LIMIT_BY)[number];

export interface RateLimitRule {
  by?: RateLimitBy;
  requests: number;
  interval: number;
  burst?: number;
  burst_interval?: number;
  roles?: readonly string[];
}

/** A rule with its defaults applied. */
export interface EffectiveRule {
  by: RateLimitBy;
  requests: number;
  interval: number;
  burst: number;
  burstInterval: number;
  roles?: readonly string[];
}

const RULE_KEYS = new Set(['by', 'requests', 'interval', 'burst', 'burst_interval', 'roles']);
/** A week: longer windows are no rate limit but a quota, and would hold keys that long. */
const MAX_SECONDS = 7 * 24 * 3600;
const MAX_REQUESTS = 1_000_000_000;
/** Role names as records may show them; nothing else could match a caller's role anyway. */
const ROLE = /^[A-Za-z0-9_.:-]{1,64}$/;

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function wholeIn(v: unknown, min: number, max: number): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

/** What is wrong with one rule, or undefined. `name` is where it sits (`rate_limit[0]`). */
function ruleProblem(v: unknown, name: string): string | undefined {
  if (!isObj(v)) return `${name} must be a mapping with requests and interval`;
  for (const key of Object.keys(v)) if (!RULE_KEYS.has(key)) return `${name} has an unknown key (allowed: ${[...RULE_KEYS].join(', ')})`;
  if (v.by !== undefined && !RATE_LIMIT_BY.includes(v.by as RateLimitBy)) return `${name}.by must be one of ${RATE_LIMIT_BY.join(', ')}`;
  if (!wholeIn(v.requests, 1, MAX_REQUESTS)) return `${name}.requests must be a whole number >= 1`;
  if (!wholeIn(v.interval, 1, MAX_SECONDS)) return `${name}.interval must be a whole number of seconds from 1 to ${MAX_SECONDS}`;
  if (v.burst !== undefined && !wholeIn(v.burst, 0, MAX_REQUESTS)) return `${name}.burst must be a whole number >= 0`;
  if (v.burst_interval !== undefined) {
    if (!wholeIn(v.burst_interval, 1, MAX_SECONDS)) return `${name}.burst_interval must be a whole number of seconds from 1 to ${MAX_SECONDS}`;
    if ((v.burst_interval as number) < (v.interval as number)) return `${name}.burst_interval must not be shorter than its interval`;
  }
  if (v.roles !== undefined) {
    if (!Array.isArray(v.roles) || v.roles.length === 0) return `${name}.roles must be a list of role names`;
    const bad = v.roles.findIndex((r) => typeof r !== 'string' || !ROLE.test(r));
    if (bad >= 0) return `${name}.roles[${bad}] is not a role name`;
  }
  return undefined;
}

/** What is wrong with `v` as the rules of key `name` (one rule or a list of them), or undefined. */
export function rateLimitProblem(v: unknown, name: string): string | undefined {
  if (!Array.isArray(v)) return ruleProblem(v, name);
  for (let i = 0; i < v.length; i++) {
    const problem = ruleProblem(v[i], `${name}[${i}]`);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/** The convict format of the global `rate_limit`: a list of rules. */
export function checkRateLimitList(v: unknown): void {
  const problem = Array.isArray(v) ? rateLimitProblem(v, 'rate_limit') : 'rate_limit must be a list of rules (by, requests, interval, burst, burst_interval, roles)';
  if (problem !== undefined) throw new Error(problem);
}

/** Rules already checked, with their defaults. */
export function effectiveRules(v: RateLimitRule | readonly RateLimitRule[] | undefined): EffectiveRule[] {
  if (v === undefined) return [];
  const list: readonly RateLimitRule[] = Array.isArray(v) ? v : [v as RateLimitRule];
  return list.map((r) => ({
    by: r.by ?? 'address',
    requests: r.requests,
    interval: r.interval,
    burst: r.burst ?? 0,
    burstInterval: r.burst_interval ?? Math.min(MAX_SECONDS, 10 * r.interval),
    ...(r.roles ? { roles: r.roles } : {}),
  }));
}
