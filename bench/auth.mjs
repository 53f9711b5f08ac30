// What authentication costs per request. One gateway with API keys and JWT keys configured serves a
// public declared endpoint (10 rows of the SQLite sample); the same request is measured without a
// credential, with an API key (X-API-Key) and with a JWT (Authorization: Bearer, RS256, one token
// reused as a client reuses its token until it expires), each ROUNDS times in rotation on the same
// process: the credential is checked on a public endpoint too, so only that check differs. Target:
// each authenticated case keeps >= 0.9 of the throughput without a credential, the median over
// rounds of the pair measured back to back. Also, the authentication step alone in this process
// (reading the credential and checking it), in µs per request, with the verified-token cache and
// without it (every request verifying the RS256 signature): steadier than req/s on a shared machine.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { stringify } from 'yaml';
import { createKey } from '../dist/auth/api-keys.js';
import { Authenticator, readCredential } from '../dist/auth/authenticator.js';
import { buildSettings } from '../dist/config/index.js';
import { sqliteDb } from './lib/databases.mjs';
import { startGateway } from './lib/gateway.mjs';
import { removeTempDir, tempDir } from './lib/processes.mjs';
import { CONNECTIONS, DURATION, ROUNDS, measure, pairedRatio, pairedSummary } from './lib/load.mjs';

const TARGET = 0.9;
const ISSUER = 'https://idp.bench/';
const AUDIENCE = 'watchtower-bench';
const PATH = '/bench/rows';
const MICRO_ITERATIONS = Number(process.env.BENCH_AUTH_ITERATIONS ?? 20_000);

/** µs per authentication of `headers` (median of 5 runs), the Authenticator built from `auth`. */
async function authMicros(auth, headers) {
  const authenticator = new Authenticator(buildSettings({ resource_ids: [], auth }, {}, { env: {} }).auth);
  const once = () => authenticator.authenticate(readCredential(headers));
  for (let i = 0; i < 200; i++) await once(); // warm-up, and the token cache filled
  const runs = [];
  for (let r = 0; r < 5; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < MICRO_ITERATIONS; i++) {
      const caller = once();
      if (caller instanceof Promise) await caller;
    }
    runs.push(Number(process.hrtime.bigint() - start) / 1000 / MICRO_ITERATIONS);
  }
  runs.sort((a, b) => a - b);
  return Number(runs[2].toFixed(2));
}

/** The best round of a case, with every round kept for the paired ratios (as compareRounds does). */
function rowOf(label, rounds) {
  const best = rounds.reduce((a, b) => (b['req/s'] > a['req/s'] ? b : a));
  const row = { case: label, ...best, 'req/s by round': rounds.map((r) => r['req/s']).join(' / ') };
  Object.defineProperty(row, 'byRound', { value: rounds, enumerable: false });
  return row;
}

export async function run() {
  const dir = tempDir('wt-bench-auth-');
  try {
    const db = sqliteDb(join(dir, 'traffic.db'));
    const key = createKey();
    const keysFile = join(dir, 'keys.yaml');
    writeFileSync(keysFile, `keys:\n  - { id: 'bench', sha256: ${key.sha256}, roles: ['reader'] }\n`);
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const jwksFile = join(dir, 'jwks.json');
    writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'bench', alg: 'RS256', use: 'sig' }] }));
    const token = await new SignJWT({ roles: ['reader'] })
      .setProtectedHeader({ alg: 'RS256', kid: 'bench' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject('bench-user')
      .setIssuedAt()
      .setExpirationTime('4h')
      .sign(privateKey);
    const endpoints = join(dir, 'bench.yaml');
    const sql = 'SELECT date_hour, port, flows, pkts, bytes FROM tcp_hourly ORDER BY date_hour, port LIMIT 10';
    writeFileSync(endpoints, stringify({ endpoints: [{ method: 'GET', path: PATH, public: true, statements: [{ resource: db.resourceId, sql }] }] }));
    const auth = { api_keys_file: keysFile, jwt_jwks_file: jwksFile, jwt_issuer: ISSUER, jwt_audience: AUDIENCE };
    const cases = [
      { case: 'no credential', headers: {} },
      { case: 'API key (X-API-Key)', headers: { 'x-api-key': key.key } },
      { case: 'JWT RS256 (Bearer, verified-token cache)', headers: { authorization: `Bearer ${token}` } },
    ];
    const rounds = cases.map(() => []);
    const server = await startGateway(db, { label: 'gateway (auth configured)', config: { endpoints: [endpoints], auth } });
    try {
      for (let round = 0; round < ROUNDS; round++) {
        for (const [i, c] of cases.entries()) rounds[i].push(await measure(server, `${server.url}${PATH}`, { headers: c.headers }));
      }
    } finally {
      await server.stop();
    }
    const rows = cases.map((c, i) => rowOf(c.case, rounds[i]));
    const [none, apiKey, jwt] = rows;
    const keyRatio = pairedRatio(apiKey, none);
    const jwtRatio = pairedRatio(jwt, none);
    const cpu = (a) => pairedSummary(a, none, (x, y) => x['CPU ms/req'] - y['CPU ms/req'], 3).median;
    const micro = {
      key: await authMicros(auth, cases[1].headers),
      jwt: await authMicros(auth, cases[2].headers),
      uncached: await authMicros({ ...auth, jwt_cache_size: 0 }, cases[2].headers),
    };
    return {
      name: 'auth',
      seconds: DURATION,
      rounds: ROUNDS,
      connections: CONNECTIONS,
      rows,
      ratio: {
        'API key / no credential (req/s, median of rounds)': keyRatio.median,
        'API key / no credential, lowest-highest round': `${keyRatio.min}-${keyRatio.max}`,
        'JWT / no credential (req/s, median of rounds)': jwtRatio.median,
        'JWT / no credential, lowest-highest round': `${jwtRatio.min}-${jwtRatio.max}`,
        'CPU ms/req added (median of rounds): API key / JWT': `${cpu(apiKey)} / ${cpu(jwt)}`,
        'authentication alone, µs per request: API key / JWT cached / JWT, cache off': `${micro.key} / ${micro.jwt} / ${micro.uncached}`,
      },
      target: {
        'API key / no credential >=': TARGET,
        'JWT / no credential >=': TARGET,
        'API key': keyRatio.median,
        JWT: jwtRatio.median,
        met: keyRatio.median >= TARGET && jwtRatio.median >= TARGET,
      },
    };
  } finally {
    removeTempDir(dir);
  }
}
