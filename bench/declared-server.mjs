// The gateway (dist/) wired as src/gateway.ts wires it (resource manager, metrics, logs, the app of
// src/app.ts with the endpoint files of its config), plus hand-written code routes added to the same
// app: the declared endpoints of bench/declared.mjs against routes written as src/routes/traffic.ts
// writes its own, in one process and through the same hooks, limiter, pool and query runner.
//
// env WT_CONFIG: the config (one resource, `endpoints` naming the bench's endpoint file);
// BENCH_DECL_SQL: JSON { rows, stream }, the named-placeholder SQL of the declared endpoints for
// this database, which the code routes run too; HOST, PORT.
//
//   GET /code/rows?port=&limit=    the rows as JSON, like /<db>-json of src/routes/traffic.ts
//   GET /code/stream?limit=        the rows streamed as psv, like /<db>-psv of src/routes/traffic.ts
import { Readable } from 'node:stream';
import { config } from '../dist/config/index.js';
import { compileNamed } from '../dist/endpoints/placeholders.js';
import { nativeJsonSerializer } from '../dist/http/schemas.js';
import { recordQuery } from '../dist/metrics/bind.js';
import { RequestQueries } from '../dist/query/query.js';
import { serveWiredGateway } from './lib/wired-gateway.mjs';

const sql = JSON.parse(process.env.BENCH_DECL_SQL ?? '{}');
const int = (minimum, maximum, extra = {}) => ({ type: 'integer', minimum, maximum, ...extra });

/** PSV as src/routes/traffic.ts writes it: fields joined by '|', about 16 KB a chunk. */
async function* psvChunks(rows) {
  let chunk = '';
  let columns;
  for await (const row of rows) {
    columns ??= Object.keys(row);
    let line = '';
    for (let i = 0; i < columns.length; i++) {
      const v = row[columns[i]];
      line += (i > 0 ? '|' : '') + (v === null || v === undefined ? '' : String(v));
    }
    chunk += line + '\n';
    if (chunk.length >= 16_384) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk.length > 0) yield chunk;
}

await serveWiredGateway({
  addRoutes: (app, { rid, target, metrics }) => {
    // The SQL with `?` placeholders, compiled once as a hand-written route would hold it.
    const rowsSql = compileNamed(sql.rows, target.db_type);
    const streamSql = compileNamed(sql.stream, target.db_type);
    const queries = (req) => new RequestQueries(req.wt, (ev) => recordQuery(metrics, ev), config);

    app.get(
      '/code/rows',
      {
        config: { resources: [rid] },
        serializerCompiler: nativeJsonSerializer,
        schema: {
          querystring: { type: 'object', additionalProperties: false, properties: { port: int(1, 65535), limit: int(1, 10000, { default: 10 }) } },
          response: { 200: { type: 'array', items: { type: 'object', additionalProperties: true } } },
        },
      },
      async (req) => {
        const q = queries(req);
        const rows = await q.rows(rid, rowsSql.sql, rowsSql.names.map((n) => req.query[n] ?? null));
        await q.release();
        return rows;
      },
    );

    app.get(
      '/code/stream',
      {
        config: { resources: [rid] },
        schema: { querystring: { type: 'object', additionalProperties: false, properties: { limit: int(1, 10_000_000, { default: 10 }) } } },
      },
      async (req, reply) => {
        const rows = await queries(req).stream(rid, streamSql.sql, streamSql.names.map((n) => req.query[n] ?? null));
        reply.type('text/plain; charset=utf-8');
        return reply.send(Readable.from(psvChunks(rows), { objectMode: false }));
      },
    );
  },
});
