// Starts the built gateway (dist/main.js) as a child process with a temporary config serving one
// database resource. Its log goes to /dev/null, as a production process whose stdout is
// collected elsewhere would cost roughly the same to write.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { secureEntry } from './databases.mjs';
import { removeTempDir, spawnServer, tempDir } from './processes.mjs';

const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));
const ENDPOINTS = fileURLToPath(new URL('../../config/endpoints/', import.meta.url));

/** The sample endpoint file of each sample resource (its /<db>-json and -psv routes are declared there). */
const ENDPOINT_FILE = { sqlite_traffic: 'traffic-sqlite.yaml', pg_traffic: 'traffic-pg.yaml', mysql_traffic: 'traffic-mysql.yaml' };

/**
 * Node options the gateway is launched with (package.json "start", the Dockerfile, the `watchtower`
 * bin): the benchmarks run it as users do. A test keeps the four in step.
 */
export const GATEWAY_NODE_ARGS = ['--max-semi-space-size=2', '--heap-growing-percent=50'];

/** Connections per pool, min = max so every connection is open before the load starts (env BENCH_POOL). */
export const POOL = Number(process.env.BENCH_POOL ?? 4);

/**
 * Pool settings used for the like-for-like comparison with a bare server: a fixed pool of POOL
 * connections that are never retired during the run (the bare free-list never retires either).
 */
export function fixedPool(extra = {}) {
  return { db_min_conn_pool_size: POOL, db_max_conn_pool_size: POOL, db_conn_max_uses: 1_000_000_000, ...extra };
}

/**
 * @param {import('./databases.mjs').BenchDb} db
 * @param {{ label: string, config?: Record<string, unknown>, resource?: Record<string, unknown>, secure?: Record<string, unknown>, nodeArgs?: string[], wrapper?: string[], env?: Record<string, string>, readyTimeoutMs?: number, script?: string }} opts
 *   config: top-level keys (log_level, queries_log_type, ...); resource: keys under resources.<id>;
 *   secure: more keys under secure.<id> (e.g. sqlite_workers);
 *   script: run instead of dist/main.js, with the same config (bench/declared-server.mjs);
 *   nodeArgs: node command-line options before the script, instead of GATEWAY_NODE_ARGS ([]: Node's defaults);
 *   wrapper, env, readyTimeoutMs: see spawnServer.
 */
export async function startGateway(db, opts) {
  const dir = tempDir('wt-bench-gw-');
  const { entry, env } = secureEntry(db);
  const doc = {
    log_level: 'INFO',
    resource_ids: [db.resourceId],
    resources: { [db.resourceId]: opts.resource ?? fixedPool() },
    secure: { [db.resourceId]: { ...entry, ...opts.secure } },
    endpoints: ENDPOINT_FILE[db.resourceId] ? [join(ENDPOINTS, ENDPOINT_FILE[db.resourceId])] : [],
    ...opts.config,
  };
  const configFile = join(dir, 'watchtower.yaml');
  writeFileSync(configFile, stringify(doc));
  try {
    const server = await spawnServer(opts.script ?? MAIN, {
      label: opts.label,
      nodeArgs: opts.nodeArgs ?? GATEWAY_NODE_ARGS,
      wrapper: opts.wrapper,
      readyTimeoutMs: opts.readyTimeoutMs,
      env: { WT_CONFIG: configFile, OVERRIDE_CONFIG_PATH: join(dir, 'override.yaml'), WT_WORKERS: '1', ...env, ...opts.env },
      describe: `config was:\n${stringify(doc)}`,
    });
    return {
      ...server,
      stop: async () => {
        await server.stop();
        removeTempDir(dir);
      },
    };
  } catch (err) {
    removeTempDir(dir);
    throw err;
  }
}
