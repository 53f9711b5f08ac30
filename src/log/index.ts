/**
 * Logging: each record is formatted once, straight to its final logfmt line:
 *   [<pid>] <LEVEL> <source> tag=<tag> msg="<text>" key=value ... cid=<cid>
 * Records written for a request pass its correlation id as the `cid` field; it is written last.
 * (Not an AsyncLocalStorage: that installs promise hooks which tax every promise in the process;
 * figures in bench/README.md.)
 *
 * Output is pino's synchronous destination (SonicBoom: partial writes, EAGAIN, closed pipes) behind
 * a LineBatcher: lines collect into chunks written in one call, at least every LOG_FLUSH_MS. A write
 * per line (or an asynchronous write, which goes through libuv's thread pool) costs more per
 * request than the rest of the logging together. The buffer is written out on exit; only a SIGKILL
 * can lose up to LOG_FLUSH_MS of lines.
 *
 * The records every request writes (Log.record) go straight into the batcher's chunk, part by part,
 * without a string of the line: building one cost allocations, joins and a copy per record. A writer
 * copies the start of its last line when the next one's msg and first values repeat it.
 *
 * The logger itself is hand-written: a level check and a call to the formatter. A pino logger
 * added its generic write step (mixins, hooks, metadata, none of which we use) to each of the three
 * records of every request (bench/README.md has the figures).
 */
import cluster from 'node:cluster';
import pino from 'pino';
import { LineBatcher, type LineSink } from './line-batcher.js';
import { bareAsciiCode, logfmtValue } from './logfmt.js';

export { oneLineTraceback } from './logfmt.js';

export const LEVELS = { debug: 20, info: 30, warning: 40, error: 50, critical: 60 } as const;
export type Level = keyof typeof LEVELS;
type Fields = Record<string, unknown>;

const LEVEL_LABEL: Record<number, string> = { 20: 'DEBUG', 30: 'INFO', 40: 'WARNING', 50: 'ERROR', 60: 'CRITICAL' };

/** Where formatted lines go: the stdout batcher, or what a test or benchmark set. */
export interface LogDestination {
  write(line: string): unknown;
  flush?(done?: (err?: Error) => void): void;
}

/** " key=" per field name, made once: the fields of a request's records are the same every time. */
const keyPrefixes = new Map<string, string>();
const MAX_KEY_PREFIXES = 1000;

function keyPrefix(key: string): string {
  let p = keyPrefixes.get(key);
  if (p === undefined) {
    p = ' ' + key + '=';
    if (keyPrefixes.size < MAX_KEY_PREFIXES) keyPrefixes.set(key, p);
  }
  return p;
}

/**
 * `head` is "[<pid>] <LEVEL> <source> tag=", made once per logger and level. Plain `+` with
 * ready-made pieces: each field adds two string joins, not the four a template literal made.
 */
function formatLine(head: string, tag: string, msg: string, f: Fields | undefined): string {
  let line = head + logfmtValue(tag) + ' msg=' + logfmtValue(msg);
  if (f === undefined) return line + '\n';
  for (const key in f) {
    const v = f[key];
    if (v !== undefined && key !== 'cid') line = line + keyPrefix(key) + logfmtValue(v);
  }
  // The correlation id goes last, where every request-scoped record has it.
  return f.cid === undefined ? line + '\n' : line + ' cid=' + logfmtValue(f.cid) + '\n';
}

/** Heads kept per record writer (one per msg, so per URL), and the longest msg kept. */
const MAX_RECORD_HEADS = 1000;
const MAX_KEPT_MSG = 300;
/** The longest start of a line (head and fields) a record writer keeps to copy into its next line. */
const MAX_REUSED_BYTES = 1024;
const CID_PREFIX = Buffer.from(' cid=');
/** The most UTF-8 bytes an encoded value takes per UTF-16 unit of its text: an escape (\u00XX). */
const MAX_VALUE_BYTES_PER_UNIT = 6;

/** The most bytes the logfmt value of `v` takes, quotes included; undefined for values encoded as JSON (their length is not known). */
function valueBound(v: unknown): number | undefined {
  switch (typeof v) {
    case 'string':
      return v.length * MAX_VALUE_BYTES_PER_UNIT + 2;
    case 'number':
    case 'boolean':
      // String(number) is at most 24 characters; non-finite ones are quoted ("-Infinity").
      return 32;
    default:
      return v === null ? 2 : undefined;
  }
}

/** Appends the logfmt value of `v` (a string, number, boolean or null) to a line begun on `out`. */
function appendValue(out: LineBatcher, v: unknown): void {
  if (typeof v !== 'string') out.ascii(logfmtValue(v));
  // A value that needs no quotes is copied as it is checked.
  else if (!out.asciiIfAll(v, bareAsciiCode)) out.text(logfmtValue(v));
}

/** Longest time a line waits in the buffer. */
const LOG_FLUSH_MS = 200;
/**
 * Processes of a cluster share one stdout: a write of at most PIPE_BUF (4096 bytes on Linux) reaches
 * the pipe in one piece, never interleaved with another process's. A process that writes alone has
 * no such limit and batches more per system call.
 */
const SHARED_CHUNK_BYTES = 4096;
const ALONE_CHUNK_BYTES = 16384;

// Buffer mode: chunks arrive encoded and SonicBoom writes them as they are (its typings only know
// the string mode's write).
const sonic = pino.destination({ dest: 1, sync: true, contentMode: 'buffer' });
const stdoutSink: LineSink = { write: (chunk) => sonic.write(chunk as unknown as string) };
const stdout = new LineBatcher(stdoutSink, cluster.isWorker ? SHARED_CHUNK_BYTES : ALONE_CHUNK_BYTES, LOG_FLUSH_MS);

/** Called by a cluster primary before it forks: from now on its stdout is shared with workers. */
export function shareStdout(): void {
  stdout.setLimit(SHARED_CHUNK_BYTES);
}
// Synchronous destinations get no exit hook from pino: write what is buffered ourselves.
process.once('exit', () => {
  try {
    stdout.flush();
  } catch {
    // stdout is gone (closed pipe): nothing left to write to.
  }
});

let destination: LogDestination = stdout;
let minLevel: number = LEVELS.info;
const PID_PREFIX = `[${process.pid}] `;

/** Points all loggers at another destination (benchmarks and tests). */
export function setLogDestination(d: LogDestination): void {
  destination = d;
}

/** Accepts the config's level names (DEBUG, INFO, WARN/WARNING, ERROR, CRITICAL). */
export function setLogLevel(name: string): void {
  const lower = name.toLowerCase();
  const level = (lower === 'warn' ? 'warning' : lower) as Level;
  if (!(level in LEVELS)) throw new Error(`unknown log level ${name}`);
  minLevel = LEVELS[level];
}

export function isLevelEnabled(level: Level): boolean {
  return LEVELS[level] >= minLevel;
}

/** Writes buffered lines now (before an exit, or when a test reads the output). */
export function flushLogs(): void {
  destination.flush?.();
}

/**
 * Writes one kind of record whose fields are always the same names in the same order (the records
 * every request writes): `values` in the order of the names given to `Log.record`, undefined ones
 * left out, the correlation id last. The line is the one the level's method writes for the same
 * fields, made without walking an object's keys or looking up their prefixes.
 */
export type RecordWriter = (msg: string, values: readonly unknown[], cid: string | undefined) => void;

export interface Log {
  /** A writer of records with `tag` and the fields `names` (never `cid`: it is the writer's last argument) at `level`. */
  record(level: Level, tag: string, names: readonly string[]): RecordWriter;
  debug(tag: string, msg: string, fields?: Fields): void;
  info(tag: string, msg: string, fields?: Fields): void;
  warning(tag: string, msg: string, fields?: Fields): void;
  error(tag: string, msg: string, fields?: Fields): void;
  critical(tag: string, msg: string, fields?: Fields): void;
}

/** A logger for one source file; `source` is what appears after the level, e.g. "lifecycle.ts". */
export function getLogger(source: string): Log {
  const headOf = (val: number) => `${PID_PREFIX}${LEVEL_LABEL[val]} ${source} tag=`;
  const at = (level: Level) => {
    const val = LEVELS[level];
    const head = headOf(val);
    return (tag: string, msg: string, fields?: Fields) => {
      // Checked first so a disabled level costs no allocation.
      if (val < minLevel) return;
      destination.write(formatLine(head, tag, msg, fields));
    };
  };
  const record = (level: Level, tag: string, names: readonly string[]): RecordWriter => {
    const val = LEVELS[level];
    const head = headOf(val);
    const start = head + logfmtValue(tag) + ' msg=';
    const prefixBytes = names.map((n) => Buffer.from(keyPrefix(n)));
    /** The line up to its first field, as bytes, per msg (a request's records repeat its URL's). */
    const heads = new Map<string, Buffer>();
    // Any other destination, and a line no chunk can hold: the level's own line, from the fields as an object.
    const asString: RecordWriter = (msg, values, cid) => {
      const fields: Fields = {};
      for (let i = 0; i < names.length; i++) fields[names[i]] = values[i];
      fields.cid = cid;
      destination.write(formatLine(head, tag, msg, fields));
    };
    // The last line written into a chunk, up to the end of each field: its msg, its values, and
    // ends[i], the length of the line before field i (ends[0]: its head). A record whose msg and
    // first values are the last one's copies those bytes at once (a request's records repeat its
    // URL, client and caller; the cid, the duration and the like change).
    let lastMsg: string | undefined;
    const lastValues: unknown[] = new Array<unknown>(names.length);
    const ends = new Int32Array(names.length + 1);
    const lastBytes = Buffer.allocUnsafeSlow(MAX_REUSED_BYTES);
    return (msg, values, cid) => {
      if (val < minLevel) return;
      const out = destination;
      if (!(out instanceof LineBatcher)) return asString(msg, values, cid);
      // Fields repeated from the last line; -1: another msg.
      let same = -1;
      let headLength: number;
      let lineHead: Buffer | undefined;
      if (msg === lastMsg) {
        same = 0;
        while (same < names.length && values[same] === lastValues[same]) same++;
        headLength = ends[0];
      } else {
        lineHead = heads.get(msg);
        if (lineHead === undefined) {
          lineHead = Buffer.from(start + logfmtValue(msg));
          // A long msg (an odd URL) is not kept: its head is made for its record alone.
          if (msg.length <= MAX_KEPT_MSG) {
            if (heads.size >= MAX_RECORD_HEADS) heads.clear();
            heads.set(msg, lineHead);
          }
        }
        headLength = lineHead.length;
      }
      let bound = headLength + 1 + (cid === undefined ? 0 : CID_PREFIX.length + cid.length * MAX_VALUE_BYTES_PER_UNIT + 2);
      for (let i = 0; i < prefixBytes.length; i++) {
        const v = values[i];
        if (v === undefined) continue;
        const b = valueBound(v);
        if (b === undefined) return asString(msg, values, cid);
        bound += prefixBytes[i].length + b;
      }
      if (!out.begin(bound)) return asString(msg, values, cid);
      const lineStart = out.position;
      let first: number;
      if (lineHead === undefined) {
        out.bytesUpTo(lastBytes, ends[same]);
        first = same;
      } else {
        out.bytes(lineHead);
        ends[0] = lineHead.length;
        first = 0;
      }
      for (let i = first; i < prefixBytes.length; i++) {
        const v = values[i];
        if (v !== undefined) {
          out.bytes(prefixBytes[i]);
          appendValue(out, v);
        }
        ends[i + 1] = out.position - lineStart;
      }
      // Keeps what changed, when the line so far fits; otherwise nothing is reused next time.
      const kept = ends[prefixBytes.length];
      if (kept <= lastBytes.length) {
        const from = lineHead === undefined ? ends[first] : 0;
        out.copyOut(lineStart + from, lineStart + kept, lastBytes, from);
        for (let i = first; i < prefixBytes.length; i++) lastValues[i] = values[i];
        lastMsg = msg;
      } else lastMsg = undefined;
      if (cid !== undefined) {
        out.bytes(CID_PREFIX);
        appendValue(out, cid);
      }
      out.endLine();
    };
  };
  return { record, debug: at('debug'), info: at('info'), warning: at('warning'), error: at('error'), critical: at('critical') };
}
