/**
 * Runs the built gateway (dist/main.js) as a real child process on a free loopback port, with its
 * own temporary config, and collects its log lines for assertions.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { parseLogLine, type ParsedLine } from './logfmt-parse.js';
import { DISABLED_SAMPLE_TARGETS, withSampleEndpoints } from './sample-endpoints.js';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const MAIN = join(ROOT, 'dist', 'main.js');

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => res(port));
    });
  });
}

export interface GatewayProcess {
  child: ChildProcess;
  port: number;
  url: string;
  dir: string;
  configFile: string;
  overrideFile: string;
  /** Every stdout line so far. */
  lines: string[];
  stderr: string[];
  parsed(): ParsedLine[];
  /** Resolves with the first line (already seen or future) matching `pred`, or rejects after `timeoutMs`. */
  waitForLine(pred: (l: ParsedLine) => boolean, timeoutMs?: number, from?: number): Promise<ParsedLine>;
  writeOverride(doc: unknown): void;
  /** Writes the override, sends SIGUSR1 and resolves with the config-reload (or config-err) record it causes. */
  reload(doc: unknown): Promise<ParsedLine>;
  signal(sig: NodeJS.Signals): void;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  stop(): Promise<number | null>;
}

export interface StartOptions {
  /**
   * Main config document; a sqlite-only default is used when omitted. Without an `endpoints` key it
   * serves the sample endpoint files of the resources it defines (test/helpers/sample-endpoints.ts).
   */
  config?: Record<string, unknown>;
  env?: Record<string, string>;
  /** Do not wait for the 'listening' record (for start-up failure tests). */
  noWait?: boolean;
  extraArgs?: string[];
  /** Edits the config document once the temporary directory is known (e.g. to place files in it). */
  configPatch?: (config: Record<string, unknown>, dir: string) => void;
}

export function sqliteConfig(dir: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    log_level: 'INFO',
    resource_ids: ['sqlite_traffic'],
    resources: { sqlite_traffic: { db_min_conn_pool_size: 1, db_max_conn_pool_size: 4 } },
    // The other sample resources defined but not enabled, as in the shipped config.
    secure: { sqlite_traffic: { db_type: 'sqlite', db_path: join(dir, 'traffic.db'), db_sample: true }, ...DISABLED_SAMPLE_TARGETS },
    pool_check_interval: 1,
    ...extra,
  };
}

/**
 * Starts a gateway on a free port. The port is free when chosen but another process (a parallel
 * test file) may take it before the gateway binds: a start that fails with EADDRINUSE is retried on
 * a new port, at most twice.
 */
export async function startGateway(opts: StartOptions = {}): Promise<GatewayProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startGatewayOnce(opts);
    } catch (err) {
      if (attempt >= 3 || !(err instanceof Error) || !err.message.includes('EADDRINUSE')) throw err;
    }
  }
}

async function startGatewayOnce(opts: StartOptions): Promise<GatewayProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'wt-gw-'));
  const port = await freePort();
  const configFile = join(dir, 'watchtower.yaml');
  const overrideFile = join(dir, 'override.yaml');
  const doc = structuredClone(opts.config ?? sqliteConfig(dir));
  opts.configPatch?.(doc, dir);
  writeFileSync(configFile, stringify(withSampleEndpoints(doc)));
  const child = spawn(process.execPath, [...(opts.extraArgs ?? []), MAIN], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      WT_CONFIG: configFile,
      OVERRIDE_CONFIG_PATH: overrideFile,
      // Each gateway its own pid file: the default, data/watchtower.pid, is shared by the work tree.
      WT_PID_FILE: join(dir, 'watchtower.pid'),
      HOST: '127.0.0.1',
      PORT: String(port),
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const stderr: string[] = [];
  const waiters = new Set<() => void>();
  let buf = '';
  // For debugging a failed run: WT_TEST_LOG_DIR=<dir> keeps every gateway's records in <dir>/gateway-<port>.log.
  const keep = process.env.WT_TEST_LOG_DIR;
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    if (keep) appendFileSync(join(keep, `gateway-${port}.log`), chunk);
    buf += chunk;
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    lines.push(...parts.filter(Boolean));
    for (const w of waiters) w();
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));
  let stopping = false;
  const exited = new Promise<number | null>((res) =>
    child.once('exit', (code, sig) => {
      // A gateway that dies on its own (a crash, a native fault) must say so, not just stop answering.
      if (!stopping && (sig !== null || (code !== 0 && !opts.noWait))) {
        process.stderr.write(`gateway on port ${port} exited by itself (code ${code}, signal ${sig}); stderr:\n${stderr.join('').slice(-4000)}\nlast records:\n${lines.slice(-10).join('\n')}\n`);
      }
      res(code);
    }),
  );
  let exitCode: number | null | undefined;
  void exited.then((c) => {
    exitCode = c;
    for (const w of waiters) w();
  });

  const gw: GatewayProcess = {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    dir,
    configFile,
    overrideFile,
    lines,
    stderr,
    parsed: () => lines.map(parseLogLine),
    waitForLine(pred, timeoutMs = 10_000, from = 0) {
      return new Promise((res, rej) => {
        const check = () => {
          for (let i = from; i < lines.length; i++) {
            const p = parseLogLine(lines[i]);
            if (pred(p)) {
              cleanup();
              res(p);
              return;
            }
          }
          if (exitCode !== undefined) {
            cleanup();
            rej(new Error(`gateway exited (${exitCode}) before the expected log line; stderr: ${stderr.join('')}\n${lines.slice(-5).join('\n')}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          rej(new Error(`no matching log line within ${timeoutMs} ms; last lines:\n${lines.slice(-10).join('\n')}\nstderr: ${stderr.join('')}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    writeOverride(doc) {
      writeFileSync(overrideFile, typeof doc === 'string' ? doc : stringify(doc));
    },
    async reload(doc) {
      gw.writeOverride(doc);
      const from = lines.length;
      child.kill('SIGUSR1');
      return gw.waitForLine((l) => l.fields.tag === 'config-reload' || l.fields.tag === 'config-err', 5000, from);
    },
    signal(sig) {
      // A test that kills or stops the gateway expects it to exit: nothing to report.
      if (sig === 'SIGKILL' || sig === 'SIGTERM' || sig === 'SIGINT') stopping = true;
      child.kill(sig);
    },
    exited,
    async stop() {
      stopping = true;
      if (exitCode === undefined) {
        child.kill('SIGTERM');
        const from = lines.length;
        // Shutdown may take shutdown_timeout for requests still running (a stream whose statement is
        // being stopped on a loaded machine), then up to 5 s to close connections; past that it hangs.
        const limit = (Number(doc.shutdown_timeout ?? 30) + 10) * 1000;
        const killer = setTimeout(() => {
          // A gateway that does not stop in time is a failure worth explaining: say what it last did.
          const tail = lines.slice(from).filter((l) => !/ tag=(request|request-stats|query-stats) /.test(l)).slice(-20);
          process.stderr.write(`gateway on port ${port} still running ${limit / 1000} s after SIGTERM; killed. Its records since:\n${tail.join('\n')}\n${stderr.join('').slice(-2000)}\n`);
          child.kill('SIGKILL');
        }, limit);
        await exited;
        clearTimeout(killer);
      }
      rmSync(dir, { recursive: true, force: true });
      return exited;
    },
  };
  // Start-up checks every declared statement and warms the pools first: slow on a loaded machine.
  if (!opts.noWait) {
    try {
      await gw.waitForLine((l) => l.fields.tag === 'listening', 40_000);
    } catch (err) {
      await gw.stop();
      throw err;
    }
  }
  return gw;
}
