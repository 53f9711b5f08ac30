// A bare Fastify server answering GET /rows with fixed bytes: those a cached declared endpoint of
// the gateway answers (bench/cache.mjs reads them from the gateway first), with the same
// content type. No hooks, logs, metrics or lookups: the floor a cache hit is compared with.
// GET /rows-with-headers adds the other headers a hit carries.
//
// env BENCH_CACHE_BODY: file holding the body; BENCH_CACHE_TYPE: its content type; HOST, PORT.
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';

const body = readFileSync(process.env.BENCH_CACHE_BODY ?? '');
const type = process.env.BENCH_CACHE_TYPE ?? 'application/json; charset=utf-8';

const app = Fastify({ logger: false });
app.get('/rows', (_req, reply) => {
  reply.type(type).send(body);
});
// The same bytes with the headers a cache hit of the gateway sends besides (values of the same
// length): how much of the gap to the gateway is the headers themselves.
const HIT_HEADERS = {
  'x-correlation-id': '0123456789ab',
  'cache-control': 'max-age=3600',
  etag: '"0123456789abcdefghijkl"',
  vary: 'Accept',
  'x-process-time': '0.000',
};
app.get('/rows-with-headers', (_req, reply) => {
  reply.headers(HIT_HEADERS).type(type).send(body);
});
// What the bench's start-up waits for (bench/lib/processes.mjs).
app.get('/health/ready', () => ({ status: 'ready' }));
await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 0) });

const stop = async () => {
  await app.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
