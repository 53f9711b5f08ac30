/**
 * Scrapes every target at once and keeps each one's last successful scrape, so each view covers
 * the interval since that target was last read (longer after it was unreachable for a while).
 */
import { scrape, type Scrape, type ScrapeOptions } from './scrape.js';
import { computeView, type StatView } from './view.js';

type OkScrape = Extract<Scrape, { ok: true }>;

export class Collector {
  private readonly last = new Map<string, OkScrape>();

  constructor(
    private readonly targets: readonly string[],
    private readonly opts: ScrapeOptions,
  ) {}

  /** Reads every target and returns the view against the previous reads. */
  async next(signal?: AbortSignal): Promise<StatView> {
    const current = await Promise.all(this.targets.map((t) => scrape(t, { ...this.opts, signal })));
    const view = computeView(this.last, current);
    for (const s of current) if (s.ok) this.last.set(s.target, s);
    return view;
  }
}
