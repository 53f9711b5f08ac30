/**
 * How failures are reported, through a real gateway process over real PostgreSQL: a duplicate-key
 * insert is counted as a client mistake, not a server-side query error; while the database is down
 * a burst of refused requests writes a bounded number of ERROR records that carry the count of the
 * ones they stand for, and every 503 says when to come back (Retry-After).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SecureResourceSettings } from '../../src/config/schema.js';
import { createConnector } from '../../src/db/index.js';
import { ensureDatabase, seedSampleData } from '../../src/db/sample-data.js';
import { pgAvailable, pgTarget, requireOrSkip, tcpRelay, uniqueName, type TcpRelay } from '../helpers/databases.js';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';

const skip = requireOrSkip('PostgreSQL', await pgAvailable());

async function onDatabase(target: SecureResourceSettings, fn: (c: Awaited<ReturnType<ReturnType<typeof createConnector>['connect']>>) => Promise<void>): Promise<void> {
  const conn = await createConnector('setup', target).connect(0, 10);
  try {
    await fn(conn);
  } finally {
    await conn.close();
  }
}

async function metricValue(gw: GatewayProcess, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && want.every((w) => l.includes(w)));
  if (line === undefined) throw new Error(`metric ${name}${JSON.stringify(labels)} not found`);
  return Number(line.split(' ').pop());
}

describe.skipIf(skip)('failure reporting', () => {
  const db = uniqueName('wt_e2e_fail');
  const target = pgTarget({ db_name: db });
  let relay: TcpRelay;
  let gw: GatewayProcess;

  beforeAll(async () => {
    await ensureDatabase(target);
    await onDatabase(target, async (c) => {
      await seedSampleData(c);
    });
    relay = await tcpRelay(target.db_host, target.db_port);
    const { db_password: _password, ...secure } = { ...target, db_port: relay.port };
    gw = await startGateway({
      config: {
        resource_ids: ['pg_traffic'],
        resources: { pg_traffic: { db_min_conn_pool_size: 1, db_max_conn_pool_size: 4, db_conn_retry_wait_period: 2, db_conn_timeout: 1 } },
        secure: { pg_traffic: secure },
        pool_check_interval: 0.5,
      },
    });
  }, 60_000);

  afterAll(async () => {
    expect(await gw?.stop()).toBe(0);
    await relay?.close();
    await onDatabase({ ...target, db_name: 'postgres' }, (c) => c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`, [], { timeoutSeconds: 30 }).then(() => undefined));
  });

  it('counts a duplicate-key insert (409) as error_type="constraint", not as a server-side "other" error', async () => {
    const row = { date_hour: Date.UTC(2031, 0, 1) / 1000, port: 4242, flows: 1, pkts: 2, bytes: 3 };
    const post = () => fetch(`${gw.url}/pg/traffic`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ rows: [row] }) });
    expect((await post()).status).toBe(201);
    for (let i = 0; i < 3; i++) expect((await post()).status).toBe(409);
    expect(await metricValue(gw, 'wt_query_errors_total', { resource_id: 'pg_traffic', error_type: 'constraint' })).toBe(3);
    expect(await metricValue(gw, 'wt_query_errors_total', { resource_id: 'pg_traffic', error_type: 'other' })).toBe(0);
  });

  it('while the database is down, a burst writes a few ERROR records with counts, and every 503 has Retry-After', { timeout: 60_000 }, async () => {
    const from = gw.lines.length;
    await relay.close(); // the database goes away: open connections are cut, new ones refused
    const statuses: number[] = [];
    const retryAfter = new Set<string | null>();
    const client = async () => {
      for (let i = 0; i < 30; i++) {
        const res = await fetch(`${gw.url}/pg-json?limit=1`);
        await res.arrayBuffer();
        statuses.push(res.status);
        if (res.status === 503) retryAfter.add(res.headers.get('retry-after'));
      }
    };
    await Promise.all(Array.from({ length: 10 }, client));
    const refused = statuses.filter((s) => s >= 500).length;
    expect(statuses.filter((s) => s === 503).length, `statuses: ${statuses.join(',')}`).toBeGreaterThan(250);
    // db_conn_retry_wait_period is 2 s: no earlier retry could get through.
    expect([...retryAfter]).toEqual(['2']);

    // Every refused request is written or counted: at once, the first of each tag; at the interval's
    // end, one record with the count of the others.
    const errors = () => gw.parsed().slice(from).filter((l) => l.level === 'ERROR');
    const represented = () =>
      errors()
        .filter((l) => l.fields.resource_id === 'pg_traffic')
        .reduce((n, l) => n + (l.fields.suppressed === undefined ? 1 : Number(l.fields.suppressed)), 0); // a summary stands for its count
    await expect.poll(represented, { timeout: 15_000, message: 'refused requests written or counted in a summary' }).toBe(refused);
    expect(errors().length, errors().map((l) => `${l.fields.tag} ${l.fields.suppressed}`).join('\n')).toBeLessThanOrEqual(8);

    // /health/ready's own 503 says when to come back too.
    const ready = await fetch(`${gw.url}/health/ready`);
    expect(ready.status).toBe(503);
    expect(ready.headers.get('retry-after')).toBe('5');
  });
});
