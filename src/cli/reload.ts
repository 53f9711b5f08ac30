/** `watchtower reload`: sends SIGUSR1 (reload the config) to a running gateway. */
import { initConfig } from '../config/index.js';
import { readPidFile } from '../pid-file.js';

/** Signals `pid`, or the pid the config's pid_file holds; returns an error message or undefined. */
export function sendReload(pid: number | undefined): string | undefined {
  let target = pid;
  if (target === undefined) {
    const file = initConfig().pid_file;
    if (!file) return 'no --pid given and the config sets no pid_file';
    target = readPidFile(file);
    if (target === undefined) return `no --pid given and pid file ${file} holds no pid (is the gateway running?)`;
  }
  try {
    process.kill(target, 'SIGUSR1');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ESRCH' ? `no process with pid ${target}` : `cannot signal pid ${target}: ${(err as Error).message}`;
  }
  return undefined;
}
