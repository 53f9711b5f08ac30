/** Every 503 says when to come back: whichever code answered it, with a time that fits the cause. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { buildSettings, setConfig } from '../../src/config/index.js';
import { DatabaseError } from '../../src/errors.js';
import { DEFAULT_RETRY_AFTER_SECONDS } from '../../src/http/error-reply.js';

let app: FastifyInstance;
let shuttingDown = false;

beforeAll(async () => {
  setConfig(
    buildSettings(
      {
        resource_ids: ['sqlite_traffic'],
        resources: { sqlite_traffic: { db_conn_retry_wait_period: 2.5 } },
        secure: { sqlite_traffic: { db_type: 'sqlite', db_path: 'unused.db' } },
      },
      {},
      { env: {} },
    ),
  );
  app = await buildApp({
    acquirer: { has: () => false, acquireNow: () => undefined, acquire: () => Promise.reject(new Error('not used')) },
    readiness: () => ({ ready: false, unavailable: ['sqlite_traffic'] }),
    observer: { requestDone: () => undefined },
    onQuery: () => undefined,
    metricsPlugin: () => undefined,
    isShuttingDown: () => shuttingDown,
    docs: false,
    version: 'test',
  });
  app.get('/down', async () => {
    throw new DatabaseError('could not open a DB connection to resource sqlite_traffic', { resourceId: 'sqlite_traffic', unreachable: true });
  });
  app.get('/broken', async () => {
    throw new DatabaseError('DB query error for resource sqlite_traffic', { resourceId: 'sqlite_traffic' });
  });
  await app.ready();
});

afterAll(async () => {
  await app.close();
});

describe('Retry-After', () => {
  it('an unreachable database: its db_conn_retry_wait_period (rounded up), before which no retry is tried', async () => {
    const res = await app.inject({ url: '/down' });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('3');
  });

  it('a 503 a route sends itself (readiness) gets the default', async () => {
    const res = await app.inject({ url: '/health/ready' });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe(String(DEFAULT_RETRY_AFTER_SECONDS));
  });

  it('shutting down gets the default; a 500 gets none', async () => {
    expect((await app.inject({ url: '/broken' })).headers['retry-after']).toBeUndefined();
    shuttingDown = true;
    try {
      const res = await app.inject({ url: '/down' });
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe(String(DEFAULT_RETRY_AFTER_SECONDS));
    } finally {
      shuttingDown = false;
    }
  });
});
