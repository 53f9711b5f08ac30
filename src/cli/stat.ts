/** `watchtower stat [URL...]`: its options, and the live view or one snapshot. */
import { parseArgs } from 'node:util';
import { runLive } from '../stat/live.js';
import { runOnce } from '../stat/once.js';
import { metricsUrl, type ScrapeAuth } from '../stat/scrape.js';

export const DEFAULT_TARGET = 'http://127.0.0.1:8000';

export interface StatArgs {
  help: boolean;
  targets: string[];
  once: boolean;
  json: boolean;
  intervalMs: number;
  timeoutMs: number;
  auth: ScrapeAuth;
}

/** Seconds from an option: a number within [min, max], or an error naming the option. */
function seconds(name: string, raw: string | undefined, fallback: number, min: number, max: number): number | string {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n < min || n > max) return `--${name} must be a number of seconds from ${min} to ${max}, not '${raw}'`;
  return n;
}

/**
 * Reads the arguments of `stat`; an error message for a usage error. Credentials: --user
 * USER[:PASSWORD] or WT_METRICS_USER / WT_METRICS_PASSWORD (the names the gateway reads), an API
 * key from --api-key or WT_API_KEY.
 */
export function parseStatArgs(args: string[], env: NodeJS.ProcessEnv): StatArgs | { error: string } {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        once: { type: 'boolean' },
        json: { type: 'boolean' },
        interval: { type: 'string' },
        timeout: { type: 'string' },
        user: { type: 'string' },
        'api-key': { type: 'string' },
      },
    });
  } catch (err) {
    return { error: (err as Error).message };
  }
  const { values, positionals } = parsed;
  const interval = seconds('interval', values.interval, 1, 0.1, 3600);
  if (typeof interval === 'string') return { error: interval };
  const timeout = seconds('timeout', values.timeout, 5, 0.1, 600);
  if (typeof timeout === 'string') return { error: timeout };
  const targets = positionals.length ? positionals : [DEFAULT_TARGET];
  for (const t of targets) {
    try {
      metricsUrl(t);
    } catch (err) {
      return { error: (err as Error).message };
    }
  }
  if (new Set(targets).size !== targets.length) return { error: 'a URL is given twice' };

  const auth: ScrapeAuth = {};
  const user = values.user ?? env.WT_METRICS_USER;
  if (user) {
    const colon = values.user !== undefined ? user.indexOf(':') : -1;
    auth.user = colon >= 0 ? user.slice(0, colon) : user;
    auth.password = colon >= 0 ? user.slice(colon + 1) : (env.WT_METRICS_PASSWORD ?? '');
  }
  const apiKey = values['api-key'] ?? env.WT_API_KEY;
  if (apiKey) auth.apiKey = apiKey;

  return {
    help: values.help ?? false,
    targets,
    json: values.json ?? false,
    // JSON is for scripts: always one snapshot.
    once: (values.once ?? false) || (values.json ?? false),
    intervalMs: interval * 1000,
    timeoutMs: timeout * 1000,
    auth,
  };
}

/** Runs the view or the snapshot; resolves with the exit code. */
export function runStat(args: StatArgs): Promise<number> {
  const scrape = { auth: args.auth, timeoutMs: args.timeoutMs };
  if (args.once) {
    return runOnce({
      targets: args.targets,
      intervalMs: args.intervalMs,
      json: args.json,
      scrape,
      print: (text) => console.log(text),
      warn: (text) => console.error(text),
    });
  }
  return runLive({ targets: args.targets, intervalMs: args.intervalMs, scrape });
}
