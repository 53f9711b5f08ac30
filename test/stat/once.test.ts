/**
 * `watchtower stat --once` / `--json` (dist/cli.js as a child process) against running gateways: two
 * gateways as replicas (added up), a 2-worker cluster (its /metrics adds the workers up), a gateway
 * that cannot be read, /metrics behind basic auth and an API key, and the usage errors.
 *
 * A known number of requests is made between stat's two reads: each gateway's /metrics is reached
 * through a small forwarder that says when stat's first read was answered and holds its second one
 * until the requests are done, so stat's rate × interval must come out at that number.
 */
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { closedPort } from '../helpers/databases.js';
import { ROOT, sqliteConfig, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';

const CLI = join(ROOT, 'dist', 'cli.js');
const RID = 'sqlite_traffic';

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function runStat(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'stat', ...args], { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** A gateway whose pool keeps exactly `pool` connections per process, so the open count is known. */
const fixedPool = (pool: number) => (doc: Record<string, unknown>, dir: string) => {
  Object.assign(doc, sqliteConfig(dir));
  doc.resources = { [RID]: { db_min_conn_pool_size: pool, db_max_conn_pool_size: pool, db_conn_max_uses: 100_000 } };
};

interface Gate {
  url: string;
  /** Resolves once stat's first read has been answered. */
  firstRead: Promise<void>;
  /** Lets stat's later reads through. */
  release(): void;
  close(): Promise<void>;
}

/** Forwards /metrics reads to `target`, answering the first at once and holding the later ones until release(). */
async function metricsGate(target: string): Promise<Gate> {
  let reads = 0;
  let answered!: () => void;
  let release!: () => void;
  const firstRead = new Promise<void>((r) => (answered = r));
  const released = new Promise<void>((r) => (release = r));
  const server: Server = createServer((req, res) => {
    const n = ++reads;
    void (async () => {
      if (n > 1) await released;
      const upstream = await fetch(`${target}/metrics`, { signal: AbortSignal.timeout(20_000) });
      res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'text/plain' });
      res.end(await upstream.text());
      if (n === 1) answered();
    })().catch((err: Error) => res.destroy(err));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, firstRead, release, close: () => new Promise((r) => server.close(() => r())) };
}

/** Makes `count` requests of `path`, four at a time, each read to its end; resolves with their statuses. */
async function requests(base: string, path: string, count: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let done = 0; done < count; done += 4) {
    const batch = Array.from({ length: Math.min(4, count - done) }, async () => {
      const r = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(20_000) });
      await r.arrayBuffer();
      return r.status;
    });
    statuses.push(...(await Promise.all(batch)));
  }
  return statuses;
}

interface StatJson {
  interval_seconds: number;
  targets: { url: string; ok: boolean; error?: string; interval_seconds?: number }[];
  resources: { resource_id: string; slots: { active: number; max: number | null; pending: number }; connections: { open: number; pooled: number; in_use: number; max: number | null }; queries_per_second: number; query_seconds: Record<string, number | null>; errors: Record<string, number>; breaker: string | null }[];
  endpoints: { endpoint: string; requests_per_second: number; p99_seconds: number | null; '4xx_per_second': number; '5xx_per_second': number }[];
  clients: { by_requests: { client_id: string; requests_per_second: number }[]; by_p99: unknown[] };
}

/**
 * The summed rate of `counts` requests made on each target between its two reads: each target's
 * count over its own interval (the reads of several targets start within milliseconds of each
 * other, but not at the same instant).
 */
function expectedRate(json: StatJson, counts: number[]): number {
  return counts.reduce((sum, n, i) => sum + n / json.targets[i].interval_seconds!, 0);
}

describe('watchtower stat --once against running gateways', () => {
  const gateways: GatewayProcess[] = [];
  let replicaA: GatewayProcess;
  let replicaB: GatewayProcess;
  let cluster: GatewayProcess;

  beforeAll(async () => {
    [replicaA, replicaB, cluster] = await Promise.all([
      startGateway({ configPatch: fixedPool(2) }),
      startGateway({ configPatch: fixedPool(3) }),
      startGateway({ configPatch: fixedPool(2), env: { WT_WORKERS: '2' } }),
    ]);
    gateways.push(replicaA, replicaB, cluster);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
  });

  it('--json adds two replicas up: their requests, queries, 4xx and connections', async () => {
    const [gateA, gateB] = await Promise.all([metricsGate(replicaA.url), metricsGate(replicaB.url)]);
    try {
      const run = runStat([gateA.url, gateB.url, '--json', '--interval', '1', '--timeout', '30']);
      await Promise.all([gateA.firstRead, gateB.firstRead]);
      const made = await Promise.all([requests(replicaA.url, '/sqlite-json', 12), requests(replicaA.url, '/nope', 3), requests(replicaB.url, '/sqlite-json', 7), requests(replicaB.url, '/sqlite-dataframe', 5)]);
      expect(made.map((s) => [...new Set(s)])).toEqual([[200], [404], [200], [200]]);
      gateA.release();
      gateB.release();
      const r = await run;
      expect(r.code, r.stderr).toBe(0);
      const json = JSON.parse(r.stdout) as StatJson;
      expect(json.targets.map((t) => [t.url, t.ok])).toEqual([[gateA.url, true], [gateB.url, true]]);
      expect(json.interval_seconds).toBeGreaterThanOrEqual(1);
      const ep = (name: string) => json.endpoints.find((e) => e.endpoint === name);
      const close = (actual: number | undefined, expected: number) => expect(Math.abs((actual ?? NaN) - expected)).toBeLessThan(1e-9 * expected);
      close(ep('/sqlite-json')?.requests_per_second, expectedRate(json, [12, 7]));
      close(ep('/sqlite-dataframe')?.requests_per_second, expectedRate(json, [0, 5]));
      close(ep('unmatched')?.['4xx_per_second'], expectedRate(json, [3, 0]));
      expect(ep('/sqlite-json')?.p99_seconds).toBeGreaterThan(0);
      const res = json.resources.find((x) => x.resource_id === RID)!;
      close(res.queries_per_second, expectedRate(json, [12, 12]));
      expect(res.connections.open).toBe(2 + 3);
      // Each replica's maxima (max_active_requests empty: its pool size), added up.
      expect(res.connections.max).toBe(2 + 3);
      expect(res.slots).toEqual({ active: 0, max: 2 + 3, pending: 0 });
      expect(res.breaker).toBe('closed');
      expect(Object.values(res.errors).every((n) => n === 0)).toBe(true);
      expect(res.query_seconds.p99).toBeGreaterThan(0);
      expect(json.clients.by_requests[0]?.client_id).toBe('anonymous');
    } finally {
      await Promise.all([gateA.close(), gateB.close()]);
    }
  }, 90_000);

  it('--once prints the table of a 2-worker cluster, the workers added up by the gateway', async () => {
    const gate = await metricsGate(cluster.url);
    try {
      const run = runStat([gate.url, '--once', '--interval', '1', '--timeout', '30']);
      await gate.firstRead;
      expect(new Set(await requests(cluster.url, '/sqlite-json', 16))).toEqual(new Set([200]));
      gate.release();
      const r = await run;
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stdout.split('\n');
      const interval = Number(/last ([\d.]+) s/.exec(lines[0])?.[1]);
      expect(interval).toBeGreaterThanOrEqual(1);
      // RESOURCE, SLOTS used/max/pend, CONNS open/idle/max, Q/S, ...: two workers of 2 slots and 2 connections each.
      const row = lines.find((l) => l.startsWith(`${RID} `))!.trim().split(/\s+/);
      expect(row[1].split('/')[1]).toBe('4');
      expect(row[2].split('/')[0]).toBe('4');
      expect(row[2].split('/')[2]).toBe('4');
      // The rates are printed rounded (two decimals below 10/s, one below 100/s): the count within that.
      expect(Math.abs(Number(row[3]) * interval - 16)).toBeLessThan(0.6);
      const ep = lines.find((l) => l.startsWith('/sqlite-json '))!.trim().split(/\s+/);
      expect(Math.abs(Number(ep[1]) * interval - 16)).toBeLessThan(0.6);
      expect(r.stdout).toContain('TOP CLIENTS BY REQ/S');
    } finally {
      await gate.close();
    }
  }, 90_000);

  it('exits 1 naming a gateway it cannot read, and still shows the others', async () => {
    const down = `http://127.0.0.1:${await closedPort()}`;
    const r = await runStat([replicaA.url, down, '--json', '--interval', '0.2', '--timeout', '2']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`watchtower stat: ${down}: ECONNREFUSED`);
    const json = JSON.parse(r.stdout) as StatJson;
    expect(json.targets.map((t) => t.ok)).toEqual([true, false]);
    expect(json.resources.map((x) => x.resource_id)).toEqual([RID]);
  }, 30_000);
});

describe('watchtower stat with /metrics behind basic auth and auth.metrics_roles', () => {
  let gw: GatewayProcess;
  const ops = createKey();
  const basic = { WT_METRICS_USER: 'scraper', WT_METRICS_PASSWORD: 's3cret:pw' };

  beforeAll(async () => {
    gw = await startGateway({
      env: basic,
      configPatch: (doc) => {
        doc.auth = { api_keys: [{ id: 'ops', sha256: ops.sha256, roles: ['ops'] }], metrics_roles: ['ops'] };
      },
    });
  }, 60_000);

  afterAll(async () => {
    await gw?.stop();
  });

  it('reads with --user and --api-key, or the same from the environment; names the refusal otherwise', async () => {
    const args = [gw.url, '--json', '--interval', '0.2'];
    const none = await runStat(args);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('HTTP 401');
    const basicOnly = await runStat([...args, '--user', 'scraper:s3cret:pw']);
    expect(basicOnly.code).toBe(1);
    expect(basicOnly.stderr).toMatch(/HTTP 401/);
    const both = await runStat([...args, '--user', 'scraper:s3cret:pw', '--api-key', ops.key]);
    expect(both.code, both.stderr).toBe(0);
    expect((JSON.parse(both.stdout) as StatJson).targets.map((t) => t.ok)).toEqual([true]);
    const fromEnv = await runStat(args, { ...basic, WT_API_KEY: ops.key });
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
  }, 60_000);
});

describe('watchtower stat usage', () => {
  it('exits 2 naming a bad option, URL or interval, and without a terminal for the live view', async () => {
    for (const [args, message] of [
      [['--interval', '0'], '--interval must be a number of seconds from 0.1 to 3600'],
      [['--timeout', 'soon'], "--timeout must be a number of seconds from 0.1 to 600, not 'soon'"],
      [['ftp://h/'], 'only http and https URLs'],
      [['--frobnicate'], '--frobnicate'],
      [['http://a:1', 'http://a:1'], 'a URL is given twice'],
      [[], 'the live view needs a terminal; use --once or --json'],
    ] as const) {
      const r = await runStat([...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(message);
    }
  }, 60_000);

  it('--help describes the view, its options and its exit codes', async () => {
    const r = await runStat(['--help']);
    expect(r.code).toBe(0);
    for (const text of ['--once', '--json', '--interval', '--user', '--api-key', 'Exit codes:']) expect(r.stdout).toContain(text);
  });
});
