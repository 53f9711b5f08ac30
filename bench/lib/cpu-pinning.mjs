// The local database server's processes (found by name in /proc), their CPU time, and pinning them
// and the gateways to separate CPUs, so a benchmark can tell the database's CPU from the gateway's
// on a machine where both share the cores (in production the database has its own machine).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { cpuSeconds, processTree } from './processes.mjs';

/** The process names of each server database's daemon (PostgreSQL forks a backend per connection). */
const SERVER_NAMES = { pg: ['postgres'], mysql: ['mariadbd', 'mysqld'] };

/** The pids of `db`'s local server processes; empty for SQLite or a server not found here. */
export function serverPids(db) {
  const names = SERVER_NAMES[db.key];
  if (!names) return [];
  const pids = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (names.includes(readFileSync(`/proc/${entry}/comm`, 'utf8').trim())) pids.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return pids;
}

/** CPU seconds used so far by `db`'s server processes (those alive now: backends come and go). */
export function serverCpuSeconds(db) {
  let total = 0;
  for (const s of cpuSeconds(serverPids(db)).values()) total += s;
  return total;
}

function taskset(cpus, pid) {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

/** Whether pinning can be done here: Linux with taskset, at least two CPUs. */
export function canPin() {
  if (process.platform !== 'linux' || availableParallelism() < 2) return false;
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Pins `db`'s server processes to the last CPU and this process and the gateways (their process
 * trees) to the others; returns the function that gives every one of them all CPUs again, also run
 * if this process exits first.
 */
export function pinApart(db, gatewayPids) {
  const last = availableParallelism() - 1;
  const all = `0-${last}`;
  const server = serverPids(db);
  if (server.length === 0) throw new Error(`${db.key}: no local server process found to pin`);
  const ours = [process.pid, ...gatewayPids.flatMap((pid) => processTree(pid))];
  const restore = () => {
    // Backends forked while pinned inherited it: look again.
    for (const pid of new Set([...server, ...serverPids(db), ...ours])) {
      try {
        taskset(all, pid);
      } catch {
        // exited
      }
    }
    process.off('exit', restore);
  };
  process.on('exit', restore);
  try {
    for (const pid of server) taskset(String(last), pid);
    for (const pid of ours) taskset(last === 1 ? '0' : `0-${last - 1}`, pid);
  } catch (err) {
    restore();
    throw err;
  }
  return restore;
}
