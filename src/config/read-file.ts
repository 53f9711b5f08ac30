/**
 * Reads one YAML config file, bounded: only a regular file (a FIFO or device named by mistake, or
 * through a symlink, neither blocks nor streams), at most MAX_CONFIG_FILE_BYTES, valid UTF-8.
 * Errors name the file and the reason, never its contents: the file may be anything a path or a
 * symlink points to.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import { ConfigError } from '../errors.js';

/** About 30 times the shipped main file; YAML costs milliseconds per kilobyte to parse. */
export const MAX_CONFIG_FILE_BYTES = 64 * 1024;

export type YamlMapping = Record<string, unknown>;

function isMapping(v: unknown): v is YamlMapping {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function tooLarge(file: string): ConfigError {
  return new ConfigError(`config file ${file} is larger than ${MAX_CONFIG_FILE_BYTES} bytes`, { file });
}

/** The file's text; undefined when an optional file does not exist. */
export function readConfigText(file: string, optional: boolean): string | undefined {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO does not wait for a writer; it is then refused as not a regular file.
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    if (code === 'ENOENT' && optional) return undefined;
    throw new ConfigError(code === 'ENOENT' ? `config file ${file} does not exist` : `config file ${file} cannot be opened (${code})`, { file });
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new ConfigError(`config file ${file} is not a regular file`, { file });
    if (stat.size > MAX_CONFIG_FILE_BYTES) throw tooLarge(file);
    // Read one byte past the limit: the size from fstat may be stale or 0 (/proc files).
    const buf = Buffer.allocUnsafe(MAX_CONFIG_FILE_BYTES + 1);
    let length = 0;
    for (;;) {
      const n = readSync(fd, buf, length, buf.length - length, null);
      if (n === 0) break;
      length += n;
      if (length > MAX_CONFIG_FILE_BYTES) throw tooLarge(file);
    }
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(0, length));
    } catch {
      throw new ConfigError(`config file ${file} is not UTF-8 text`, { file });
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`config file ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { file });
  } finally {
    closeSync(fd);
  }
}

/**
 * Parses YAML that must hold a mapping (empty = empty mapping). A syntax error is reported by its
 * code and position: the parser's own message quotes the offending line.
 */
export function parseConfigText(text: string, file: string): YamlMapping {
  // logLevel silent: warnings would go to stderr through console; errors are handled below.
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { logLevel: 'silent', prettyErrors: false, lineCounter });
  const first = doc.errors[0];
  if (first) {
    const { line, col } = lineCounter.linePos(first.pos[0]);
    const where = ` at line ${line}, column ${col}`;
    throw new ConfigError(`config file ${file} is not valid YAML: ${first.code.toLowerCase().replace(/_/g, ' ')}${where}`, { file });
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch {
    throw new ConfigError(`config file ${file} is not valid YAML: too many or bad aliases`, { file });
  }
  if (value === null || value === undefined) return {};
  if (!isMapping(value)) throw new ConfigError(`config file ${file} must hold a mapping of keys to values`, { file });
  return value;
}

/** Reads and parses a config file. A missing optional file is an empty mapping. */
export function readYamlFile(file: string, optional: boolean): YamlMapping {
  const text = readConfigText(file, optional);
  return text === undefined ? {} : parseConfigText(text, file);
}
