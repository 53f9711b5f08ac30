// The gateway (dist/) wired as src/gateway.ts wires it (resource manager, metrics, logs, response
// cache, the app of src/app.ts with the endpoint files of its config, on the shared server with the
// app's express lane), plus one hand-written route on the same app answering fixed bytes without a
// database: the cached endpoint's own answer, read from a file once the bench has fetched it. This
// route goes through every request hook, record and metric; a repeated hit, from the express lane,
// through the same records and metrics and none of the hooks.
//
// env WT_CONFIG: the config (one resource, `endpoints` naming the bench's endpoint file);
// BENCH_CACHE_BODY: the file the route answers (read at its first request); HOST, PORT.
//
//   GET /bare/rows   the bytes of BENCH_CACHE_BODY as application/json
import { readFileSync } from 'node:fs';
import { serveWiredGateway } from './lib/wired-gateway.mjs';

let body;
await serveWiredGateway({
  cache: true,
  addRoutes: (app) => {
    app.get('/bare/rows', (_req, reply) => {
      body ??= readFileSync(process.env.BENCH_CACHE_BODY ?? '');
      reply.type('application/json; charset=utf-8').send(body);
    });
  },
});
