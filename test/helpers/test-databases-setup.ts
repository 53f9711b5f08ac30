/**
 * vitest globalSetup: where the suite's PostgreSQL and MariaDB come from.
 * - A URL given in TEST_PG_URL / TEST_MYSQL_URL is used as it is.
 * - For one not given, when a Docker engine answers, a throw-away server is started with
 *   testcontainers and its URL exported to the test processes (they inherit this process's env).
 * - Otherwise the local default on 127.0.0.1 is used (what .ci/run installs).
 * testcontainers is loaded only when a container is started: it needs Node >= 22.22.
 */
import { request } from 'node:http';
import { connect } from 'node:net';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';

export const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
export const DEFAULT_MYSQL_URL = 'mysql://root@127.0.0.1:3306/test';
// The images docker-compose.yml runs, set up like the local servers: trust/no password, database test.
const PG_IMAGE = 'postgres:16.9-bookworm';
const MARIADB_IMAGE = 'mariadb:11.4.7';

export type DatabaseSource = 'given' | 'container' | 'default';
export interface DatabasePlan {
  pg: DatabaseSource;
  mysql: DatabaseSource;
}
type Env = Record<string, string | undefined>;

/** Which source each database comes from; Docker is probed only when a URL is missing. */
export async function planTestDatabases(env: Env, dockerReachable: () => Promise<boolean>): Promise<DatabasePlan> {
  const pgGiven = Boolean(env.TEST_PG_URL);
  const mysqlGiven = Boolean(env.TEST_MYSQL_URL);
  const docker = pgGiven && mysqlGiven ? false : await dockerReachable();
  const source = (given: boolean): DatabaseSource => (given ? 'given' : docker ? 'container' : 'default');
  return { pg: source(pgGiven), mysql: source(mysqlGiven) };
}

/** Where a Docker engine may listen: DOCKER_HOST, else the sockets testcontainers also looks for. */
function dockerEndpoints(env: Env): ({ socketPath: string } | { host: string; port: number })[] {
  const host = env.DOCKER_HOST;
  if (host?.startsWith('unix://')) return [{ socketPath: host.slice('unix://'.length) }];
  if (host?.startsWith('tcp://')) {
    const url = new URL(host);
    return [{ host: url.hostname, port: Number(url.port || 2375) }];
  }
  const home = env.HOME ?? homedir();
  return [
    '/var/run/docker.sock',
    ...(env.XDG_RUNTIME_DIR ? [join(env.XDG_RUNTIME_DIR, 'docker.sock')] : []),
    join(home, '.docker', 'run', 'docker.sock'),
    join(home, '.docker', 'desktop', 'docker.sock'),
    `/run/user/${userInfo().uid}/docker.sock`,
  ].map((socketPath) => ({ socketPath }));
}

/** Whether the engine's socket answers its API ping (GET /_ping: 200 "OK") within `timeoutMs`. */
function pingSocket(socketPath: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** Whether a TCP engine accepts a connection (it may want TLS, which testcontainers handles). */
function tcpOpen(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port, timeout: timeoutMs }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('timeout', () => s.destroy());
    s.on('error', () => resolve(false));
    s.on('close', () => resolve(false));
  });
}

/** True when some Docker engine answers, without loading testcontainers. */
export async function dockerReachable(env: Env = process.env, timeoutMs = 2000): Promise<boolean> {
  const answers = await Promise.all(
    dockerEndpoints(env).map((e) => ('socketPath' in e ? pingSocket(e.socketPath, timeoutMs) : tcpOpen(e.host, e.port, timeoutMs))),
  );
  return answers.includes(true);
}

export interface StartedDatabases {
  urls: { TEST_PG_URL?: string; TEST_MYSQL_URL?: string };
  stop(): Promise<void>;
}

/** Starts the containers the plan asks for, in parallel; stops any that started if one fails. */
export async function startContainers(plan: DatabasePlan): Promise<StartedDatabases> {
  let tc: typeof import('testcontainers');
  try {
    tc = await import('testcontainers');
  } catch (err) {
    throw new Error(
      `testcontainers does not load on Node ${process.version} (it needs >= 22.22): ${(err as Error).message}; ` +
        'set TEST_PG_URL and TEST_MYSQL_URL to use running servers instead',
    );
  }
  const { GenericContainer, Wait } = tc;
  // Health checks over TCP: during initialisation both images run a server on the local socket only.
  const pg = () =>
    new GenericContainer(PG_IMAGE)
      .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: 'trust', POSTGRES_DB: 'test' })
      .withExposedPorts(5432)
      .withHealthCheck({ test: ['CMD-SHELL', 'pg_isready -q -h 127.0.0.1 -U postgres -d test'], interval: 1000, timeout: 3000, retries: 120 })
      .withWaitStrategy(Wait.forHealthCheck())
      .withStartupTimeout(120_000)
      .start();
  const mariadb = () =>
    new GenericContainer(MARIADB_IMAGE)
      .withEnvironment({ MARIADB_ALLOW_EMPTY_ROOT_PASSWORD: '1', MARIADB_DATABASE: 'test' })
      .withExposedPorts(3306)
      .withHealthCheck({ test: ['CMD', 'healthcheck.sh', '--connect', '--innodb_initialized'], interval: 1000, timeout: 3000, retries: 120 })
      .withWaitStrategy(Wait.forHealthCheck())
      .withStartupTimeout(120_000)
      .start();
  const results = await Promise.allSettled([plan.pg === 'container' ? pg() : null, plan.mysql === 'container' ? mariadb() : null]);
  const started = results.flatMap((r) => (r.status === 'fulfilled' && r.value ? [r.value] : []));
  const stop = async () => {
    await Promise.allSettled(started.map((c) => c.stop()));
  };
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) {
    await stop();
    throw failed.reason;
  }
  const [pgC, myC] = results.map((r) => (r.status === 'fulfilled' ? r.value : null));
  return {
    urls: {
      ...(pgC && { TEST_PG_URL: `postgres://postgres@${pgC.getHost()}:${pgC.getMappedPort(5432)}/test` }),
      ...(myC && { TEST_MYSQL_URL: `mysql://root@${myC.getHost()}:${myC.getMappedPort(3306)}/test` }),
    },
    stop,
  };
}

function summary(plan: DatabasePlan, env: Env): string {
  const one = (name: string, source: DatabaseSource, url: string | undefined, fallback: string) =>
    `${name} ${source === 'given' ? 'from the given URL' : source === 'container' ? 'in a container' : 'at the default'} ${url ?? fallback}`;
  return `test databases: ${one('PostgreSQL', plan.pg, env.TEST_PG_URL, DEFAULT_PG_URL)}; ${one('MariaDB', plan.mysql, env.TEST_MYSQL_URL, DEFAULT_MYSQL_URL)}`;
}

/**
 * Decides, starts what is needed and exports the URLs into `env`; returns the teardown.
 * `probe` and `start` are parameters so the decision and its wiring can be tested without Docker.
 */
export async function provideTestDatabases(
  env: Env,
  probe: () => Promise<boolean> = () => dockerReachable(env),
  start: (plan: DatabasePlan) => Promise<StartedDatabases> = startContainers,
): Promise<() => Promise<void>> {
  const plan = await planTestDatabases(env, probe);
  let stop = async () => {};
  if (plan.pg === 'container' || plan.mysql === 'container') {
    const started = await start(plan);
    Object.assign(env, started.urls);
    stop = started.stop;
  }
  process.stderr.write(`${summary(plan, env)}\n`);
  return stop;
}

export default function setup(): Promise<() => Promise<void>> {
  return provideTestDatabases(process.env);
}
