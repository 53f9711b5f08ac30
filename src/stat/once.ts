/**
 * `watchtower stat --once` / `--json`: two reads of every target an interval apart (so rates and
 * percentiles exist), one snapshot printed. Exit 0 when every target was read both times, 1 when
 * one was not (what the others gave is still printed, and the failure named on stderr).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Collector } from './collect.js';
import { renderJson, renderText } from './render.js';
import type { ScrapeOptions } from './scrape.js';

export interface OnceOptions {
  targets: string[];
  intervalMs: number;
  json: boolean;
  scrape: ScrapeOptions;
  print: (text: string) => void;
  warn: (text: string) => void;
}

export async function runOnce(opts: OnceOptions): Promise<number> {
  const collector = new Collector(opts.targets, opts.scrape);
  const first = await collector.next();
  // The interval counts from the first read's start, as a scrape interval does.
  await sleep(Math.max(0, opts.intervalMs - (Date.now() - first.at)));
  const view = await collector.next();
  const failed = new Map<string, string>();
  for (const t of [...first.targets, ...view.targets]) if (!t.ok && !failed.has(t.url)) failed.set(t.url, t.error ?? 'unreachable');
  for (const [url, error] of failed) opts.warn(`watchtower stat: ${url}: ${error}`);
  opts.print(opts.json ? renderJson(view) : renderText(view).join('\n'));
  return failed.size === 0 ? 0 : 1;
}
