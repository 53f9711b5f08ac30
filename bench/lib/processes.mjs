// Child processes for the load benchmarks: spawn a Node server on a free loopback port, wait
// until it answers /health/ready, read the memory and CPU of its whole process tree from /proc,
// and make sure every process and temp directory a benchmark made is gone when the run ends
// (even on failure or Ctrl-C).
import { spawn, execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';

/** @typedef {{ pid: number, url: string, port: number, stop: () => Promise<void> }} ServerProcess */

/** Children started through spawnServer() and not stopped yet. */
const live = new Set();
/** Temp directories from tempDir() not removed yet. */
const dirs = new Set();

/** A new temp directory, removed by removeTempDir() or at the latest by cleanUp(). */
export function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(dir);
  return dir;
}

export function removeTempDir(dir) {
  rmSync(dir, { recursive: true, force: true });
  dirs.delete(dir);
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts `node [nodeArgs] <script>` with `env` (plus HOST/PORT), stdout to /dev/null, stderr kept (last 4 KB)
 * for error messages. Resolves once GET /health/ready answers 200. `wrapper` runs node under
 * another program (for example `['valgrind', '--tool=callgrind', ...]`); the pid is then that program's.
 * @param {string} script
 * @param {{ env?: Record<string, string>, nodeArgs?: string[], wrapper?: string[], label: string, describe?: string, readyTimeoutMs?: number }} opts
 * @returns {Promise<ServerProcess>}
 */
export async function spawnServer(script, opts) {
  const port = await freePort();
  const devNull = openSync('/dev/null', 'w');
  const [command, ...args] = [...(opts.wrapper ?? []), process.execPath, ...(opts.nodeArgs ?? []), script];
  const child = spawn(command, args, {
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: String(port), ...opts.env },
    stdio: ['ignore', devNull, 'pipe'],
  });
  closeSync(devNull);
  live.add(child);
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr = (stderr + d).slice(-4096)));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  exited.then(() => live.delete(child));

  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  };
  try {
    await waitReady(url, exited, opts.readyTimeoutMs ?? 30_000);
  } catch (err) {
    await stop();
    const hint = opts.describe ? `\n${opts.describe}` : '';
    throw new Error(`${opts.label}: ${err.message}${stderr ? `\nstderr: ${stderr.trim()}` : ''}${hint}`);
  }
  return { pid: child.pid, url, port, stop };
}

async function waitReady(url, exited, timeoutMs) {
  let gone;
  exited.then((r) => (gone = r));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (gone) throw new Error(`exited during start-up (code ${gone.code}, signal ${gone.signal})`);
    try {
      const res = await fetch(`${url}/health/ready`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`not ready within ${timeoutMs} ms`);
}

/** pid -> parent pid for every process we can see. */
function parentMap() {
  const parents = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Fields after "(comm)": state ppid ...; comm may contain spaces or parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(Number(name), ppid);
    } catch {
      // exited while we looked
    }
  }
  return parents;
}

/** `root` and all its live descendants. */
export function processTree(root) {
  const parents = parentMap();
  const tree = [root];
  for (let i = 0; i < tree.length; i++) {
    for (const [pid, ppid] of parents) if (ppid === tree[i]) tree.push(pid);
  }
  return tree;
}

/** Sum of VmRSS (bytes) over `pids`; processes that vanished count 0. */
export function rssBytes(pids) {
  let total = 0;
  for (const pid of pids) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) total += Number(m[1]) * 1024;
    } catch {
      // exited
    }
  }
  return total;
}

/**
 * Sum of PSS (bytes) over `pids`: resident memory with each shared page split among the processes
 * sharing it, so a tree of forked workers is not counted once per worker for the pages they share.
 * Processes that vanished count 0.
 */
export function pssBytes(pids) {
  let total = 0;
  for (const pid of pids) {
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
      if (m) total += Number(m[1]) * 1024;
    } catch {
      // exited
    }
  }
  return total;
}

let ticks;
/** Clock ticks per second of /proc/<pid>/stat times. */
function clockTicks() {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

/** User and system CPU seconds from a /proc stat file (utime, stime); throws once it is gone. */
function statCpu(path) {
  const stat = readFileSync(path, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]) / clockTicks(), system: Number(f[12]) / clockTicks() };
}

/** User + system CPU seconds used so far by each of `pids`, as a Map (vanished ones omitted). */
export function cpuSeconds(pids) {
  const out = new Map();
  for (const pid of pids) {
    try {
      const { user, system } = statCpu(`/proc/${pid}/stat`);
      out.set(pid, user + system);
    } catch {
      // exited
    }
  }
  return out;
}

/** User and system CPU seconds used so far by the main thread of `pid` alone (zeros once it exited). */
export function mainThreadCpu(pid) {
  try {
    return statCpu(`/proc/${pid}/task/${pid}/stat`);
  } catch {
    return { user: 0, system: 0 };
  }
}

/**
 * Kills every process this benchmark process started that is still running (the servers started
 * here and anything else below this process, such as a module that manages its own children),
 * then removes the temp directories left.
 */
export function cleanUp() {
  for (const child of live) child.kill('SIGKILL');
  for (const pid of processTree(process.pid).slice(1)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const dir of dirs) removeTempDir(dir);
}
