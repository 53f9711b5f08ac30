/**
 * Start-up readiness: the gateway starts listening only once every pool has its minimum open, so a
 * burst right after start-up finds connections instead of waiting for them all to be opened at once;
 * a database that is down does not hold start-up up.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { closedPort } from '../helpers/databases.js';
import { sqliteConfig, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { parseExposition, sumOf } from '../metrics/exposition.js';

let gw: GatewayProcess | undefined;

afterEach(async () => {
  const stopped = gw;
  gw = undefined;
  // A clean exit on SIGTERM, whatever its databases did.
  if (stopped) expect(await stopped.stop()).toBe(0);
});

async function openConnections(g: GatewayProcess, rid: string): Promise<number> {
  return sumOf(parseExposition(await (await fetch(`${g.url}/metrics`)).text()), 'wt_open_connections', { resource_id: rid });
}

describe('start-up', () => {
  it('listens only once the minimum SQLite connections are open', async () => {
    gw = await startGateway({
      configPatch: (cfg, dir) => Object.assign(cfg, sqliteConfig(dir, { resources: { sqlite_traffic: { db_min_conn_pool_size: 3, db_max_conn_pool_size: 6 } } })),
    });
    expect(await openConnections(gw, 'sqlite_traffic')).toBeGreaterThanOrEqual(3);
  });

  it('does not wait for a database that is down: it listens after the first failed attempt', async () => {
    const port = await closedPort();
    const started = Date.now();
    gw = await startGateway({
      configPatch: (cfg) => {
        Object.assign(cfg, { resource_ids: ['sqlite_traffic', 'pg_traffic'] });
        Object.assign(cfg.resources as object, { pg_traffic: { db_min_conn_pool_size: 2, db_conn_timeout: 20 } });
        Object.assign(cfg.secure as object, { pg_traffic: { db_type: 'postgres', db_host: '127.0.0.1', db_port: port, db_name: 'none', db_user: 'none' } });
      },
    });
    // Far below the 20 s connect timeout: a refused connection ends the wait at once.
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(await openConnections(gw, 'pg_traffic')).toBe(0);
    expect((await fetch(`${gw.url}/sqlite-json`)).status).toBe(200);
  });
});
