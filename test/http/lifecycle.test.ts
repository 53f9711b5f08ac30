import { Readable, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { buildSettings, setConfig } from '../../src/config/index.js';
import { setLogDestination } from '../../src/log/index.js';
import { RequestQueries } from '../../src/query/query.js';
import { RequestResources } from '../../src/resources/request-resources.js';

/** What happened, in order, across the requests of a test. */
const events: string[] = [];
let app: FastifyInstance;

/** The statement 'slow' settles when the test calls finishSlow(); 'fail' fails at once. */
let finishSlow: () => void = () => undefined;
const fakeConnection = {
  connId: 1,
  query: (sql: string) => {
    if (sql === 'fail') return Promise.reject(new Error('syntax error'));
    if (sql.startsWith('quick')) {
      events.push(`${sql} sent`);
      // The result arrives in a later callback of the event loop, as a database's would.
      return new Promise((resolve) => setImmediate(() => resolve({ rows: [], rowCount: 0 })));
    }
    events.push('slow-started');
    return new Promise((resolve) => {
      finishSlow = () => {
        events.push('slow-finished');
        resolve({ rows: [], rowCount: 0 });
      };
    });
  },
};

/** Fills `into` as the resource manager would, with a slot and a connection of r1 whose release is recorded. */
function fill(into: RequestResources, tag: string): RequestResources {
  into.begin(() => undefined);
  into.addSlot('r1', { waitSeconds: 0, release: () => events.push(`${tag}:slot-released`) });
  into.addLease('r1', {
    connection: fakeConnection as unknown as ReturnType<RequestResources['connection']>,
    waitSeconds: 0,
    pool: { acquire: () => Promise.reject(new Error('no other connection here')) },
    release: () => events.push(`${tag}:released`),
  });
  into.complete();
  return into;
}

/** What the acquirer does; a test may replace these (each request takes its resources through them). */
let acquireNow: (into: RequestResources) => RequestResources | undefined;
let acquireWaiting: (into: RequestResources) => Promise<RequestResources> = () => Promise.reject(new Error('not used'));

beforeAll(async () => {
  setConfig(buildSettings({ resource_ids: ['r1'], secure: { r1: { db_type: 'sqlite', db_path: 'unused.db' } } }, {}, { env: {} }));
  setLogDestination(new Writable({ write: (_c, _e, cb) => cb() }));
  let n = 0;
  acquireNow = (into) => fill(into, `req${++n}`);
  app = await buildApp({
    acquirer: { has: () => true, acquireNow: (_ids, into) => acquireNow(into), acquire: (_ids, into) => acquireWaiting(into) },
    readiness: () => ({ ready: true, unavailable: [] }),
    observer: { requestDone: (endpoint) => events.push(`done ${endpoint}`) },
    onQuery: () => undefined,
    metricsPlugin: () => undefined,
    isShuttingDown: () => false,
    docs: false,
    version: 'test',
  });
  // Runs once the response is written (its 'finish'), before the request's end work ('close').
  app.addHook('onResponse', (_req, _reply, done) => {
    events.push('written');
    done();
  });
  app.get('/json', { config: { resources: ['r1'] } }, async () => ({ ok: true }));
  app.get('/stream', { config: { resources: ['r1'] } }, async (req, reply) => {
    // A stream still reading from the database: the request registers its cancellation.
    req.wt.resources?.addCleanup(async () => undefined);
    let i = 0;
    const body = new Readable({
      read() {
        if (i < 3) this.push(`row${i++}\n`);
        else {
          events.push('stream-end');
          this.push(null);
        }
      },
    });
    return reply.type('text/plain').send(body);
  });
  app.get('/plain', async () => ({ ok: true }));
  app.get<{ Querystring: { tag: string } }>(
    '/handoff',
    {
      config: { resources: ['r1'] },
      onSend: (req, _reply, payload, done) => {
        events.push(`${req.query.tag} reply`);
        done(null, payload);
      },
    },
    async (req) => {
      const q = new RequestQueries(req.wt, () => undefined);
      await q.rows('r1', `quick ${req.query.tag}`, []);
      await q.release();
      return { ok: true };
    },
  );
  app.get('/two', { config: { resources: ['r1'] } }, async (req) => {
    const q = new RequestQueries(req.wt, () => undefined);
    await Promise.all([q.rows('r1', 'slow', []), q.rows('r1', 'fail', [])]);
    return { unreachable: true };
  });
  await app.ready();
});
afterAll(async () => app?.close());

describe('request lifecycle', () => {
  it('gives a complete response’s resources back before the response is written, exactly once', async () => {
    events.length = 0;
    const res = await app.inject({ method: 'GET', url: '/json' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-process-time']).toMatch(/^\d+\.\d{3}$/);
    await new Promise((r) => setImmediate(r));
    expect(events).toEqual(['req1:released', 'req1:slot-released', 'written', 'done /json']);
  });

  it('keeps a stream’s resources until the stream has ended', async () => {
    events.length = 0;
    const res = await app.inject({ method: 'GET', url: '/stream' });
    expect(res.body).toBe('row0\nrow1\nrow2\n');
    await new Promise((r) => setImmediate(r)); // the response's close event follows its end
    expect(events.indexOf('stream-end')).toBeGreaterThanOrEqual(0);
    expect(events.filter((e) => e.endsWith(':released'))).toHaveLength(1);
    expect(events.findIndex((e) => e.endsWith(':released'))).toBeGreaterThan(events.indexOf('written'));
  });

  it('answers a failed statement at once but keeps the resources until a statement still running has ended', async () => {
    events.length = 0;
    const res = await app.inject({ method: 'GET', url: '/two' });
    expect(res.statusCode).toBe(500);
    await new Promise((r) => setTimeout(r, 20));
    expect(events.some((e) => e.endsWith(':released'))).toBe(false);
    finishSlow();
    await new Promise((r) => setImmediate(r));
    const released = events.findIndex((e) => e.endsWith(':released'));
    expect(released).toBeGreaterThan(events.indexOf('slow-finished'));
  });

  it('writes a reply after the other callbacks of its loop turn, so the statements they let in go first', async () => {
    events.length = 0;
    // A holds its resources at once. B waits for resources that another request gives back in the
    // callback right after the one delivering A's result: the same loop turn, as under load.
    let handOver: () => void = () => undefined;
    acquireWaiting = (into) => new Promise((resolve) => (handOver = () => resolve(fill(into, 'B'))));
    const saved = acquireNow;
    let first = true;
    acquireNow = (into) => {
      if (!first) return undefined;
      first = false;
      return fill(into, 'A');
    };
    const query = fakeConnection.query;
    fakeConnection.query = (sql: string) => {
      const result = query(sql);
      if (sql === 'quick A') setImmediate(() => handOver());
      return result;
    };
    try {
      const [a, b] = await Promise.all([app.inject({ url: '/handoff?tag=A' }), app.inject({ url: '/handoff?tag=B' })]);
      expect([a.statusCode, b.statusCode]).toEqual([200, 200]);
    } finally {
      acquireNow = saved;
      fakeConnection.query = query;
    }
    expect(events.filter((e) => e.endsWith(' sent') || e.endsWith(' reply'))).toEqual(['quick A sent', 'quick B sent', 'A reply', 'B reply']);
  });

  it('acquires nothing for a route that declares no resources', async () => {
    events.length = 0;
    await app.inject({ method: 'GET', url: '/plain' });
    expect(events).toEqual(['written', 'done /plain']);
  });
});
