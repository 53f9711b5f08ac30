import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { buildSettings, setConfig } from '../../src/config/index.js';
import { AppTimeoutError, DatabaseError, TooManyPendingError, WithDetailsError } from '../../src/errors.js';
import { setLogDestination, setLogLevel } from '../../src/log/index.js';
import { parseLogLine } from '../helpers/logfmt-parse.js';

const lines: string[] = [];
let app: FastifyInstance;
let shuttingDown = false;
const finished: { endpoint: string; status: number }[] = [];

beforeAll(async () => {
  setConfig(
    buildSettings(
      { resource_ids: ['sqlite_traffic'], secure: { sqlite_traffic: { db_type: 'sqlite', db_path: 'unused.db' } } },
      {},
      { env: {} },
    ),
  );
  setLogDestination(new Writable({ write: (c, _e, cb) => (lines.push(...String(c).split('\n').filter(Boolean)), cb()) }));
  setLogLevel('INFO');
  app = await buildApp({
    acquirer: { has: () => false, acquireNow: () => undefined, acquire: () => Promise.reject(new Error('not used')) },
    readiness: () => ({ ready: true, unavailable: [] }),
    observer: { requestDone: (endpoint, status) => finished.push({ endpoint, status }) },
    onQuery: () => undefined,
    metricsPlugin: () => undefined,
    isShuttingDown: () => shuttingDown,
    docs: false,
    version: 'test',
  });
  app.get('/boom', async () => {
    throw new TypeError('cannot read x of undefined');
  });
  app.get('/details', async () => {
    throw new WithDetailsError('state machine broke', { state: 'odd' });
  });
  app.get('/overload', async () => {
    throw new TooManyPendingError('too many pending requests for resource r1', { resourceId: 'r1', retryAfterSeconds: 2.2 });
  });
  app.get('/slow', async () => {
    throw new AppTimeoutError('2-sec timeout waiting for a request slot for resource r1', { kind: 'slot', timeoutSeconds: 2 });
  });
  app.get('/down', async () => {
    throw new DatabaseError('could not open a DB connection to resource r1', { unreachable: true });
  });
  app.get('/bad-sql', async () => {
    throw new DatabaseError('DB query error for resource r1');
  });
  await app.ready();
});
afterAll(async () => app?.close());

describe('error replies', () => {
  it.each([
    ['/overload', 429, 'too many pending requests for resource r1'],
    ['/slow', 504, '2-sec timeout waiting for a request slot for resource r1'],
    ['/down', 503, 'could not open a DB connection to resource r1'],
    ['/bad-sql', 500, 'DB query error for resource r1'],
    ['/details', 500, 'state machine broke'],
    ['/nowhere', 404, 'no route for GET /nowhere'],
  ])('%s answers %i with detail and cid', async (url, status, detail) => {
    const res = await app.inject({ url });
    expect(res.statusCode).toBe(status);
    expect(res.json()).toEqual({ detail, cid: res.headers['x-correlation-id'] });
    expect(res.headers['x-process-time']).toMatch(/^\d+\.\d{3}$/);
  });

  it('rounds Retry-After up to whole seconds', async () => {
    expect((await app.inject({ url: '/overload' })).headers['retry-after']).toBe('3');
  });

  it('hides unexpected errors from the client and logs one traceback record', async () => {
    const from = lines.length;
    const res = await app.inject({ url: '/boom' });
    expect(res.statusCode).toBe(500);
    expect(res.json().detail).not.toMatch(/undefined/);
    const tracebacks = lines.slice(from).map(parseLogLine).filter((l) => l.fields.tag === 'traceback');
    expect(tracebacks).toHaveLength(1);
    expect(tracebacks[0].level).toBe('ERROR');
    expect(tracebacks[0].fields.traceback).toMatch(/^TypeError: cannot read x of undefined \| at /);
    expect(tracebacks[0].fields.cid).toBe(res.headers['x-correlation-id']);
  });

  it('answers 503 with the usual body while shutting down', async () => {
    shuttingDown = true;
    try {
      const res = await app.inject({ url: '/overload' });
      expect(res.statusCode).toBe(503);
      expect(res.json().detail).toBe('server is shutting down');
    } finally {
      shuttingDown = false;
    }
  });

  it('reports unmatched paths under one endpoint label', async () => {
    await app.inject({ url: '/random/path/123' });
    expect(finished.at(-1)).toEqual({ endpoint: 'unmatched', status: 404 });
    await app.inject({ url: '/slow' });
    expect(finished.at(-1)).toEqual({ endpoint: '/slow', status: 504 });
  });
});
