// Starts bench/bare-server.mjs (the baseline the gateway is compared with) as a child process.
import { fileURLToPath } from 'node:url';
import { POOL } from './gateway.mjs';
import { spawnServer } from './processes.mjs';

const BARE = fileURLToPath(new URL('../bare-server.mjs', import.meta.url));

/**
 * @param {import('./databases.mjs').BenchDb} db
 * @param {'layer' | 'raw'} driver  layer: our driver layer (the like-for-like baseline); raw: the database's own client
 * @param {{ wrapper?: string[], env?: Record<string, string>, readyTimeoutMs?: number }} [opts] see spawnServer
 */
export function startBare(db, driver, opts = {}) {
  return spawnServer(BARE, {
    label: `bare server (${driver}, ${db.key})`,
    wrapper: opts.wrapper,
    readyTimeoutMs: opts.readyTimeoutMs,
    env: {
      BARE_DRIVER: driver,
      BARE_POOL: String(POOL),
      BARE_DB: JSON.stringify({ resourceId: db.resourceId, dialect: db.dialect, target: db.target }),
      ...opts.env,
    },
  });
}
