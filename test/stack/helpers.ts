/**
 * Shared helpers of the stack verification tests: locating external binaries (skip locally, fail
 * under CI=true), running them with a time limit, and a JavaScript emulation of Fluent Bit's
 * parsing (Fluent Bit itself does not run in the tests) built FROM the repository's files: the
 * regexes of fluent-bit/parsers.yaml and the parser filters of each pipeline, so it can be pointed
 * at any real gateway stdout line.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- the YAML and JSON documents checked here are untyped by nature */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const IN_CI = process.env.CI === 'true';

/** Absolute path of an executable found on PATH (plus the sbin directories), or undefined. */
export function which(bin: string): string | undefined {
  const dirs = (process.env.PATH ?? '').split(delimiter).concat(['/usr/sbin', '/sbin', '/usr/local/sbin']);
  for (const d of dirs) {
    const p = join(d, bin);
    if (d && existsSync(p)) return p;
  }
  return undefined;
}

/**
 * describe() that needs external binaries: runs when all are present; otherwise prints why and
 * skips, except under CI=true where a missing binary is a failing test.
 */
export function describeWith(name: string, bins: string[], fn: () => void, extra?: () => string | undefined): void {
  const missing = bins.filter((b) => !which(b));
  const why = missing.length ? `missing binaries: ${missing.join(', ')}` : extra?.();
  if (!why) {
    describe(name, fn);
  } else if (IN_CI) {
    describe(name, () => it(`has its prerequisites (${why})`, () => {
      throw new Error(`${name}: ${why} (required when CI=true)`);
    }));
  } else {
    console.warn(`[skip] ${name}: ${why}`);
    describe.skip(name, fn);
  }
}

export interface RunResult { status: number | null; stdout: string; stderr: string; out: string }

/** Runs a command with a hard time limit (default 30 s); never throws. */
export function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): RunResult {
  const r = spawnSync(cmd, args, { cwd: REPO, encoding: 'utf8', timeout: 30_000, ...opts });
  const stdout = String(r.stdout ?? ''), stderr = String(r.stderr ?? '');
  return { status: r.status, stdout, stderr, out: `${stdout}\n${stderr}${r.error ? `\n${r.error.message}` : ''}` };
}

export function readYaml<T = any>(rel: string): T {
  return parseYaml(readFileSync(join(REPO, rel), 'utf8')) as T;
}

/** A TCP port free on 127.0.0.1 right now. */
export { freePort } from '../helpers/gateway-process.js';

// ---------------------------------------------------------------------------------------------
// Log pipeline emulation (what Fluent Bit would do with our config), for tests on real log lines.
// ---------------------------------------------------------------------------------------------

export interface FbParser { name: string; format: string; regex?: string }

/** The parsers of fluent-bit/parsers.yaml, regexes as written there (Onigmo syntax). */
export function loadFluentBitParsers(file = join(REPO, 'fluent-bit/parsers.yaml')): Map<string, FbParser> {
  const doc = parseYaml(readFileSync(file, 'utf8')) as { parsers: FbParser[] };
  return new Map(doc.parsers.map((p) => [p.name, p]));
}

/**
 * Onigmo (Fluent Bit) regex -> JavaScript RegExp. Named groups (?<name>...) and the escapes we use
 * (\d \s \S \[ \.) mean the same in both; reject constructs that differ so a silent mismatch
 * cannot hide here.
 */
export function onigToJs(re: string): RegExp {
  if (/\\[hHAZzG]|\(\?[imx-]+[:)]|\\k<|\(\?<[=!]/.test(re)) throw new Error(`regex uses Onigmo-only syntax: ${re}`);
  return new RegExp(re);
}

/** Applies a regex parser like Fluent Bit: named groups that matched become string fields. */
export function applyRegexParser(p: FbParser, text: string): Record<string, string> | undefined {
  if (p.format !== 'regex' || !p.regex) throw new Error(`${p.name} is not a regex parser`);
  const m = onigToJs(p.regex).exec(text);
  if (!m?.groups) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.groups)) if (v !== undefined) out[k] = v;
  return out;
}

/**
 * logfmt as Fluent Bit's parser reads it (src/flb_parser_logfmt.c): keys are runs of bytes > ' '
 * other than '=' and '"'; a value is bare or double-quoted with backslash escapes; a key without
 * '=' is true.
 */
export function parseLogfmt(text: string): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  const ident = (c: string) => c > ' ' && c !== '=' && c !== '"';
  let i = 0;
  while (i < text.length) {
    while (i < text.length && !ident(text[i]!)) i++;
    if (i >= text.length) break;
    const ks = i;
    while (i < text.length && ident(text[i]!)) i++;
    const key = text.slice(ks, i);
    if (text[i] !== '=') { out[key] = true; continue; }
    i++;
    if (text[i] === '"') {
      i++;
      let v = '';
      while (i < text.length && text[i] !== '"') {
        if (text[i] === '\\' && i + 1 < text.length) {
          const n = text[i + 1]!;
          if (n === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
            v += String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16));
            i += 6;
            continue;
          }
          v += n === 'n' ? '\n' : n === 't' ? '\t' : n === 'r' ? '\r' : n;
          i += 2;
        } else v += text[i++];
      }
      i++;
      out[key] = v;
    } else {
      const vs = i;
      while (i < text.length && ident(text[i]!)) i++;
      out[key] = text.slice(vs, i);
    }
  }
  return out;
}

/** The parser filters of a pipeline (fluent-bit/<file>), in order: the field each reads and the parsers it tries. */
export function pipelineParserSteps(file: string): { key: string; parsers: string[] }[] {
  const filters = readYaml<{ pipeline: { filters: { name: string; key_name?: string; parser?: string | string[] }[] } }>(`fluent-bit/${file}`).pipeline.filters;
  return filters
    .filter((f) => f.name === 'parser')
    .map((f) => ({ key: f.key_name ?? 'log', parsers: Array.isArray(f.parser) ? f.parser : [f.parser ?? ''] }));
}

/**
 * Runs a record through the parser filters of a pipeline file as Fluent Bit does with
 * `reserve_data: on`: the first parser that matches a step's field replaces that field with the
 * fields it parsed; no match leaves the record as it was. (Not emulated: time_key, which Fluent Bit
 * turns into the record's timestamp; here the time stays a field.)
 */
export function applyParserFilters(file: string, record: Record<string, string | true>, parsers = loadFluentBitParsers()): Record<string, string | true> {
  let rec = record;
  for (const step of pipelineParserSteps(file)) {
    const text = rec[step.key];
    if (typeof text !== 'string') continue;
    for (const name of step.parsers) {
      const p = parsers.get(name);
      if (!p) throw new Error(`${file}: parser ${name} is not defined in fluent-bit/parsers.yaml`);
      const parsed = p.format === 'logfmt' ? parseLogfmt(text) : applyRegexParser(p, text);
      if (!parsed) continue;
      const { [step.key]: _parsedField, ...others } = rec;
      rec = { ...others, ...parsed };
      break;
    }
  }
  return rec;
}

/**
 * One line of /var/log/watchtower/watchtower.log (the tail input's `log` field) -> the record the
 * parser filters of fluent-bit/fluent-bit-rsyslog.yaml make of it; undefined when no parser matched.
 */
export function parseRsyslogLine(line: string, parsers = loadFluentBitParsers()): Record<string, string | true> | undefined {
  const rec = applyParserFilters('fluent-bit-rsyslog.yaml', { log: line }, parsers);
  return 'log' in rec ? undefined : rec;
}

/** A gateway stdout line (the journald MESSAGE) -> the record of fluent-bit/fluent-bit-journald.yaml's parser filters. */
export function parseGatewayLine(line: string, parsers = loadFluentBitParsers()): Record<string, string | true> | undefined {
  const rec = applyParserFilters('fluent-bit-journald.yaml', { MESSAGE: line }, parsers);
  return 'MESSAGE' in rec ? undefined : rec;
}

/** The RFC 5424 datagram docker's syslog driver sends for one stdout line (format rfc5424micro). */
export function dockerSyslogDatagram(line: string, opts: { host?: string; containerId?: string; severity?: number } = {}): string {
  const facilityLocal1 = 17;
  const pri = facilityLocal1 * 8 + (opts.severity ?? 6);
  const ts = new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z'); // microseconds
  const tag = `watchtower/${opts.containerId ?? '0123456789ab'}`;
  return `<${pri}>1 ${ts} ${opts.host ?? 'testhost'} ${tag} 4242 ${tag} - ${line}`;
}
