import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { dockerReachable, planTestDatabases, provideTestDatabases, type DatabasePlan } from './helpers/test-databases-setup.js';
import { closedPort } from './helpers/databases.js';

const PG = 'postgres://u@db.example:5432/test';
const MY = 'mysql://u@db.example:3306/test';

describe('test databases: where they come from', () => {
  const cases: [string, Record<string, string>, boolean, DatabasePlan][] = [
    ['both URLs given', { TEST_PG_URL: PG, TEST_MYSQL_URL: MY }, true, { pg: 'given', mysql: 'given' }],
    ['no URL, Docker answers', {}, true, { pg: 'container', mysql: 'container' }],
    ['no URL, no Docker', {}, false, { pg: 'default', mysql: 'default' }],
    ['PostgreSQL given, Docker answers', { TEST_PG_URL: PG }, true, { pg: 'given', mysql: 'container' }],
    ['MariaDB given, no Docker', { TEST_MYSQL_URL: MY }, false, { pg: 'default', mysql: 'given' }],
    ['empty URLs count as not given', { TEST_PG_URL: '', TEST_MYSQL_URL: '' }, true, { pg: 'container', mysql: 'container' }],
  ];
  it.each(cases)('%s', async (_, env, docker, expected) => {
    const probe = vi.fn(async () => docker);
    expect(await planTestDatabases(env, probe)).toEqual(expected);
    // Docker is asked only when some URL is missing.
    expect(probe).toHaveBeenCalledTimes(expected.pg === 'given' && expected.mysql === 'given' ? 0 : 1);
  });

  it('exports the URLs of the containers it started and returns their teardown', async () => {
    const stop = vi.fn(async () => {});
    const start = vi.fn(async () => ({ urls: { TEST_MYSQL_URL: 'mysql://root@localhost:32768/test' }, stop }));
    const env: Record<string, string | undefined> = { TEST_PG_URL: PG };
    const teardown = await provideTestDatabases(env, async () => true, start);
    expect(start).toHaveBeenCalledWith({ pg: 'given', mysql: 'container' });
    expect(env).toEqual({ TEST_PG_URL: PG, TEST_MYSQL_URL: 'mysql://root@localhost:32768/test' });
    await teardown();
    expect(stop).toHaveBeenCalledOnce();
  });

  it('without Docker starts nothing and leaves the URLs unset, so the defaults on 127.0.0.1 apply', async () => {
    const start = vi.fn();
    const env: Record<string, string | undefined> = {};
    await provideTestDatabases(env, async () => false, start);
    expect(start).not.toHaveBeenCalled();
    expect(env).toEqual({});
  });
});

describe('test databases: is a Docker engine there', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wt-docker-probe-'));
  const servers: Server[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    rmSync(dir, { recursive: true, force: true });
  });

  /** An HTTP server on a unix socket answering the engine's ping with `status`. */
  async function fakeEngine(path: string, status: number): Promise<void> {
    const server = createServer((req, res) => {
      res.writeHead(req.url === '/_ping' ? status : 404).end(status === 200 ? 'OK' : 'no');
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(path, resolve));
  }

  it('answers true for an engine that answers its ping on DOCKER_HOST', async () => {
    await fakeEngine(join(dir, 'up.sock'), 200);
    expect(await dockerReachable({ DOCKER_HOST: `unix://${join(dir, 'up.sock')}` })).toBe(true);
  });

  it('answers false for a socket that is missing or does not answer the ping with 200', async () => {
    await fakeEngine(join(dir, 'sick.sock'), 500);
    expect(await dockerReachable({ DOCKER_HOST: `unix://${join(dir, 'sick.sock')}` })).toBe(false);
    expect(await dockerReachable({ DOCKER_HOST: `unix://${join(dir, 'none.sock')}` })).toBe(false);
  });

  it('answers for a TCP DOCKER_HOST whether something listens there', async () => {
    const server = createServer();
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    expect(await dockerReachable({ DOCKER_HOST: `tcp://127.0.0.1:${port}` })).toBe(true);
    expect(await dockerReachable({ DOCKER_HOST: `tcp://127.0.0.1:${await closedPort()}` })).toBe(false);
  });

  it("finds a user's own engine socket without DOCKER_HOST (~/.docker/run/docker.sock)", async () => {
    const home = join(dir, 'home');
    mkdirSync(join(home, '.docker', 'run'), { recursive: true });
    await fakeEngine(join(home, '.docker', 'run', 'docker.sock'), 200);
    expect(await dockerReachable({ HOME: home })).toBe(true);
  });
});
