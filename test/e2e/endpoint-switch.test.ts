/**
 * SIGHUP serves the endpoint files as they are now, without dropping a request. A real gateway
 * process (SQLite, and PostgreSQL when it runs) under continuous load from keep-alive and
 * one-request-per-connection clients: its endpoint file gains an endpoint, loses one and changes
 * one's SQL, then SIGHUP. Every request is answered 200, a request that was inside the old app
 * finishes there, kept-alive connections go on to the new app, and the old SQL is never answered
 * again. A broken file is then refused with a config-err record while the previous set serves on.
 * In a cluster the primary refuses a broken file before restarting any worker.
 */
import { writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { Agent, request } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { pgAvailable, pgTarget, requireOrSkip } from '../helpers/databases.js';
import { sqliteConfig, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import type { ParsedLine } from '../helpers/logfmt-parse.js';
import { fileTarget } from '../helpers/test-data.js';
import { waitFor } from '../helpers/wait.js';

const skipPg = requireOrSkip('PostgreSQL', await pgAvailable());

const RID = 'sw_db';
const FILE = 'switch.yaml';

/** One slow statement per database: about 2 s on an idle machine, longer on a busy one. */
const SLOW_SQL = {
  sqlite: 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < :n) SELECT count(*) AS n FROM c',
  postgres: 'SELECT :n::bigint AS n FROM pg_sleep(2)',
};
const SLOW_N = 16_000_000;

const endpoint = (path: string, sql: unknown, params?: Record<string, unknown>) => ({ method: 'GET', path, resources: [RID], statements: [{ sql }], result: 'one', ...(params ? { params } : {}) });
const slow = endpoint('/sw/slow', SLOW_SQL, { n: { type: 'integer', minimum: 1, maximum: 100_000_000, required: true } });

/** Before: /sw/version answers 1 and /sw/gone exists. */
const V1 = { endpoints: [endpoint('/sw/version', 'SELECT 1 AS version'), endpoint('/sw/gone', "SELECT 'gone' AS what"), slow] };
/** After: /sw/version answers 2, /sw/added is new, /sw/gone is no more. */
const V2 = { endpoints: [endpoint('/sw/version', 'SELECT 2 AS version'), endpoint('/sw/added', "SELECT 'added' AS what"), slow] };
/** Fails its checks: a placeholder without a param. */
const BROKEN = { endpoints: [endpoint('/sw/version', 'SELECT 3 AS version WHERE 1 = :nope')] };

/** The gateway's config in `dir`, where its SQLite database (empty: the statements need no table) is made. */
function configFor(dir: string, db: 'sqlite' | 'postgres', extra: Record<string, unknown> = {}): Record<string, unknown> {
  const dbPath = join(dir, 'switch.db');
  if (db === 'sqlite' && dir) new Database(dbPath).close();
  const secure = db === 'sqlite' ? { db_type: 'sqlite', db_sample: true, db_path: dbPath } : fileTarget(pgTarget());
  return {
    ...sqliteConfig(dir),
    resource_ids: [RID],
    // Room for the load, the slow request and a queue: no answer here may be a 429 or 504.
    resources: { [RID]: { db_min_conn_pool_size: 1, db_max_conn_pool_size: 6, max_pending_requests: 100, request_slot_timeout: 20, db_default_query_timeout: 60 } },
    secure: { [RID]: secure },
    endpoints: [join(dir, FILE)],
    shutdown_timeout: 20,
    ...extra,
  };
}

function writeEndpoints(gw: { dir: string }, doc: unknown): void {
  writeFileSync(join(gw.dir, FILE), stringify(doc));
}

interface Answer {
  status?: number;
  body?: string;
  error?: string;
  /** Which connection carried it (numbered as the client saw them). */
  socket: number;
  keepAlive: boolean;
  started: number;
  ended: number;
}

const socketIds = new WeakMap<Socket, number>();
let nextSocket = 0;

function get(port: number, path: string, agent: Agent | false, cid?: string): Promise<Answer> {
  return new Promise((resolve) => {
    const started = performance.now();
    let socket = -1;
    let settled = false;
    const done = (a: Omit<Answer, 'socket' | 'keepAlive' | 'started' | 'ended'>) => {
      if (settled) return;
      settled = true;
      resolve({ ...a, socket, keepAlive: agent !== false, started, ended: performance.now() });
    };
    const headers: Record<string, string> = agent === false ? { Connection: 'close' } : {};
    if (cid) headers['X-Correlation-ID'] = cid;
    const req = request({ host: '127.0.0.1', port, path, agent, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => done({ status: res.statusCode, body }));
      res.on('error', (err) => done({ error: err.message }));
    });
    req.on('socket', (s: Socket) => {
      if (!socketIds.has(s)) socketIds.set(s, nextSocket++);
      socket = socketIds.get(s)!;
    });
    req.setTimeout(30_000, () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', (err) => done({ error: `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}` }));
    req.end();
  });
}

/**
 * Keep-alive clients (one connection each, reused) and clients opening a connection per request,
 * each looping over `paths` until stop() (or 60 s, or 3000 requests each, whichever comes first).
 */
function startLoad(port: number, paths: string[], keepAlive: number, perRequest: number) {
  const answers: Answer[] = [];
  let stopped = false;
  const deadline = Date.now() + 60_000;
  const agents: Agent[] = [];
  const loop = async (agent: Agent | false, offset: number) => {
    for (let i = 0; i < 3000 && !stopped && Date.now() < deadline; i++) answers.push(await get(port, paths[(i + offset) % paths.length], agent));
  };
  const loops: Promise<void>[] = [];
  for (let c = 0; c < keepAlive; c++) {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    agents.push(agent);
    loops.push(loop(agent, c));
  }
  for (let c = 0; c < perRequest; c++) loops.push(loop(false, c));
  return {
    answers,
    async stop(): Promise<Answer[]> {
      stopped = true;
      await Promise.all(loops);
      for (const a of agents) a.destroy();
      return answers;
    },
  };
}

const failures = (answers: Answer[]) => answers.filter((a) => a.status !== 200).map((a) => a.error ?? `${a.status} ${a.body}`);
const versionOf = (a: Answer) => (JSON.parse(a.body!) as { version: number }).version;

function linesFrom(gw: GatewayProcess, from: number, pred: (l: ParsedLine) => boolean): ParsedLine[] {
  return gw.parsed().slice(from).filter(pred);
}

let gw: GatewayProcess | undefined;
afterEach(async () => {
  await gw?.stop();
  gw = undefined;
});

describe.each([
  { db: 'sqlite' as const, skip: false },
  { db: 'postgres' as const, skip: skipPg },
])('SIGHUP in a single process ($db)', ({ db, skip }) => {
  it.skipIf(skip)('switches to the new endpoints under load with no failed request, drains the old app, refuses a broken file, then shuts down', async () => {
    gw = await startGateway({
      config: {},
      // Passwords come from the environment only.
      env: pgTarget().db_password ? { [`${RID}__db_password`]: pgTarget().db_password } : {},
      configPatch: (doc, dir) => {
        Object.assign(doc, configFor(dir, db));
        writeFileSync(join(dir, FILE), stringify(V1));
      },
    });
    const { port } = gw;
    expect(versionOf(await get(port, '/sw/version', false))).toBe(1);
    expect((await get(port, '/sw/gone', false)).status).toBe(200);
    expect((await get(port, '/sw/added', false)).status).toBe(404);

    // Load: 3 keep-alive clients and 3 opening a connection per request.
    const load = startLoad(port, ['/sw/version', '/sw/version', '/health/live'], 3, 3);
    await waitFor('load under way', () => load.answers.length >= 60, { timeout: 20_000 });

    // A slow request, inside the old app when the switch comes.
    const fromSlow = gw.lines.length;
    const slowAnswer = get(port, `/sw/slow?n=${SLOW_N}`, false, 'slow-before-switch');
    let slowDone = false;
    void slowAnswer.then(() => {
      slowDone = true;
    });
    await gw.waitForLine((l) => l.fields.tag === 'request' && l.fields.cid === 'slow-before-switch', 10_000, fromSlow);

    writeEndpoints(gw, V2);
    const fromHup = gw.lines.length;
    const hupAt = performance.now();
    gw.signal('SIGHUP');
    const switched = await gw.waitForLine((l) => l.fields.tag === 'endpoints-switch' && l.fields.endpoints !== undefined, 15_000, fromHup);
    const switchSeenAt = performance.now();
    expect(switched.level).toBe('INFO');
    expect(switched.fields).toMatchObject({ endpoints: '3', added: 'GET /sw/added', removed: 'GET /sw/gone', changed: 'GET /sw/version' });
    // The slow request spans the switch (ended here, it was cut off, or was too fast to prove anything).
    const early = slowDone ? await slowAnswer : undefined;
    expect.soft(early, `the slow request ended before the switch: ${early?.error ?? early?.status}`).toBeUndefined();

    // The load goes on across the switch, then a while on the new app.
    const atSwitch = load.answers.length;
    await waitFor('load after the switch', () => load.answers.length >= atSwitch + 60, { timeout: 20_000 });
    const slowResult = await slowAnswer;
    const answers = await load.stop();

    // Zero failed requests: every answer 200, no connection refused or reset.
    expect(failures(answers)).toEqual([]);

    // The slow request finished in the old app, with 200, after the switch.
    expect(slowResult.error).toBeUndefined();
    expect(slowResult.status).toBe(200);
    expect(Number((JSON.parse(slowResult.body!) as { n: number | string }).n)).toBe(SLOW_N);
    expect(slowResult.ended).toBeGreaterThan(switchSeenAt);
    // The old app was closed only once its last request (the slow one) had ended.
    const isDrained = (l: ParsedLine) => l.fields.tag === 'endpoints-switch' && /drained and closed/.test(l.fields.msg ?? '');
    await gw.waitForLine(isDrained, 30_000, fromHup);
    const lines = gw.parsed();
    const slowEnd = lines.findIndex((l) => l.fields.tag === 'request-stats' && l.fields.cid === 'slow-before-switch');
    expect(slowEnd).toBeGreaterThan(fromHup);
    expect(slowEnd).toBeLessThan(lines.findIndex((l, i) => i >= fromHup && isDrained(l)));

    const versions = answers.filter((a) => a.body?.includes('version'));
    const duringSwitch = answers.filter((a) => a.ended > hupAt && a.started < switchSeenAt);
    expect(duringSwitch.length).toBeGreaterThan(0);
    // Old SQL before, new SQL after; nothing started after the switch was seen answers the old one.
    expect(new Set(versions.map(versionOf))).toEqual(new Set([1, 2]));
    expect(versions.filter((a) => a.started > switchSeenAt).map(versionOf)).not.toContain(1);
    expect(versions.filter((a) => a.started > switchSeenAt).length).toBeGreaterThan(10);
    // Kept-alive connections were not dropped: one connection carried answers of both versions.
    const bySocket = new Map<number, Set<number>>();
    for (const a of versions.filter((v) => v.keepAlive)) bySocket.set(a.socket, (bySocket.get(a.socket) ?? new Set()).add(versionOf(a)));
    expect([...bySocket.values()].some((s) => s.has(1) && s.has(2))).toBe(true);

    // The new set serves; the old set's removed endpoint is gone.
    expect(versionOf(await get(port, '/sw/version', false))).toBe(2);
    expect(JSON.parse((await get(port, '/sw/added', false)).body!)).toEqual({ what: 'added' });
    expect((await get(port, '/sw/gone', false)).status).toBe(404);

    // A broken file: refused with a config-err record, the previous set keeps serving, under load.
    const load2 = startLoad(port, ['/sw/version', '/sw/added'], 2, 2);
    await waitFor('load under way', () => load2.answers.length >= 20, { timeout: 20_000 });
    writeEndpoints(gw, BROKEN);
    const fromBroken = gw.lines.length;
    gw.signal('SIGHUP');
    const refused = await gw.waitForLine((l) => l.fields.tag === 'config-err', 15_000, fromBroken);
    expect(refused.level).toBe('ERROR');
    expect(refused.fields.msg).toContain('endpoint switch refused');
    expect(refused.fields.msg).toContain(':nope');
    const atRefusal = load2.answers.length;
    await waitFor('load after the refusal', () => load2.answers.length >= atRefusal + 20, { timeout: 20_000 });
    const answers2 = await load2.stop();
    expect(failures(answers2)).toEqual([]);
    expect(answers2.filter((a) => a.body?.includes('version')).map(versionOf)).not.toContain(3);
    expect(linesFrom(gw, fromBroken, (l) => l.fields.tag === 'endpoints-switch')).toEqual([]);
    expect(versionOf(await get(port, '/sw/version', false))).toBe(2);
    expect((await get(port, '/sw/added', false)).status).toBe(200);

    // Graceful shutdown still works after a switch: once, exit 0.
    const fromStop = gw.lines.length;
    gw.signal('SIGTERM');
    expect(await gw.exited).toBe(0);
    expect(linesFrom(gw, fromStop, (l) => l.fields.tag === 'shutdown-done')).toHaveLength(1);
    expect(linesFrom(gw, fromStop, (l) => l.level === 'ERROR' || l.level === 'CRITICAL')).toEqual([]);
    expect(gw.stderr.join('')).toBe('');
  }, 120_000);
});

describe('SIGHUP in a cluster', () => {
  it('the primary refuses a broken endpoint file before restarting any worker; a good one restarts them', async () => {
    gw = await startGateway({
      config: {},
      configPatch: (doc, dir) => {
        Object.assign(doc, configFor(dir, 'sqlite', { workers: 2 }));
        writeFileSync(join(dir, FILE), stringify(V1));
      },
    });
    await waitFor('both workers listening', () => new Set(gw!.parsed().filter((l) => l.fields.tag === 'listening').map((l) => l.pid)).size >= 2, { timeout: 20_000 });
    const { port } = gw;
    writeEndpoints(gw, BROKEN);
    const fromBroken = gw.lines.length;
    gw.signal('SIGHUP');
    const refused = await gw.waitForLine((l) => l.fields.tag === 'config-err', 15_000, fromBroken);
    expect(refused.fields.msg).toContain(':nope');
    expect(versionOf(await get(port, '/sw/version', false))).toBe(1);

    writeEndpoints(gw, V2);
    const fromGood = gw.lines.length;
    gw.signal('SIGHUP');
    await waitFor('both workers replaced', () => linesFrom(gw!, fromGood, (l) => l.fields.tag === 'worker-exit' && l.level === 'INFO').length >= 2, { timeout: 60_000 });
    // No worker was replaced on the broken file: every replacement follows the good SIGHUP.
    expect(linesFrom(gw, fromBroken, (l) => l.fields.tag === 'worker-recycle')).toEqual(linesFrom(gw, fromGood, (l) => l.fields.tag === 'worker-recycle'));
    expect(linesFrom(gw, fromBroken, (l) => l.fields.tag === 'start-err' || l.fields.tag === 'worker-exit' && l.level === 'ERROR')).toEqual([]);
    expect(versionOf(await get(port, '/sw/version', false))).toBe(2);
    expect((await get(port, '/sw/added', false)).status).toBe(200);
  }, 120_000);
});
