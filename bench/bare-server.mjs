// A bare Fastify server answering GET /<db>-json with the same SELECT as the gateway route (the
// gateway's own SQL builder), without the gateway's limiter, pool, hooks, logs or metrics. Run as
// a child process by the benchmarks so it gets the same process setup as the gateway.
//
// env BARE_DRIVER:
//   layer  our driver layer (dist/db connectors), BARE_POOL connections opened up front and lent
//          from a plain free-list: the like-for-like baseline the gateway target applies to
//   raw    the database's own client the usual way: better-sqlite3 in-process and synchronous,
//          pg.Pool, mysql2 pool; for information only (and, for SQLite, the limit the gateway's
//          embedded database is measured against: bench/sqlite-limit.mjs)
// With raw SQLite, both routes run the statements of the gateway's own sample endpoints
// (config/endpoints/traffic-sqlite.yaml, their optional filters bound to NULL as the gateway binds
// them), so the limit is measured on the same query; GET /sqlite-psv?limit=N also streams the rows
// as the gateway's psv does (one `a|b|c` line per row, no header) from better-sqlite3's iterator,
// in batches of 500 rows.
// env BARE_DB: JSON { resourceId, dialect, target } (see lib/databases.mjs); HOST, PORT.
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { parse } from 'yaml';
import Fastify from 'fastify';
import { createConnector, toPgPlaceholders } from '../dist/db/index.js';
import { selectTraffic } from '../dist/routes/traffic-sql.js';

const db = JSON.parse(process.env.BARE_DB ?? '{}');
const POOL = Number(process.env.BARE_POOL ?? 4);
const QUERY_TIMEOUT = { timeoutSeconds: 10 };

/** A fixed set of connections lent first come, first served. */
class FreeList {
  constructor(conns) {
    this.free = conns;
    this.waiting = [];
  }
  acquire() {
    const conn = this.free.pop();
    return conn ? Promise.resolve(conn) : new Promise((resolve) => this.waiting.push(resolve));
  }
  release(conn) {
    const next = this.waiting.shift();
    if (next) next(conn);
    else this.free.push(conn);
  }
}

/** @returns {Promise<{ rows: (sql: string, params: unknown[]) => Promise<unknown[]>, close: () => Promise<void> }>} */
async function layerDriver() {
  const connector = createConnector(db.resourceId, db.target);
  const conns = await Promise.all(Array.from({ length: POOL }, (_, i) => connector.connect(i + 1, 10)));
  const pool = new FreeList([...conns]);
  return {
    async rows(sql, params) {
      const conn = await pool.acquire();
      try {
        return (await conn.query(sql, params, QUERY_TIMEOUT)).rows;
      } finally {
        pool.release(conn);
      }
    },
    close: () => Promise.all(conns.map((c) => c.close())).then(() => undefined),
  };
}

/** The SQLite statement of a sample endpoint, as the gateway's declared route runs it. */
function sampleSql(path) {
  const file = new URL('../config/endpoints/traffic-sqlite.yaml', import.meta.url);
  const sql = parse(readFileSync(file, 'utf8')).endpoints.find((e) => e.path === path)?.statements[0].sql.sqlite;
  if (typeof sql !== 'string') throw new Error(`${file.pathname}: no SQLite statement for ${path}`);
  return sql;
}

async function rawDriver() {
  const t = db.target;
  if (t.db_type === 'sqlite') {
    const { default: Database } = await import('better-sqlite3');
    const sqlite = new Database(t.db_path, { readonly: true });
    // The optional filters unset: bound as NULL, as the gateway binds a parameter not given.
    const json = sqlite.prepare(sampleSql('/sqlite-json'));
    // Rows as arrays for the lines (its own statement: raw rows would change the JSON route's).
    const psv = sqlite.prepare(sampleSql('/sqlite-psv')).raw(true);
    return {
      sampleRows: (limit) => json.all({ port: null, from: null, to: null, limit }),
      iterate: (limit) => psv.iterate({ port: null, from: null, to: null, limit }),
      close: async () => sqlite.close(),
    };
  }
  if (t.db_type === 'postgres') {
    const { default: pg } = await import('pg');
    const pool = new pg.Pool({ host: t.db_host, port: t.db_port, database: t.db_name, user: t.db_user, password: t.db_password, max: POOL });
    return { rows: async (sql, params) => (await pool.query(toPgPlaceholders(sql), params)).rows, close: () => pool.end() };
  }
  if (t.db_type === 'mysql') {
    const { default: mysql } = await import('mysql2/promise');
    const pool = mysql.createPool({ host: t.db_host, port: t.db_port, database: t.db_name, user: t.db_user, password: t.db_password, connectionLimit: POOL });
    return { rows: async (sql, params) => (await pool.query(sql, params))[0], close: () => pool.end() };
  }
  throw new Error(`no raw driver for ${t.db_type}`);
}

const driver = process.env.BARE_DRIVER === 'raw' ? await rawDriver() : await layerDriver();
const app = Fastify();
const prefix = { sqlite: 'sqlite', postgres: 'pg', mysql: 'mysql' }[db.dialect];

app.get(`/${prefix}-json`, async (req) => {
  const limit = req.query.limit === undefined ? 10 : Number(req.query.limit);
  if (driver.sampleRows) return driver.sampleRows(limit);
  const { sql, params } = selectTraffic(db.dialect, { limit });
  return driver.rows(sql, params);
});
if (driver.iterate) {
  app.get(`/${prefix}-psv`, (req, reply) => {
    const limit = req.query.limit === undefined ? 10 : Number(req.query.limit);
    const rows = driver.iterate(limit);
    // Batches of lines, so a large limit does not build the whole body (as the gateway streams).
    const body = Readable.from(
      (function* () {
        let batch = '';
        let n = 0;
        for (const row of rows) {
          batch += `${row.join('|')}\n`;
          if (++n === 500) {
            yield batch;
            batch = '';
            n = 0;
          }
        }
        if (batch !== '') yield batch;
      })(),
    );
    return reply.type('text/plain; charset=utf-8').send(body);
  });
}
app.get('/health/ready', async () => ({ status: 'ready' }));

const shutdown = async () => {
  await app.close();
  await driver.close();
  process.exit(0);
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 0) });
