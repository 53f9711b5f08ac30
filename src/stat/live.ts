/**
 * The live view: reads every target each interval and redraws, as `top` does, until q, Ctrl-C or a
 * terminating signal; a target that stops answering is shown unreachable and tried again each
 * interval. The terminal is given back before the promise resolves, and also if the process exits
 * some other way.
 */
import { Collector } from './collect.js';
import { renderText } from './render.js';
import type { ScrapeOptions } from './scrape.js';
import { Screen, type TerminalIn, type TerminalOut } from './screen.js';
import type { StatView } from './view.js';

export interface LiveOptions {
  targets: string[];
  intervalMs: number;
  scrape: Omit<ScrapeOptions, 'signal'>;
  out?: TerminalOut;
  input?: TerminalIn;
}

const QUIT_KEYS = new Set(['q', 'Q', '\x03']);
const QUIT_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** Resolves with the exit code (0) once the view has ended and the terminal is restored. */
export function runLive(opts: LiveOptions): Promise<number> {
  const screen = new Screen(opts.out ?? process.stdout, opts.input ?? process.stdin);
  const collector = new Collector(opts.targets, opts.scrape);
  const stop = new AbortController();
  const seconds = opts.intervalMs / 1000;
  let view: StatView | undefined;
  let timer: NodeJS.Timeout | undefined;

  const draw = () => {
    const hint = `q: quit   refresh every ${seconds} s`;
    if (view === undefined) {
      screen.draw([`watchtower stat  reading ${opts.targets.join(', ')} ...`, '', hint]);
      return;
    }
    const lines = renderText(view);
    const down = view.targets.filter((t) => !t.ok).length;
    const status = down === 0 ? hint : `${hint}   ${down === view.targets.length ? 'UNREACHABLE' : `${down} unreachable`}, retrying every ${seconds} s`;
    screen.draw([lines[0], status, ...lines.slice(1)]);
  };

  return new Promise((resolve) => {
    const restore = () => screen.leave();
    const quit = () => {
      if (stop.signal.aborted) return;
      stop.abort();
      clearTimeout(timer);
      for (const s of QUIT_SIGNALS) process.off(s, quit);
      process.off('exit', restore);
      screen.leave();
      resolve(0);
    };
    for (const s of QUIT_SIGNALS) process.on(s, quit);
    process.on('exit', restore);
    screen.enter((key) => {
      if (QUIT_KEYS.has(key)) quit();
    }, draw);
    draw();

    const tick = async () => {
      const started = Date.now();
      const next = await collector.next(stop.signal);
      if (stop.signal.aborted) return;
      view = next;
      draw();
      timer = setTimeout(() => void tick(), Math.max(0, opts.intervalMs - (Date.now() - started)));
    };
    void tick();
  });
}
