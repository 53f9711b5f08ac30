#!/usr/bin/env -S node --max-semi-space-size=2 --heap-growing-percent=50
/**
 * The `watchtower` command: `start` runs the gateway (dist/main.js), `check` validates the config,
 * the endpoint files and every declared statement against its database (as start-up does),
 * `reload` signals a running gateway, `stat` shows what a running gateway is doing, `keys` makes API
 * keys. Exit codes: 0 ok, 1 problems found or failure, 2 usage error (each command's help says more).
 */
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { ConfigError } from './errors.js';

const HELP: Record<string, string> = {
  start:
    'watchtower start\n  Runs the gateway (same as npm start, node dist/main.js); config from WT_CONFIG, OVERRIDE_CONFIG_PATH and the environment.\n' +
    'Exit codes: 0 after a graceful shutdown (SIGTERM, SIGINT), 1 when the config, an endpoint file or a declared\n  statement is refused at start-up or the gateway fails, 2 usage error.',
  check:
    'watchtower check [--replicas N]\n  Loads the config and every endpoint file, then plans each declared statement on its database\n  (EXPLAIN, or prepare where the database has none; executing nothing). Lists every problem; exit 0\n  only when there is none. The gateway runs the same checks at start-up.\n  --replicas N: also reads each database server\'s connection limit (PostgreSQL max_connections less\n  its reserved slots, MySQL/MariaDB max_connections) and prints whether N replicas x workers x\n  db_max_conn_pool_size (added up over the resources on that server) fit; a server they do not fit is a problem.\n' +
    'Exit codes: 0 no problem, 1 problems found (or a limit could not be read), 2 usage error.',
  reload:
    'watchtower reload [--pid N]\n  Sends SIGUSR1 (reload the config) to process N, or to the pid in the config\'s pid_file.\n' +
    'Exit codes: 0 signal sent, 1 no such process or no pid file, 2 usage error.',
  stat:
    'watchtower stat [URL...] [--once] [--json] [--interval SECONDS] [--timeout SECONDS] [--user USER[:PASSWORD]] [--api-key KEY]\n' +
    '  A live view of running gateways, refreshed every interval from their /metrics (URL: the gateway,\n' +
    '  default http://127.0.0.1:8000, or its /metrics URL): per resource the slots in use and waiting,\n' +
    '  connections open, idle and in use, queries per second, p50/p95/p99 query time over the interval,\n' +
    '  errors by kind and the circuit breaker; per endpoint requests per second, p99, 4xx and 5xx per\n' +
    '  second; the top callers by requests and by p99. Several URLs (replicas) are added up; a cluster\n' +
    '  answers for all its workers. Keys: q or Ctrl-C quits.\n' +
    '  --once          print one snapshot as a table (two reads an interval apart) and exit\n' +
    '  --json          the snapshot as JSON (implies --once)\n' +
    '  --interval S    seconds between reads (default 1)\n' +
    '  --timeout S     seconds before a read is given up (default 5)\n' +
    '  --user U[:P]    basic auth for /metrics (default WT_METRICS_USER, password WT_METRICS_PASSWORD)\n' +
    '  --api-key KEY   sent as X-API-Key when auth.metrics_roles guards /metrics (default WT_API_KEY)\n' +
    'Exit codes: 0 quit with q or Ctrl-C, or (--once, --json) every URL read; 1 (--once, --json) a URL\n  could not be read (the others are still shown); 2 usage error (also: the live view without a terminal).',
  keys:
    'watchtower keys create --id ID --roles ROLE[,ROLE...] [--expires DATE]\n  Prints a new API key once, and the line holding its SHA-256 to add under `keys:` in the keys file\n  (auth.api_keys_file); a reload then accepts the key. DATE: ISO 8601, e.g. 2026-12-31 or 2026-12-31T18:00:00Z.\n' +
    'Exit codes: 0 key printed, 2 usage error (a missing or bad option).',
};
const USAGE = `Usage: watchtower <command> [options]

Commands:
  start            run the gateway
  check            check the config, the endpoint files and every declared statement
                   (--replicas N: and whether N replicas fit the databases' connection limits)
  reload [--pid N] make a running gateway reload its config
  stat [URL...]    live view of running gateways (--once, --json: one snapshot)
  keys create      make a new API key (--id, --roles, optional --expires)
  help [command]   show this help, or a command's

Options:
  -h, --help       show help

Exit codes: 0 ok, 1 problems found or failure, 2 usage error.`;

function usageError(message: string): never {
  console.error(`watchtower: ${message}\n\n${USAGE}`);
  process.exit(2);
}

/** Parses a subcommand's options; an unknown one is a usage error naming it. */
function options(cmd: string, args: string[], opts: ParseArgsOptionsConfig = {}): Record<string, string | boolean | undefined> {
  try {
    const { values } = parseArgs({ args, options: { ...opts, help: { type: 'boolean', short: 'h' } }, allowPositionals: false, strict: true });
    return values as Record<string, string | boolean | undefined>;
  } catch (err) {
    usageError(`${cmd}: ${(err as Error).message}`);
  }
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h') {
    console.log(USAGE);
    return cmd === undefined ? 2 : 0;
  }
  switch (cmd) {
    case 'help': {
      const topic = rest[0];
      if (topic !== undefined && !(topic in HELP)) usageError(`unknown command '${topic}'`);
      console.log(topic ? HELP[topic] : USAGE);
      return 0;
    }
    case 'start': {
      if (options(cmd, rest).help) break;
      await import('./main.js');
      return -1;
    }
    case 'check': {
      const values = options(cmd, rest, { replicas: { type: 'string' } });
      if (values.help) break;
      const raw = values.replicas;
      if (typeof raw === 'string' && !/^[1-9][0-9]{0,5}$/.test(raw)) usageError(`check: --replicas must be a whole number from 1 to 999999, not '${raw}'`);
      const { runCheck, printReport } = await import('./cli/check.js');
      return printReport(await runCheck({ replicas: typeof raw === 'string' ? Number(raw) : undefined }), (line) => console.log(line));
    }
    case 'reload': {
      const values = options(cmd, rest, { pid: { type: 'string' } });
      if (values.help) break;
      const raw = values.pid;
      if (typeof raw === 'string' && !/^[1-9][0-9]*$/.test(raw)) usageError(`reload: --pid must be a process id, not '${raw}'`);
      const { sendReload } = await import('./cli/reload.js');
      const error = sendReload(typeof raw === 'string' ? Number(raw) : undefined);
      if (error) {
        console.error(`watchtower reload: ${error}`);
        return 1;
      }
      console.log('reload signal sent');
      return 0;
    }
    case 'stat': {
      const { parseStatArgs, runStat } = await import('./cli/stat.js');
      const parsed = parseStatArgs(rest, process.env);
      if ('error' in parsed) usageError(`stat: ${parsed.error}`);
      if (parsed.help) break;
      if (!parsed.once && !process.stdout.isTTY) usageError('stat: the live view needs a terminal; use --once or --json');
      return runStat(parsed);
    }
    case 'keys': {
      const [sub, ...args] = rest;
      if (sub === '--help' || sub === '-h') break;
      if (sub !== 'create') usageError(`keys: ${sub === undefined ? 'missing subcommand' : `unknown subcommand '${sub}'`} (keys create)`);
      const values = options('keys create', args, { id: { type: 'string' }, roles: { type: 'string' }, expires: { type: 'string' } });
      if (values.help) break;
      if (typeof values.id !== 'string' || typeof values.roles !== 'string') usageError('keys create: --id and --roles are required');
      const { createKeyEntry, printCreated } = await import('./cli/keys.js');
      let created;
      try {
        created = createKeyEntry(values.id, values.roles, typeof values.expires === 'string' ? values.expires : undefined);
      } catch (err) {
        usageError(`keys create: ${(err as Error).message}`);
      }
      printCreated(values.id, created, (line) => console.log(line));
      return 0;
    }
    default:
      usageError(`unknown command '${cmd}'`);
  }
  console.log(HELP[cmd]);
  return 0;
}

main(process.argv.slice(2)).then(
  // -1: `start` keeps running; the gateway decides when and how the process exits.
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    console.error(`watchtower: ${err instanceof ConfigError ? 'config: ' : ''}${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
