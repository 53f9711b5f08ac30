/**
 * One read of a gateway's /metrics: fetch with a time limit, the credentials /metrics may ask for
 * (basic auth of WT_METRICS_USER, an API key when auth.metrics_roles is set), and the samples.
 */
import { parseExposition, type Sample } from './exposition.js';

export interface ScrapeAuth {
  /** Basic-auth user and password (the gateway's WT_METRICS_USER / WT_METRICS_PASSWORD). */
  user?: string;
  password?: string;
  /** Sent as X-API-Key, which leaves Authorization to the basic credentials. */
  apiKey?: string;
}

export interface ScrapeOptions {
  auth?: ScrapeAuth;
  /** Milliseconds before a scrape is given up (connect, headers and body together). */
  timeoutMs: number;
  /** Ends a scrape under way (the live view quitting). */
  signal?: AbortSignal;
}

/** A target's metrics at one moment, or why they could not be read. */
export type Scrape =
  | { target: string; ok: true; at: number; samples: Sample[] }
  | { target: string; ok: false; at: number; error: string };

/**
 * The /metrics URL of a target given as a gateway's base URL (http://host:8000, or a path prefix
 * behind a proxy), or as the metrics URL itself. Throws naming the target when it is not an
 * http(s) URL.
 */
export function metricsUrl(target: string): URL {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw new Error(`'${target}' is not a URL (e.g. http://127.0.0.1:8000)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`'${target}': only http and https URLs can be read`);
  if (!url.pathname.endsWith('/metrics')) url.pathname = `${url.pathname.replace(/\/+$/, '')}/metrics`;
  return url;
}

function headers(auth: ScrapeAuth | undefined): Record<string, string> {
  const h: Record<string, string> = { accept: 'text/plain' };
  if (auth?.user !== undefined) h.authorization = `Basic ${Buffer.from(`${auth.user}:${auth.password ?? ''}`).toString('base64')}`;
  if (auth?.apiKey !== undefined) h['x-api-key'] = auth.apiKey;
  return h;
}

/** Why a fetch failed, in a few words (the cause of "fetch failed" is what matters). */
function failure(err: unknown, timeoutMs: number): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return `no answer within ${timeoutMs / 1000} s`;
  if (e.name === 'AbortError') return 'stopped';
  return e.cause?.code ?? e.cause?.message ?? e.message;
}

/**
 * Reads the target's metrics; never throws. `at` is when the scrape started (ms since the epoch), as
 * Prometheus stamps a scrape, so rates over two scrapes divide by the same interval it would.
 */
export async function scrape(target: string, opts: ScrapeOptions): Promise<Scrape> {
  const at = Date.now();
  const url = metricsUrl(target);
  const signal = opts.signal ? AbortSignal.any([opts.signal, AbortSignal.timeout(opts.timeoutMs)]) : AbortSignal.timeout(opts.timeoutMs);
  try {
    const res = await fetch(url, { headers: headers(opts.auth), signal, redirect: 'error' });
    const body = await res.text();
    if (!res.ok) {
      let detail = '';
      try {
        detail = (JSON.parse(body) as { detail?: string }).detail ?? '';
      } catch {
        // not the gateway's JSON error body
      }
      return { target, ok: false, at, error: `HTTP ${res.status}${detail ? `: ${detail}` : ''}` };
    }
    return { target, ok: true, at, samples: parseExposition(body) };
  } catch (err) {
    return { target, ok: false, at, error: failure(err, opts.timeoutMs) };
  }
}
