/** The stat view as text (the live screen and --once) and as JSON (--json). */
import type { ClientView, StatView } from './view.js';

/** Seconds as a short duration: 0.42ms, 12.3ms, 1.23s; '-' when unknown. */
export function duration(seconds: number | null): string {
  if (seconds === null) return '-';
  if (seconds === Infinity) return '+Inf';
  const ms = seconds * 1000;
  if (ms < 10) return `${ms.toFixed(2)}ms`;
  if (ms < 1000) return `${ms.toFixed(1)}ms`;
  return `${seconds.toFixed(2)}s`;
}

/** A rate per second: 0, 0.25, 12.5, 812. */
export function perSecond(rate: number): string {
  if (rate === 0) return '0';
  if (rate < 10) return rate.toFixed(2);
  if (rate < 100) return rate.toFixed(1);
  return rate.toFixed(0);
}

/** Rows as columns padded to their widest cell (the last column is not padded). */
function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i]?.length ?? 0)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ').trimEnd());
}

function errorsText(errors: Record<string, number>): string {
  const nonZero = Object.entries(errors).filter(([, n]) => n > 0);
  return nonZero.length ? nonZero.map(([kind, n]) => `${kind}=${n}`).join(' ') : '-';
}

function clientRows(title: string, clients: ClientView[]): string[] {
  if (clients.length === 0) return [`${title}: none in the interval`];
  return table([[title, 'REQ/S', 'P99'], ...clients.map((c) => [c.clientId, perSecond(c.requestsPerSecond), duration(c.p99)])]);
}

const clock = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');

/** The view as lines of text: header, resources, endpoints with requests in the interval, top callers. */
export function renderText(view: StatView): string[] {
  const lines: string[] = [];
  const down = view.targets.filter((t) => !t.ok);
  const interval = view.intervalSeconds > 0 ? `last ${view.intervalSeconds.toFixed(1)} s` : 'collecting';
  lines.push(`watchtower stat  ${clock(view.at)}  ${interval}  ${view.targets.length - down.length}/${view.targets.length} reachable`);
  for (const t of view.targets) lines.push(`  ${t.url}  ${t.ok ? 'ok' : `unreachable: ${t.error ?? ''}`}`);
  lines.push('');

  lines.push(
    ...(view.resources.length === 0
      ? ['RESOURCES: none reported']
      : table([
          ['RESOURCE', 'SLOTS used/max/pend', 'CONNS open/idle/max', 'Q/S', 'P50', 'P95', 'P99', 'BREAKER', 'ERRORS (in interval)'],
          ...view.resources.map((r) => [
            r.id,
            `${r.slots.active}/${r.slots.max ?? '-'}/${r.slots.pending}`,
            `${r.connections.open}/${r.connections.pooled}/${r.connections.max ?? '-'}`,
            perSecond(r.queriesPerSecond),
            duration(r.queryTime.p50),
            duration(r.queryTime.p95),
            duration(r.queryTime.p99),
            r.breaker ?? '-',
            errorsText(r.errors),
          ]),
        ])),
  );
  lines.push('');

  // Endpoints without a request in the interval are counted, not listed (--json lists them all).
  const endpoints = view.endpoints.filter((e) => e.requestsPerSecond > 0 || e.clientErrorsPerSecond > 0 || e.serverErrorsPerSecond > 0);
  const idle = view.endpoints.length - endpoints.length;
  lines.push(
    ...(endpoints.length === 0
      ? ['ENDPOINTS: no requests in the interval']
      : table([
          ['ENDPOINT', 'REQ/S', 'P99', '4XX/S', '5XX/S'],
          ...endpoints.map((e) => [e.endpoint, perSecond(e.requestsPerSecond), duration(e.p99), perSecond(e.clientErrorsPerSecond), perSecond(e.serverErrorsPerSecond)]),
        ])),
  );
  if (idle > 0 && endpoints.length > 0) lines.push(`(${idle} more without requests)`);
  lines.push('');
  lines.push(...clientRows('TOP CLIENTS BY REQ/S', view.clients.byRequests));
  lines.push('');
  lines.push(...clientRows('TOP CLIENTS BY P99', view.clients.byP99));
  return lines;
}

/** The view as a JSON document for scripts: durations in seconds, rates per second, snake_case keys. */
export function renderJson(view: StatView): string {
  const client = (c: ClientView) => ({ client_id: c.clientId, requests_per_second: c.requestsPerSecond, p99_seconds: c.p99 });
  return JSON.stringify(
    {
      at: new Date(view.at).toISOString(),
      interval_seconds: view.intervalSeconds,
      targets: view.targets.map((t) => ({
        url: t.url,
        ok: t.ok,
        ...(t.error !== undefined ? { error: t.error } : {}),
        ...(t.intervalSeconds !== undefined ? { interval_seconds: t.intervalSeconds } : {}),
      })),
      resources: view.resources.map((r) => ({
        resource_id: r.id,
        slots: { active: r.slots.active, max: r.slots.max, pending: r.slots.pending },
        connections: { open: r.connections.open, pooled: r.connections.pooled, in_use: r.connections.inUse, max: r.connections.max },
        queries_per_second: r.queriesPerSecond,
        query_seconds: { p50: r.queryTime.p50, p95: r.queryTime.p95, p99: r.queryTime.p99 },
        errors: r.errors,
        breaker: r.breaker,
      })),
      endpoints: view.endpoints.map((e) => ({
        endpoint: e.endpoint,
        requests_per_second: e.requestsPerSecond,
        p99_seconds: e.p99,
        '4xx_per_second': e.clientErrorsPerSecond,
        '5xx_per_second': e.serverErrorsPerSecond,
      })),
      clients: { by_requests: view.clients.byRequests.map(client), by_p99: view.clients.byP99.map(client) },
    },
    null,
    2,
  );
}
