/**
 * Metrics per caller with bounded cardinality. Callers are named by the `client_id` label only when
 * listed in the config key `client_metrics` (reloadable); every other authenticated caller counts as
 * `other` and a request without one as `anonymous`, so a flood of keys or JWT subjects cannot grow
 * the series (records carry every caller's own id; metrics only the chosen ones).
 *
 * Refusals are counted by the code of the error a request was answered with (src/errors.ts), not by
 * its status: a 429 of a full resource queue (`overload`) is no rate limit.
 */
import { ANONYMOUS } from '../auth/caller.js';
import type { StatusClass } from './bind.js';
import type { Metrics } from './catalogue.js';

/** The client_id of an authenticated caller not listed in client_metrics. */
export const OTHER_CLIENTS = 'other';

const RESERVED = new Set([ANONYMOUS, OTHER_CLIENTS]);

/** The reason label of wt_auth_failures_total, by error code (UnauthorizedError, ForbiddenError). */
const AUTH_FAILURE_REASONS: ReadonlyMap<string, 'unauthenticated' | 'forbidden'> = new Map([
  ['unauthenticated', 'unauthenticated'],
  ['forbidden', 'forbidden'],
]);
/** RateLimitedError's code. */
const RATE_LIMITED_CODE = 'rate-limited';

/** Convict format of `client_metrics`: names the first bad entry by index. */
export function checkClientList(v: unknown): void {
  if (!Array.isArray(v)) throw new Error('must be a list of caller ids (API key ids or JWT subjects)');
  const seen = new Set<string>();
  v.forEach((entry, i) => {
    if (typeof entry !== 'string' || entry.length === 0) throw new Error(`client_metrics[${i}] must be a non-empty string (an API key id or a JWT subject)`);
    if (RESERVED.has(entry)) throw new Error(`client_metrics[${i}] is reserved: "${ANONYMOUS}" and "${OTHER_CLIENTS}" are always counted`);
    if (seen.has(entry)) throw new Error(`client_metrics[${i}] is listed twice`);
    seen.add(entry);
  });
}

/** The series one client_id label updates, bound once. */
function clientSeries(m: Metrics, client_id: string) {
  const byClass = {} as Record<StatusClass, ReturnType<Metrics['clientRequestsTotal']['bind']>>;
  for (const status_code of ['2xx', '4xx', '5xx'] as const) byClass[status_code] = m.clientRequestsTotal.bind({ client_id, status_code });
  return {
    requests: byClass,
    duration: m.clientRequestDuration.bind({ client_id }),
    unauthenticated: m.authFailuresTotal.bind({ client_id, reason: 'unauthenticated' }),
    forbidden: m.authFailuresTotal.bind({ client_id, reason: 'forbidden' }),
    rateLimited: m.rateLimitedTotal.bind({ client_id }),
  };
}
type ClientSeries = ReturnType<typeof clientSeries>;

/** Per Metrics: the list last seen (a reload brings a new array) and the bound series per label. */
interface Clients {
  listed?: readonly string[];
  names: ReadonlySet<string>;
  series: Map<string, ClientSeries>;
}
const perMetrics = new WeakMap<Metrics, Clients>();

function seriesOf(c: Clients, m: Metrics, label: string): ClientSeries {
  let s = c.series.get(label);
  if (s === undefined) c.series.set(label, (s = clientSeries(m, label)));
  return s;
}

/**
 * The series of a caller under the current list. A list not seen before (start, reload) creates
 * the series of each listed caller at zero, so rate() and alerts see them before their first request.
 */
function seriesFor(m: Metrics, listed: readonly string[], caller: string | undefined): ClientSeries {
  let c = perMetrics.get(m);
  if (c === undefined) perMetrics.set(m, (c = { names: new Set(), series: new Map() }));
  if (c.listed !== listed) {
    c.listed = listed;
    c.names = new Set(listed);
    for (const label of [ANONYMOUS, OTHER_CLIENTS, ...listed]) seriesOf(c, m, label);
  }
  return seriesOf(c, m, clientLabel(c.names, caller));
}

/** The client_id label of a caller id (undefined: no caller). */
export function clientLabel(listed: ReadonlySet<string>, caller: string | undefined): string {
  if (caller === undefined) return ANONYMOUS;
  return listed.has(caller) ? caller : OTHER_CLIENTS;
}

/** Creates the series of `anonymous`, `other` and every listed caller at zero. */
export function initClientChildren(metrics: Metrics, listed: readonly string[]): void {
  seriesFor(metrics, listed, undefined);
}

/** Records one finished request of a caller (not quiet paths, as wt_requests_total). */
export function recordClientRequest(metrics: Metrics, listed: readonly string[], caller: string | undefined, status: StatusClass, seconds: number): void {
  const s = seriesFor(metrics, listed, caller);
  s.requests[status].inc();
  s.duration.observe(seconds);
}

/** Counts a request answered with an error, if its code is a refusal of the caller. */
export function recordRefusal(metrics: Metrics, listed: readonly string[], code: string, caller: string | undefined): void {
  const reason = AUTH_FAILURE_REASONS.get(code);
  if (reason !== undefined) seriesFor(metrics, listed, caller)[reason].inc();
  else if (code === RATE_LIMITED_CODE) seriesFor(metrics, listed, caller).rateLimited.inc();
}
