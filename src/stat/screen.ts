/**
 * The terminal of the live view, with plain ANSI/xterm sequences (every terminal emulator and tmux
 * knows them; a screen library would bring far more than these few): the alternate screen and a
 * hidden cursor while it runs, keys read one by one, and the terminal given back as it was, once,
 * however the view ends.
 */

const ALT_SCREEN_ON = '\x1b[?1049h';
const ALT_SCREEN_OFF = '\x1b[?1049l';
const CURSOR_HIDE = '\x1b[?25l';
const CURSOR_SHOW = '\x1b[?25h';
const HOME = '\x1b[H';
const CLEAR_LINE_END = '\x1b[K';
const CLEAR_BELOW = '\x1b[J';

export interface TerminalOut {
  write(text: string): unknown;
  readonly columns?: number;
  readonly rows?: number;
  on(event: 'resize', listener: () => void): unknown;
  off(event: 'resize', listener: () => void): unknown;
}

export interface TerminalIn {
  readonly isTTY?: boolean;
  setRawMode?(raw: boolean): unknown;
  on(event: 'data', listener: (data: Buffer | string) => void): unknown;
  off(event: 'data', listener: (data: Buffer | string) => void): unknown;
  resume(): unknown;
  pause(): unknown;
}

export class Screen {
  private active = false;
  private onData?: (data: Buffer | string) => void;
  private onResize?: () => void;

  constructor(
    private readonly out: TerminalOut,
    private readonly input: TerminalIn,
  ) {}

  /**
   * Switches to the alternate screen and reads keys raw (so Ctrl-C arrives as a key, not a signal,
   * and nothing typed is echoed). `onResize` redraws.
   */
  enter(onKey: (key: string) => void, onResize: () => void): void {
    if (this.active) return;
    this.active = true;
    this.out.write(ALT_SCREEN_ON + CURSOR_HIDE);
    this.onResize = onResize;
    this.out.on('resize', onResize);
    if (this.input.isTTY) this.input.setRawMode?.(true);
    this.onData = (data) => {
      for (const key of data.toString()) onKey(key);
    };
    this.input.on('data', this.onData);
    this.input.resume();
  }

  /** Replaces the screen's content with `lines`, cut to the terminal's width and height. */
  draw(lines: string[]): void {
    if (!this.active) return;
    const rows = this.out.rows ?? 24;
    const cols = this.out.columns ?? 80;
    const shown = lines.slice(0, rows).map((l) => (l.length > cols ? l.slice(0, cols) : l) + CLEAR_LINE_END);
    this.out.write(HOME + shown.join('\n') + CLEAR_BELOW);
  }

  /** Gives the terminal back: cursor shown, main screen restored, keys read as before. Idempotent. */
  leave(): void {
    if (!this.active) return;
    this.active = false;
    if (this.onData) this.input.off('data', this.onData);
    if (this.onResize) this.out.off('resize', this.onResize);
    if (this.input.isTTY) this.input.setRawMode?.(false);
    this.input.pause();
    this.out.write(CURSOR_SHOW + ALT_SCREEN_OFF);
  }
}
