/**
 * Collects whole log lines and hands them to the real destination in chunks of about `maxBytes`,
 * at least every `flushMs`, and on flush(). The destination (pino's SonicBoom) still does the I/O,
 * with its handling of partial writes, EAGAIN and closed pipes.
 *
 * Hand-written because SonicBoom's own buffering (minLength) measures the byte length of its whole
 * pending buffer on every write, which flattens that string each time: about 4 KB of garbage per
 * request at three records each. Here a line is measured once and a chunk is joined once.
 */
export interface LineSink {
  write(chunk: string): unknown;
}

export class LineBatcher {
  private lines: string[] = [];
  private bytes = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly sink: LineSink,
    private readonly maxBytes: number,
    flushMs: number,
  ) {
    this.timer = setInterval(() => this.flush(), flushMs);
    this.timer.unref();
  }

  /** pino calls this with one formatted line (ending in a newline). */
  write(line: string): boolean {
    this.lines.push(line);
    // Latin-1 strings are one byte a character; anything else is measured properly.
    this.bytes += Buffer.byteLength(line);
    if (this.bytes >= this.maxBytes) this.flush();
    return true;
  }

  /** Hands everything collected so far to the sink, as one chunk (pino's flush passes a callback). */
  flush(done?: (err?: Error) => void): void {
    if (this.lines.length > 0) {
      const chunk = this.lines.length === 1 ? this.lines[0] : this.lines.join('');
      this.lines = [];
      this.bytes = 0;
      this.sink.write(chunk);
    }
    done?.();
  }

  /** Flushes and stops the timer. */
  close(): void {
    clearInterval(this.timer);
    this.flush();
  }
}
