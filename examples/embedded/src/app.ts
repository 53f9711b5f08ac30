/**
 * A Fastify app of its own that embeds WatchTower. The plugin serves the endpoints declared in
 * config/endpoints/ (and /metrics, /health, /docs); the app adds one route in code, which declares
 * the resource it holds and runs its statement through `req.db`: it gets the same request slots,
 * pool, query timeout, log records and metrics as the declared endpoints.
 */
import Fastify from 'fastify';
import { fastifyOptions, loadConfig, NotFoundError, watchtower } from 'watchtower';

// The gateway's config files: WT_CONFIG (default config/watchtower.yaml), OVERRIDE_CONFIG_PATH.
const settings = loadConfig();
// Options only the constructor takes: WatchTower's 503 while closing, body limit, early errors, server timeouts.
const app = Fastify({ ...fastifyOptions(settings) });
// Awaited before any route that declares resources is added: the plugin's hooks must see it.
await app.register(watchtower, { config: settings });

interface SummaryQuery {
  port: number;
}

app.get<{ Querystring: SummaryQuery }>(
  '/summary',
  {
    config: { resources: ['traffic'] },
    schema: {
      summary: 'Totals of one port over every hour recorded',
      tags: ['traffic'],
      querystring: {
        type: 'object',
        required: ['port'],
        additionalProperties: false,
        properties: { port: { type: 'integer', minimum: 1, maximum: 65535, description: 'TCP port' } },
      },
    },
  },
  async (req) => {
    const db = req.db;
    // `?` placeholders on every database; the resource's query timeout applies.
    const [totals] = await db.rows(
      'traffic',
      'SELECT count(*) AS hours, CAST(sum(flows) AS BIGINT) AS flows, CAST(sum(bytes) AS BIGINT) AS bytes FROM tcp_hourly WHERE port = ?',
      [req.query.port],
    );
    // Done with the database: the connection goes back before the reply is written.
    await db.release();
    if (Number(totals.hours) === 0) throw new NotFoundError(`no traffic recorded for port ${req.query.port}`);
    return { port: req.query.port, ...totals };
  },
);

// app.close() answers new requests 503, lets those in flight finish, then closes the pools.
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}

const address = await app.listen({ host: settings.host, port: settings.port });
console.log(`embedded example listening on ${address}`);
