/**
 * Collects whole log lines and hands them to the real destination in chunks of about `maxSize`,
 * at least every `flushMs`, and on flush(). The destination (pino's SonicBoom) still does the I/O,
 * with its handling of partial writes, EAGAIN and closed pipes.
 *
 * Hand-written because SonicBoom's own buffering (minLength) measures the byte length of its whole
 * pending buffer on every write, which flattens that string each time: about 4 KB of garbage per
 * request at three records each. Here a line is measured at most once and a chunk is joined once.
 */
export interface LineSink {
  write(chunk: string): unknown;
}

export class LineBatcher {
  private lines: string[] = [];
  private size = 0;
  private readonly timer: NodeJS.Timeout;

  /**
   * `unit`: 'bytes' measures each line's UTF-8 length, for a limit that must hold in bytes (a
   * shared pipe's PIPE_BUF); 'chars' counts UTF-16 units, which needs no pass over the line and is
   * enough where the limit is only about how many lines share a system call.
   */
  constructor(
    private readonly sink: LineSink,
    private maxSize: number,
    flushMs: number,
    private unit: 'bytes' | 'chars' = 'bytes',
  ) {
    this.timer = setInterval(() => this.flush(), flushMs);
    this.timer.unref();
  }

  /** Writes what is pending under the old limit, then applies the new one. */
  setLimit(maxSize: number, unit: 'bytes' | 'chars'): void {
    this.flush();
    this.maxSize = maxSize;
    this.unit = unit;
  }

  /** Takes one formatted line (ending in a newline). */
  write(line: string): boolean {
    this.lines.push(line);
    this.size += this.unit === 'chars' ? line.length : Buffer.byteLength(line);
    if (this.size >= this.maxSize) this.flush();
    return true;
  }

  /** Hands everything collected so far to the sink, as one chunk; calls `done` after. */
  flush(done?: (err?: Error) => void): void {
    if (this.lines.length > 0) {
      const chunk = this.lines.length === 1 ? this.lines[0] : this.lines.join('');
      this.lines = [];
      this.size = 0;
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
