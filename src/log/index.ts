/**
 * Logging: pino does level filtering and output; we replace its JSON serializer with a logfmt one,
 * so each record is formatted once, straight to its final line:
 *   [<pid>] <LEVEL> <source> tag=<tag> msg="<text>" key=value ... cid=<cid>
 * Records written for a request pass its correlation id as the `cid` field; it is written last.
 * (Not an AsyncLocalStorage: on Node 20 that installs promise hooks which tax every promise in the
 * process, and measured about 8 µs of CPU and 15% of the latency per request.)
 *
 * Output is pino's synchronous destination (its default) behind a LineBatcher: lines collect until
 * about 3 KB and are written in one call, and at least every LOG_FLUSH_MS. A write per line (or an
 * asynchronous write, which goes through libuv's thread pool) costs more per request than the rest
 * of the logging together. Chunks stay under PIPE_BUF (4 KB) for the usual line lengths, so cluster
 * workers sharing one stdout pipe do not interleave inside a line. The buffer is written out on
 * exit; only a SIGKILL can lose up to LOG_FLUSH_MS of lines.
 */
import pino, { type Logger } from 'pino';
import { LineBatcher } from './line-batcher.js';
import { logfmtValue } from './logfmt.js';

export { oneLineTraceback } from './logfmt.js';

export const LEVELS = { debug: 20, info: 30, warning: 40, error: 50, critical: 60 } as const;
export type Level = keyof typeof LEVELS;
type Fields = Record<string, unknown>;

const LEVEL_LABEL: Record<number, string> = { 20: 'DEBUG', 30: 'INFO', 40: 'WARNING', 50: 'ERROR', 60: 'CRITICAL' };

/** What a Log method hands to pino; read back by formatLine. */
interface Record_ {
  /** "<LEVEL> <source> tag=", made once per logger and level. */
  p: string;
  t: string;
  f?: Fields;
}

/** pino's write step (level already checked, message already final), a public pino symbol. */
type WriteFn = (this: Logger<keyof typeof LEVELS>, obj: Record_, msg: string, num: number) => void;
const WRITE = pino.symbols.writeSym as unknown as symbol;

function formatLine(pidPrefix: string, rec: Record_, msg: string): string {
  let line = `${pidPrefix}${rec.p}${logfmtValue(rec.t)} msg=${logfmtValue(msg)}`;
  const f = rec.f;
  if (f === undefined) return line + '\n';
  for (const key in f) {
    const v = f[key];
    if (v !== undefined && key !== 'cid') line += ` ${key}=${logfmtValue(v)}`;
  }
  // The correlation id goes last, where every request-scoped record has it.
  return f.cid === undefined ? line + '\n' : `${line} cid=${logfmtValue(f.cid)}\n`;
}

function createRoot(destination: pino.DestinationStream): Logger<keyof typeof LEVELS> {
  const root = pino(
    { customLevels: LEVELS, useOnlyCustomLevels: true, level: 'info', timestamp: false, base: null },
    destination,
  ) as unknown as Logger<keyof typeof LEVELS>;
  const pidPrefix = `[${process.pid}] `;
  // pino's public symbol for its serializer: replacing it is how we emit logfmt without a JSON round trip.
  (root as unknown as Record<symbol, unknown>)[pino.symbols.asJsonSym] = (obj: Record_, msg: string) => formatLine(pidPrefix, obj, msg);
  return root;
}

/** Longest time a line waits in the buffer. */
const LOG_FLUSH_MS = 200;
/** Below PIPE_BUF (4 KB) with room for a line, so a chunk reaches a shared pipe in one piece. */
const LOG_CHUNK_BYTES = 3072;

const stdoutSink = pino.destination({ dest: 1, sync: true });
const stdout = new LineBatcher(stdoutSink, LOG_CHUNK_BYTES, LOG_FLUSH_MS);
// Synchronous destinations get no exit hook from pino: write what is buffered ourselves.
process.once('exit', () => {
  try {
    stdout.flush();
  } catch {
    // stdout is gone (closed pipe): nothing left to write to.
  }
});

let root = createRoot(stdout);
let current: pino.DestinationStream = stdout;

/** Points all loggers at another destination (benchmarks and tests). */
export function setLogDestination(destination: pino.DestinationStream): void {
  const level = root.level;
  current = destination;
  root = createRoot(destination);
  root.level = level;
}

/** Accepts the config's level names (DEBUG, INFO, WARN/WARNING, ERROR, CRITICAL). */
export function setLogLevel(name: string): void {
  const lower = name.toLowerCase();
  root.level = lower === 'warn' ? 'warning' : lower;
}

export function isLevelEnabled(level: Level): boolean {
  return LEVELS[level] >= root.levelVal;
}

/** Writes buffered lines now (before an exit, or when a test reads the output). */
export function flushLogs(): void {
  if (current === stdout) stdout.flush();
  else root.flush();
}

export interface Log {
  debug(tag: string, msg: string, fields?: Fields): void;
  info(tag: string, msg: string, fields?: Fields): void;
  warning(tag: string, msg: string, fields?: Fields): void;
  error(tag: string, msg: string, fields?: Fields): void;
  critical(tag: string, msg: string, fields?: Fields): void;
}

/** A logger for one source file; `source` is what appears after the level, e.g. "hooks.ts". */
export function getLogger(source: string): Log {
  const at = (level: Level) => {
    const val = LEVELS[level];
    const prefix = `${LEVEL_LABEL[val]} ${source} tag=`;
    return (tag: string, msg: string, fields?: Fields) => {
      // Checked here so a disabled level costs no allocation.
      if (val < root.levelVal) return;
      // Straight to pino's write step: its level method would only re-read its arguments and scan
      // the message for printf placeholders, which our messages never use.
      const write = (root as unknown as Record<symbol, WriteFn>)[WRITE];
      write.call(root, { p: prefix, t: tag, f: fields }, msg, val);
    };
  };
  return { debug: at('debug'), info: at('info'), warning: at('warning'), error: at('error'), critical: at('critical') };
}
