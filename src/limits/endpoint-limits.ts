/**
 * A declared endpoint's network rules and rate limits (YAML `allow`, `deny`, `rate_limit`), checked
 * by the endpoint loader and handed to its route's config under the same names a code route uses.
 */
import type { FastifyContextConfig } from 'fastify';
import type { RateLimitRule } from './rate-limit-rules.js';
import { rateLimitProblem } from './rate-limit-rules.js';
import { routeRulesProblem } from './network-rules.js';

export interface EndpointLimits {
  allow?: string[];
  deny?: string[];
  rateLimit?: RateLimitRule | RateLimitRule[];
}

/** Problems of the endpoint's `allow`, `deny` and `rate_limit`, each a message starting with its key. */
export function endpointLimitsProblems(raw: { allow?: unknown; deny?: unknown; rate_limit?: unknown }): string[] {
  const problems: string[] = [];
  const rules = routeRulesProblem({ allow: raw.allow, deny: raw.deny });
  if (rules !== undefined) problems.push(rules);
  if (raw.rate_limit !== undefined) {
    const rate = rateLimitProblem(raw.rate_limit, 'rate_limit');
    if (rate !== undefined) problems.push(rate);
  }
  return problems;
}

/** The checked values, as the Endpoint keeps them. */
export function endpointLimitsOf(raw: { allow?: unknown; deny?: unknown; rate_limit?: unknown }): EndpointLimits {
  return {
    ...(raw.allow !== undefined ? { allow: [...(raw.allow as string[])] } : {}),
    ...(raw.deny !== undefined ? { deny: [...(raw.deny as string[])] } : {}),
    ...(raw.rate_limit !== undefined ? { rateLimit: raw.rate_limit as RateLimitRule | RateLimitRule[] } : {}),
  };
}

/** The route config keys of an endpoint's limits. */
export function limitsConfig(ep: EndpointLimits): Pick<FastifyContextConfig, 'allow' | 'deny' | 'rate_limit'> {
  return {
    ...(ep.allow ? { allow: ep.allow } : {}),
    ...(ep.deny ? { deny: ep.deny } : {}),
    ...(ep.rateLimit ? { rate_limit: ep.rateLimit } : {}),
  };
}
