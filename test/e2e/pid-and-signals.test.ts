/**
 * Signals reach the gateway the way the README says: `npm start` leaves no shell between npm and
 * the gateway, the pid file names the gateway, SIGUSR1 to that pid reloads (and opens no Node
 * inspector), SIGTERM stops it and removes the pid file. Reloads through the signal: a refused
 * override never puts the file's contents or a value into the log, an oversized one is refused,
 * and the largest accepted one is parsed while requests keep being answered.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { MAX_CONFIG_FILE_BYTES } from '../../src/config/read-file.js';
import { freePort, ROOT, sqliteConfig, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { withSampleEndpoints } from '../helpers/sample-endpoints.js';
import { parseLogLine, type ParsedLine } from '../helpers/logfmt-parse.js';
import { waitFor } from '../helpers/wait.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function readPid(file: string): number | undefined {
  if (!existsSync(file)) return undefined;
  const text = readFileSync(file, 'utf8');
  return /^\d+\n$/.test(text) ? Number(text) : undefined;
}

/** Parent pid from /proc/<pid>/stat (the command name may hold spaces and parentheses). */
function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

describe('npm start, the pid file and signals', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'wt-npm-start-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('npm start runs the gateway with no shell between; SIGUSR1 to the pid-file pid reloads and opens no inspector; SIGTERM removes the pid file', async () => {
    const configFile = join(dir, 'watchtower.yaml');
    const overrideFile = join(dir, 'override.yaml');
    const pidFile = join(dir, 'run', 'watchtower.pid');
    writeFileSync(configFile, stringify(withSampleEndpoints(sqliteConfig(dir))));
    const port = await freePort();
    const npm = spawn('npm', ['start'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? dir,
        npm_config_update_notifier: 'false',
        WT_CONFIG: configFile,
        OVERRIDE_CONFIG_PATH: overrideFile,
        WT_PID_FILE: pidFile,
        HOST: '127.0.0.1',
        PORT: String(port),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so a failed run can kill npm and whatever it started at once.
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    npm.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    npm.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const npmExit = new Promise<number | null>((res) => npm.once('exit', (code) => res(code)));
    const records = (): ParsedLine[] => stdout.split('\n').filter((l) => /^\[\d+\] /.test(l)).map(parseLogLine);
    try {
      const gatewayPid = await waitFor('the pid file', () => readPid(pidFile), { timeout: 20_000 });
      // The pid file names the gateway itself, whose parent is npm: exec replaced the shell.
      expect(gatewayPid).not.toBe(npm.pid);
      expect(readFileSync(`/proc/${gatewayPid}/cmdline`, 'utf8').split('\0')).toContain('dist/main.js');
      expect(parentOf(gatewayPid)).toBe(npm.pid);
      expect((await fetch(`http://127.0.0.1:${port}/health/live`)).status).toBe(200);

      const files = await waitFor('the config-files record', () => records().find((r) => r.fields.tag === 'config-files'), { timeout: 20_000 });
      expect(files.fields).toMatchObject({ config_file: configFile, override_file: overrideFile, override_present: 'false', pid_file: pidFile });
      expect(files.pid).toBe(String(gatewayPid));

      // The README's recipe, literally, with this pid file.
      writeFileSync(overrideFile, 'log_level: WARNING\n');
      const kill = spawn('sh', ['-c', `kill -USR1 $(cat ${pidFile})`], { stdio: 'inherit' });
      expect(await new Promise((res) => kill.once('exit', res))).toBe(0);
      const reload = await waitFor('the config-reload record', () => records().find((r) => r.fields.tag === 'config-reload'));
      expect(reload.fields.changes).toContain('log_level: "INFO" -> "WARNING"');
      expect(reload.pid).toBe(String(gatewayPid));
      expect(await portOpen(9229)).toBe(false);
      expect(stderr).not.toMatch(/Debugger listening/);

      process.kill(gatewayPid, 'SIGTERM');
      expect(await Promise.race([npmExit, sleep(15_000).then(() => 'npm still running')])).toBe(0);
      expect(existsSync(pidFile)).toBe(false);
      expect(stderr).not.toMatch(/Debugger listening/);
    } finally {
      if (npm.exitCode === null) {
        process.kill(-npm.pid!, 'SIGKILL');
        await npmExit;
      }
    }
  }, 60_000);

  it('in cluster mode the pid file names the primary, and SIGUSR1 to it reloads every worker', async () => {
    const gw = await startGateway({ env: { WT_WORKERS: '2' } });
    const pidFile = join(gw.dir, 'watchtower.pid');
    try {
      const pid = await waitFor('the pid file', () => readPid(pidFile), { timeout: 20_000 });
      expect(pid).toBe(gw.child.pid);
      gw.writeOverride({ log_level: 'WARNING' });
      const from = gw.lines.length;
      process.kill(pid, 'SIGUSR1');
      const workers = new Set<string>();
      await gw.waitForLine((l) => {
        if (l.fields.tag === 'config-reload' && l.pid !== String(pid)) workers.add(l.pid);
        return workers.size === 2;
      }, 15_000, from);
      expect(gw.stderr.join('')).not.toMatch(/Debugger listening/);
      process.kill(pid, 'SIGTERM');
      expect(await gw.exited).toBe(0);
      expect(existsSync(pidFile)).toBe(false);
    } finally {
      await gw.stop();
    }
  });

  it('a gateway that cannot start leaves no pid file', async () => {
    const blocker = await startGateway();
    try {
      const second = await startGateway({ noWait: true, env: { PORT: String(blocker.port) } });
      const pidFile = join(second.dir, 'watchtower.pid');
      expect(await second.exited).toBe(1);
      expect(existsSync(pidFile)).toBe(false);
      await second.stop();
    } finally {
      expect(await blocker.stop()).toBe(0);
    }
  });
});

describe('reloading through SIGUSR1', () => {
  let gw: GatewayProcess;
  let pidFile: string;
  beforeAll(async () => {
    gw = await startGateway();
    pidFile = join(gw.dir, 'watchtower.pid');
  });
  afterAll(async () => {
    expect(await gw?.stop()).toBe(0);
    // Removed at a clean exit.
    expect(existsSync(pidFile)).toBe(false);
  });

  it('writes the pid file with the gateway pid and names the files in use at start-up', async () => {
    expect(readFileSync(pidFile, 'utf8')).toBe(`${gw.child.pid}\n`);
    const files = await gw.waitForLine((l) => l.fields.tag === 'config-files');
    expect(files.fields).toMatchObject({ config_file: gw.configFile, override_file: gw.overrideFile, pid_file: pidFile });
  });

  /** Sends SIGUSR1 to the pid in the pid file and resolves with the config-reload or config-err record. */
  async function reloadByPidFile(): Promise<ParsedLine> {
    const from = gw.lines.length;
    process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGUSR1');
    return gw.waitForLine((l) => l.fields.tag === 'config-reload' || l.fields.tag === 'config-err', 15_000, from);
  }

  it('an override symlinked to a file of secrets, or holding a secret value, is refused without a trace of either', async () => {
    const mark = 'Zq9S3cr3t';
    const shadow = join(gw.dir, 'shadow');
    writeFileSync(shadow, `root:$6$${mark}$hash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n`);
    rmSync(gw.overrideFile, { force: true });
    symlinkSync(shadow, gw.overrideFile);
    const fromShadow = await reloadByPidFile();
    expect(fromShadow).toMatchObject({ level: 'ERROR', fields: { tag: 'config-err', file: gw.overrideFile } });
    rmSync(gw.overrideFile);

    gw.writeOverride({ log_level: `ghp_${mark}` });
    expect((await reloadByPidFile()).fields).toMatchObject({ tag: 'config-err', keys: 'log_level' });
    gw.writeOverride({ resources: { sqlite_traffic: { request_slot_timeout: mark } } });
    expect((await reloadByPidFile()).fields).toMatchObject({ tag: 'config-err', keys: 'resources.sqlite_traffic.request_slot_timeout' });

    // Lines are batched for up to 200 ms: once a later request's record is out, so is every earlier line.
    const from = gw.lines.length;
    await (await fetch(`${gw.url}/sqlite-json`)).arrayBuffer();
    await gw.waitForLine((l) => l.fields.tag === 'request-stats', 5000, from);
    expect(gw.lines.join('\n').toLowerCase()).not.toContain(mark.toLowerCase());
    expect(gw.stderr.join('')).toBe('');
  });

  it('refuses an oversized override with a clear record and keeps the running config', async () => {
    gw.writeOverride({ log_level: 'INFO' });
    expect((await reloadByPidFile()).fields.tag).toBe('config-reload');
    writeFileSync(gw.overrideFile, `log_level: ERROR\n${'#'.repeat(MAX_CONFIG_FILE_BYTES)}\n`);
    const refused = await reloadByPidFile();
    expect(refused).toMatchObject({ level: 'ERROR', fields: { tag: 'config-err', file: gw.overrideFile } });
    expect(refused.fields.msg).toBe(`config reload refused, running config unchanged: config file ${gw.overrideFile} is larger than ${MAX_CONFIG_FILE_BYTES} bytes`);
    // Still INFO: a request writes its records.
    const from = gw.lines.length;
    await (await fetch(`${gw.url}/sqlite-json`)).arrayBuffer();
    await gw.waitForLine((l) => l.fields.tag === 'request-stats', 5000, from);
  });

  it('keeps answering requests while it parses the largest accepted override', async () => {
    // A flow list is among the slowest YAML to parse per byte: about a second for 64 KB here.
    const head = 'special_queries_routes_patterns: [';
    const items = Math.floor((MAX_CONFIG_FILE_BYTES - head.length - 2) / 2);
    const text = `${head}${Array.from({ length: items }, () => 'a').join(',')}]\n`;
    expect(text.length).toBeLessThanOrEqual(MAX_CONFIG_FILE_BYTES);
    writeFileSync(gw.overrideFile, text);

    const from = gw.lines.length;
    const latencies: number[] = [];
    let done = false;
    const started = performance.now();
    process.kill(gw.child.pid!, 'SIGUSR1');
    const record = gw.waitForLine((l) => l.fields.tag === 'config-reload' || l.fields.tag === 'config-err', 15_000, from).finally(() => {
      done = true;
    });
    while (!done) {
      const t = performance.now();
      const res = await fetch(`${gw.url}/health/live`, { signal: AbortSignal.timeout(10_000) });
      await res.arrayBuffer();
      latencies.push(performance.now() - t);
    }
    const reloadMs = performance.now() - started;
    const applied = await record;
    expect(applied.fields.tag).toBe('config-reload');
    expect(applied.fields.msg).toBe('config reloaded: 1 key(s) changed');
    const worst = Math.max(...latencies);
    // Requests kept flowing through the whole reload; parsing on the event loop held one request
    // for about the whole reload (one request, 595 ms of a 650 ms reload, with the old loader).
    expect({ requests: latencies.length, worst: Math.round(worst), reloadMs: Math.round(reloadMs) }).toEqual({
      requests: expect.toSatisfy((n: number) => n >= 10),
      worst: expect.toSatisfy((w: number) => w < reloadMs / 2),
      reloadMs: expect.toSatisfy((r: number) => r > 0),
    });
    gw.writeOverride({});
    expect((await reloadByPidFile()).fields.tag).toBe('config-reload');
  });
});
