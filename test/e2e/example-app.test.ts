/**
 * examples/embedded as a user gets it: the package packed with `npm pack` (the built dist/, as
 * `npm test` leaves it), installed into a copy of the example with npm (from its cache, the npm
 * registry at most), the example compiled with its own tsc against the package's types, then run
 * as a child process against SQLite and against PostgreSQL. Its own route and a declared endpoint
 * answer, and SIGTERM closes it cleanly.
 *
 * The native addons (better-sqlite3, odbc) are linked to the repository's built copies through
 * npm `overrides`, so nothing is compiled and nothing is downloaded beyond the registry.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { ensureSqliteSample, sampleRows } from '../../src/db/sample-data.js';
import { pgAvailable, pgTarget, requireOrSkip, uniqueName } from '../helpers/databases.js';
import { freePort, ROOT } from '../helpers/gateway-process.js';
import { dropDatabase, fileTarget, seedSampleDatabase } from '../helpers/test-data.js';
import { waitFor } from '../helpers/wait.js';

const skipPg = requireOrSkip('PostgreSQL', await pgAvailable());
const run = promisify(execFile);
const EXAMPLE = join(ROOT, 'examples', 'embedded');
const NATIVE = ['better-sqlite3', 'odbc'];

const dir = mkdtempSync(join(tmpdir(), 'wt-example-'));
const appDir = join(dir, 'app');
const db = uniqueName('wt_example');

/** Runs npm in `cwd`, bounded in time; its output is part of the failure when it fails. */
async function npm(cwd: string, args: string[], timeoutMs: number): Promise<string> {
  try {
    const { stdout } = await run('npm', args, { cwd, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`npm ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

interface Running {
  child: ChildProcess;
  url: string;
  output: string[];
  exited: Promise<number | null>;
}
const running: Running[] = [];

/** Starts the built example with the shipped config, its `traffic` resource pointed at `target`. */
async function startExample(name: string, target: Record<string, unknown>): Promise<Running> {
  const config = parse(readFileSync(join(appDir, 'config', 'watchtower.yaml'), 'utf8')) as Record<string, Record<string, unknown>>;
  config.secure.traffic = target;
  const configFile = join(dir, `${name}.yaml`);
  writeFileSync(configFile, stringify(config));
  const port = await freePort();
  const child = spawn(process.execPath, ['dist/app.js'], {
    cwd: appDir,
    env: { PATH: process.env.PATH ?? '', WT_CONFIG: configFile, HOST: '127.0.0.1', PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  child.stdout!.setEncoding('utf8').on('data', (c: string) => output.push(c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => output.push(c));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const r: Running = { child, url: `http://127.0.0.1:${port}`, output, exited };
  running.push(r);
  let gone = false;
  void exited.then(() => (gone = true));
  await waitFor(`the ${name} example to be ready`, async () => {
    if (gone) throw new Error(`exited early: ${output.join('')}`);
    return (await fetch(`${r.url}/health/ready`)).status === 200;
  }, { timeout: 30_000 });
  return r;
}

beforeAll(async () => {
  if (!existsSync(join(ROOT, 'dist', 'index.js'))) throw new Error('dist/index.js is missing: run npm run build first');
  // The package as published: what `files` and `exports` let through, the types included.
  const [packed] = JSON.parse(await npm(ROOT, ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], 60_000)) as { filename: string }[];
  for (const entry of ['package.json', 'tsconfig.json', 'src', 'config']) cpSync(join(EXAMPLE, entry), join(appDir, entry), { recursive: true });
  const pkg = JSON.parse(readFileSync(join(appDir, 'package.json'), 'utf8')) as Record<string, Record<string, string>>;
  pkg.dependencies.watchtower = `file:${join(dir, packed.filename)}`;
  // Only those built here (odbc is optional): a missing one is installed, unbuilt, and never loaded.
  const built = NATIVE.filter((name) => existsSync(join(ROOT, 'node_modules', name)));
  pkg.overrides = Object.fromEntries(built.map((name) => [name, `file:${join(ROOT, 'node_modules', name)}`]));
  writeFileSync(join(appDir, 'package.json'), JSON.stringify(pkg, null, 2));
  await npm(appDir, ['install', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', '--no-package-lock'], 180_000);
  // Compiled with the example's own tsc: `req.db` and `config.resources` must come typed from the package.
  await npm(appDir, ['run', 'build'], 120_000);
  if (!skipPg) await seedSampleDatabase(pgTarget({ db_name: db }));
}, 400_000);

afterAll(async () => {
  for (const r of running) {
    if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
  }
  await Promise.all(running.map((r) => r.exited));
  if (!skipPg) await dropDatabase(pgTarget({ db_name: db }));
  rmSync(dir, { recursive: true, force: true });
});

/** What the sample table holds for `port`, as the example's route sums it. */
function totals(port: number) {
  const rows = sampleRows().filter((r) => r.port === port);
  return { port, hours: rows.length, flows: rows.reduce((a, r) => a + r.flows, 0), bytes: rows.reduce((a, r) => a + r.bytes, 0) };
}

function firstHours(port: number, n: number) {
  return sampleRows()
    .filter((r) => r.port === port)
    .slice(0, n)
    .map(({ port: p, flows, pkts, bytes }) => ({ port: p, flows, pkts, bytes }));
}

const databases = [
  { name: 'SQLite', skip: false, target: () => ({ db_type: 'sqlite', db_sample: true, db_path: join(dir, 'traffic.db') }) },
  { name: 'PostgreSQL', skip: skipPg, target: () => fileTarget(pgTarget({ db_name: db })) },
];

describe.each(databases)('examples/embedded, built from the packed package, on $name', ({ name, skip, target }) => {
  it.skipIf(skip)('serves its own route and a declared endpoint, and stops on SIGTERM', async () => {
    const t = target();
    if (t.db_type === 'sqlite') ensureSqliteSample(String(t.db_path));
    const app = await startExample(name, t);

    const own = await fetch(`${app.url}/summary?port=443`);
    expect(own.status).toBe(200);
    expect(await own.json()).toEqual(totals(443));
    const none = await fetch(`${app.url}/summary?port=8080`);
    expect(none.status).toBe(404);
    expect(await none.json()).toMatchObject({ detail: 'no traffic recorded for port 8080' });

    const declared = await fetch(`${app.url}/ports/22/hours?limit=3`);
    expect(declared.status).toBe(200);
    expect(await declared.json()).toEqual(firstHours(22, 3));
    const csv = await fetch(`${app.url}/ports/22/hours?limit=2&format=csv`);
    expect(await csv.text()).toBe(['port,flows,pkts,bytes', ...firstHours(22, 2).map((r) => Object.values(r).join(','))].join('\r\n') + '\r\n');

    const metrics = await (await fetch(`${app.url}/metrics`)).text();
    expect(metrics).toContain('wt_requests_total{endpoint="/summary"} 2');
    expect(metrics).toMatch(/wt_queries_total\{resource_id="traffic"\} [34]\n/);

    app.child.kill('SIGTERM');
    expect(await app.exited).toBe(0);
    expect(app.output.join('')).toContain('tag=shutdown-done');
  });
});
