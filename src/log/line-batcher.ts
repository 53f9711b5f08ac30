/**
 * Collects whole log lines, encoded as UTF-8 straight into a buffer of `maxBytes`, and hands each
 * full buffer to the real destination in one write, at least every `flushMs`, and on flush(). The
 * destination (pino's SonicBoom, in buffer mode) still does the I/O, with its handling of partial
 * writes, EAGAIN and closed pipes.
 *
 * A line may also be written in parts straight into the chunk (begin ... endLine): the records every
 * request writes are, without building a string of each (src/log/index.ts Log.record).
 *
 * Hand-written because SonicBoom's string mode measures the UTF-8 length of every write and, once
 * written, encodes the whole chunk a second time only to count the bytes written (its own buffering,
 * minLength, also measures its whole pending string on every write). Here each line is encoded once,
 * into the chunk that is written, and a chunk never exceeds its byte limit unless one line does.
 */
export interface LineSink {
  write(chunk: Buffer): unknown;
}

/** UTF-8 needs at most 3 bytes per UTF-16 unit (a surrogate pair: 4 bytes for 2 units). */
const MAX_BYTES_PER_UNIT = 3;

export class LineBatcher {
  private chunk: Buffer;
  private used = 0;
  private readonly timer: NodeJS.Timeout;

  /** A chunk never exceeds `maxBytes` unless one line alone does (then that line is written by itself). */
  constructor(
    private readonly sink: LineSink,
    private maxBytes: number,
    flushMs: number,
  ) {
    this.chunk = Buffer.allocUnsafeSlow(maxBytes);
    this.timer = setInterval(() => this.flush(), flushMs);
    this.timer.unref();
  }

  /** Writes what is pending under the old limit, then applies the new one. */
  setLimit(maxBytes: number): void {
    this.flush();
    this.maxBytes = maxBytes;
    this.chunk = Buffer.allocUnsafeSlow(maxBytes);
  }

  /** Takes one formatted line (ending in a newline). */
  write(line: string): boolean {
    const room = this.maxBytes - this.used;
    // Only a line that might not fit is measured: most are appended without a length pass.
    if (line.length * MAX_BYTES_PER_UNIT > room) {
      const bytes = Buffer.byteLength(line);
      if (bytes > room) {
        this.flush();
        if (bytes > this.maxBytes) {
          this.sink.write(Buffer.from(line));
          return true;
        }
      }
    }
    this.used += this.chunk.write(line, this.used);
    if (this.used === this.maxBytes) this.flush();
    return true;
  }

  /**
   * Starts a line written in parts (bytes, ascii, asciiIfAll, text, then endLine), of at most `maxBytes`
   * bytes: what is pending goes first when the line might not fit. False when no chunk can hold
   * it: the caller then writes it as one string instead.
   */
  begin(maxBytes: number): boolean {
    if (maxBytes > this.maxBytes) return false;
    if (this.used + maxBytes > this.maxBytes) this.flush();
    return true;
  }

  /** Appends bytes (a piece encoded once). */
  bytes(b: Uint8Array): void {
    this.chunk.set(b, this.used);
    this.used += b.length;
  }

  /** Appends the first `n` bytes of `b`. */
  bytesUpTo(b: Buffer, n: number): void {
    this.chunk.set(b.subarray(0, n), this.used);
    this.used += n;
  }

  /** Where the next byte of the chunk goes: stable from begin() to endLine(). */
  get position(): number {
    return this.used;
  }

  /** Copies bytes `from` to `to` (positions) of the chunk into `into` at `at`. */
  copyOut(from: number, to: number, into: Buffer, at: number): void {
    this.chunk.copy(into, at, from, to);
  }

  /** Appends text of ASCII characters only (numbers, ready-made logfmt values). */
  ascii(s: string): void {
    const c = this.chunk;
    let u = this.used;
    for (let i = 0; i < s.length; i++) c[u++] = s.charCodeAt(i);
    this.used = u;
  }

  /**
   * Appends `s` when it is not empty and `allowed` holds for each of its characters (ASCII ones
   * only: the caller's rule must refuse the rest), checking while copying; otherwise appends
   * nothing and answers false.
   */
  asciiIfAll(s: string, allowed: (code: number) => boolean): boolean {
    if (s.length === 0) return false;
    const c = this.chunk;
    let u = this.used;
    for (let i = 0; i < s.length; i++) {
      const ch = s.charCodeAt(i);
      if (!allowed(ch)) return false;
      c[u++] = ch;
    }
    this.used = u;
    return true;
  }

  /** Appends any text as UTF-8. */
  text(s: string): void {
    this.used += this.chunk.write(s, this.used);
  }

  /** Ends a line begun with begin(). */
  endLine(): void {
    this.chunk[this.used++] = 0x0a;
    if (this.used === this.maxBytes) this.flush();
  }

  /** Hands everything collected so far to the sink, as one chunk; calls `done` after. */
  flush(done?: (err?: Error) => void): void {
    if (this.used > 0) {
      const full = this.chunk.subarray(0, this.used);
      // A new buffer per chunk: the sink may keep the written one (a write it must retry).
      this.chunk = Buffer.allocUnsafeSlow(this.maxBytes);
      this.used = 0;
      this.sink.write(full);
    }
    done?.();
  }

  /** Flushes and stops the timer. */
  close(): void {
    clearInterval(this.timer);
    this.flush();
  }
}
