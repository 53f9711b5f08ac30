/**
 * The gateway checks every declared statement on its database before it serves (as `watchtower
 * check` does): a statement the database refuses stops start-up with exit 1 and one config-err
 * record naming each file, endpoint and the database's own error, in a single process and in a
 * cluster's primary; a database that is down only warns, and the gateway serves the rest (the
 * down resource's rows documented as generic objects). New endpoint files on SIGHUP are checked
 * the same way before they are served.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { SecureResourceSettings } from '../../src/config/schema.js';
import { closedPort, pgAvailable, pgTarget, requireOrSkip, uniqueName } from '../helpers/databases.js';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { dropDatabase, fileTarget, seedSampleDatabase } from '../helpers/test-data.js';

const skipPg = requireOrSkip('PostgreSQL', await pgAvailable());

const work = mkdtempSync(join(tmpdir(), 'wt-startup-check-'));
const dbName = uniqueName('wt_startup');
const pg = pgTarget({ db_name: dbName });
const lite = { db_type: 'sqlite', db_sample: true, db_path: join(work, 'lite.db') } as SecureResourceSettings;
const missing = uniqueName('wt_no_table');

beforeAll(async () => {
  const db = new Database(lite.db_path);
  db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)');
  db.exec("INSERT INTO items VALUES (1, 'one')");
  db.close();
  if (!skipPg) await seedSampleDatabase(pg, ['CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)']);
}, 60_000);

afterAll(async () => {
  if (!skipPg) await dropDatabase(pg);
  rmSync(work, { recursive: true, force: true });
});

function select(path: string, rid: string, table: string): Record<string, unknown> {
  return { method: 'GET', path, resources: [rid], statements: [{ sql: `SELECT id, name FROM ${table} ORDER BY id` }] };
}

let files = 0;
/** A gateway config serving `endpoints` (written to a file of their own) on `resources`. */
function configFor(resources: Record<string, SecureResourceSettings>, endpoints: unknown[], extra: Record<string, unknown> = {}) {
  const file = join(work, `endpoints-${++files}.yaml`);
  writeFileSync(file, stringify({ endpoints }));
  const rids = Object.keys(resources);
  return {
    file,
    config: {
      log_level: 'INFO',
      resource_ids: rids,
      resources: Object.fromEntries(rids.map((r) => [r, { db_min_conn_pool_size: 1, db_max_conn_pool_size: 2, db_conn_timeout: 2 }])),
      secure: Object.fromEntries(rids.map((r) => [r, fileTarget(resources[r])])),
      endpoints: [file],
      ...extra,
    },
  };
}

/** Starts a gateway that must not start: resolves with its exit code, or 'started' if it serves after all. */
async function refusedStart(config: Record<string, unknown>): Promise<{ code: number | null | 'started'; gw: GatewayProcess }> {
  const gw = await startGateway({ config, noWait: true });
  // Rejects when the process exits first, or after 20 s of neither.
  const started = gw.waitForLine((l) => l.fields.tag === 'listening', 20_000).then(
    () => true,
    () => false,
  );
  const timer = setTimeout(() => gw.child.kill('SIGKILL'), 25_000);
  try {
    const outcome = started.then((s): Promise<number | null | 'started'> => (s ? Promise.resolve('started') : gw.exited));
    return { code: await Promise.race<number | null | 'started'>([gw.exited, outcome]), gw };
  } finally {
    clearTimeout(timer);
  }
}

describe('the gateway checks declared statements at start-up', () => {
  it('refuses to start when a database refuses a statement, naming file, endpoint and the database error', async () => {
    const resources: Record<string, SecureResourceSettings> = skipPg ? { lite } : { lite, pg };
    const endpoints = [select('/lite/ok', 'lite', 'items'), select('/lite/bad', 'lite', missing)];
    if (!skipPg) endpoints.push(select('/pg/ok', 'pg', 'items'), select('/pg/bad', 'pg', missing));
    const { file, config } = configFor(resources, endpoints);
    const { code, gw } = await refusedStart(config);
    try {
      expect(code).toBe(1);
      const records = gw.parsed();
      expect(records.some((l) => l.fields.tag === 'listening')).toBe(false);
      const err = records.find((l) => l.fields.tag === 'config-err');
      expect(err, gw.lines.join('\n')).toMatchObject({ level: 'ERROR', fields: { keys: 'endpoints' } });
      const msg = err!.fields.msg;
      expect(msg).toContain(`endpoint statements refused by the database, ${skipPg ? 1 : 2} problem(s)`);
      expect(msg).toContain(`${file}: GET /lite/bad: statements[0] on lite: no such table: ${missing}`);
      if (!skipPg) expect(msg).toContain(`${file}: GET /pg/bad: statements[0] on pg: relation "${missing}" does not exist`);
      expect(msg).not.toContain('/ok');
    } finally {
      await gw.stop();
    }
  }, 60_000);

  it('a cluster primary refuses too, before any worker starts', async () => {
    const { file, config } = configFor({ lite }, [select('/lite/bad', 'lite', missing)], { workers: 2 });
    const { code, gw } = await refusedStart(config);
    try {
      expect(code).toBe(1);
      const err = gw.parsed().find((l) => l.fields.tag === 'config-err');
      expect(err?.fields.msg).toContain(`${file}: GET /lite/bad: statements[0] on lite: no such table: ${missing}`);
      expect(new Set(gw.parsed().map((l) => l.pid)).size).toBe(1);
    } finally {
      await gw.stop();
    }
  }, 60_000);

  it('starts with a warning when a database cannot be reached, and serves the others', async () => {
    const port = await closedPort();
    const down = { db_type: 'postgres', db_host: '127.0.0.1', db_port: port, db_name: 'nowhere', db_user: 'postgres' } as SecureResourceSettings;
    const { config } = configFor({ lite, down }, [select('/lite/items', 'lite', 'items'), select('/down/items', 'down', 'items')]);
    const gw = await startGateway({ config });
    try {
      const warning = gw.parsed().find((l) => l.fields.tag === 'config-warn');
      expect(warning, gw.lines.join('\n')).toMatchObject({ level: 'WARNING' });
      expect(warning!.fields.msg).toContain(`resource down: cannot connect to postgres 127.0.0.1:${port}/nowhere`);
      expect(gw.parsed().some((l) => l.fields.tag === 'config-err')).toBe(false);
      expect(await (await fetch(`${gw.url}/lite/items`)).json()).toEqual([{ id: 1, name: 'one' }]);
      expect((await fetch(`${gw.url}/down/items`)).status).toBe(503);
      // Row types: read for the resource that answered; the generic object for the one that did not.
      const doc = (await (await fetch(`${gw.url}/docs/json`)).json()) as {
        paths: Record<string, { get: { responses: Record<string, { content: Record<string, { schema: { items: Record<string, unknown> } }> }> } }>;
      };
      const rowOf = (path: string) => doc.paths[path].get.responses['200'].content['application/json'].schema.items;
      expect(rowOf('/lite/items')).toMatchObject({ type: 'object', properties: { id: { anyOf: [{ type: 'integer' }, { type: 'string' }] }, name: { type: 'string' } } });
      expect(rowOf('/down/items')).toEqual({ type: 'object', additionalProperties: true });
    } finally {
      await gw.stop();
    }
  });

  it('SIGHUP: a set with a statement the database refuses is refused and the running set serves on; a good one serves its row types', async () => {
    const { file, config } = configFor({ lite }, [select('/lite/items', 'lite', 'items')]);
    const gw = await startGateway({ config });
    const outcome = (from: number) => gw.waitForLine((l) => l.fields.tag === 'config-err' || l.fields.tag === 'endpoints-switch', 15_000, from);
    try {
      let from = gw.lines.length;
      writeFileSync(file, stringify({ endpoints: [select('/lite/items', 'lite', 'items'), select('/lite/bad', 'lite', missing)] }));
      gw.signal('SIGHUP');
      const refused = await outcome(from);
      expect(refused.fields.tag).toBe('config-err');
      expect(refused.fields.msg).toContain('endpoint switch refused');
      expect(refused.fields.msg).toContain(`${file}: GET /lite/bad: statements[0] on lite: no such table: ${missing}`);
      expect((await fetch(`${gw.url}/lite/bad`)).status).toBe(404);
      expect((await fetch(`${gw.url}/lite/items`)).status).toBe(200);

      from = gw.lines.length;
      const names = { method: 'GET', path: '/lite/names', resources: ['lite'], statements: [{ sql: 'SELECT name, id * 2 AS twice FROM items' }] };
      writeFileSync(file, stringify({ endpoints: [select('/lite/items', 'lite', 'items'), names] }));
      gw.signal('SIGHUP');
      expect((await outcome(from)).fields.tag).toBe('endpoints-switch');
      expect(await (await fetch(`${gw.url}/lite/names`)).json()).toEqual([{ name: 'one', twice: 2 }]);
      const doc = (await (await fetch(`${gw.url}/docs/json`)).json()) as {
        paths: Record<string, { get: { responses: Record<string, { content: Record<string, { schema: { items: { properties?: Record<string, unknown> } } }> }> } }>;
      };
      const properties = doc.paths['/lite/names'].get.responses['200'].content['application/json'].schema.items.properties;
      expect(Object.keys(properties ?? {})).toEqual(['name', 'twice']);
      expect(properties?.name).toEqual({ type: 'string' });
    } finally {
      await gw.stop();
    }
  });

  it('SIGHUP in a cluster: the primary refuses a set with a statement the database refuses, before replacing any worker', async () => {
    const { file, config } = configFor({ lite }, [select('/lite/items', 'lite', 'items')], { workers: 2 });
    const gw = await startGateway({ config });
    try {
      // Both workers listen (startGateway waited for the first).
      await gw.waitForLine((l) => l.fields.tag === 'listening', 20_000, gw.lines.findIndex((l) => l.includes('tag=listening')) + 1);
      const from = gw.lines.length;
      writeFileSync(file, stringify({ endpoints: [select('/lite/items', 'lite', 'items'), select('/lite/bad', 'lite', missing)] }));
      gw.signal('SIGHUP');
      const refused = await gw.waitForLine((l) => l.fields.tag === 'config-err' || l.fields.tag === 'worker-start', 15_000, from);
      expect(refused.fields.tag).toBe('config-err');
      expect(refused.fields.msg).toContain(`${file}: GET /lite/bad: statements[0] on lite: no such table: ${missing}`);
      expect((await fetch(`${gw.url}/lite/items`)).status).toBe(200);
    } finally {
      await gw.stop();
    }
  });

  it('cluster workers serve the row types too', async () => {
    const { config } = configFor({ lite }, [select('/lite/items', 'lite', 'items')], { workers: 2 });
    const gw = await startGateway({ config });
    try {
      const doc = (await (await fetch(`${gw.url}/docs/json`)).json()) as {
        paths: Record<string, { get: { responses: Record<string, { content: Record<string, { schema: { items: { properties?: Record<string, unknown> } } }> }> } }>;
      };
      expect(doc.paths['/lite/items'].get.responses['200'].content['application/json'].schema.items.properties).toEqual({ id: expect.anything(), name: { type: 'string' } });
    } finally {
      await gw.stop();
    }
  });
});
