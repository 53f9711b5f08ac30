/**
 * V8 settings for a gateway process, applied before anything else runs (main imports this first).
 *
 * Young-generation collections run on helper threads by default ("parallel scavenge"). A gateway
 * allocates short-lived objects on every request, so it scavenges often, and when the machine's
 * cores are already busy (cluster workers, the database, SQLite worker processes, the clients)
 * every scavenge waits for its helpers to get a core, so scavenging on the main thread gives more
 * throughput (bench/README.md has the figures). V8 reads this flag at each collection,
 * so setting it at run time takes effect at once. Whoever starts node with `--parallel-scavenge`
 * (or `--no-parallel-scavenge`) on its command line keeps that choice; V8 flags are not allowed
 * in NODE_OPTIONS.
 */
import v8 from 'node:v8';

const SCAVENGE_FLAG = /^--(no-)?parallel[-_]scavenge$/;

/** Whether the command line already chose how to scavenge. */
export function scavengeFlagChosen(execArgv: readonly string[]): boolean {
  return execArgv.some((a) => SCAVENGE_FLAG.test(a));
}

if (!scavengeFlagChosen(process.execArgv)) v8.setFlagsFromString('--no-parallel-scavenge');
