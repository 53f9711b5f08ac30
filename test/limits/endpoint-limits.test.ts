/**
 * A declared endpoint's `allow`, `deny` and `rate_limit`: checked by the loader with every other
 * problem (file, endpoint and key named, values not echoed), and handed to the route's config under
 * the names a code route uses.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { buildSettings } from '../../src/config/load.js';
import { loadEndpoints } from '../../src/endpoints/load.js';
import { limitsConfig } from '../../src/limits/endpoint-limits.js';

const dir = mkdtempSync(join(tmpdir(), 'wt-limits-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function load(endpoints: Record<string, unknown>[]) {
  const path = join(dir, 'limits.yaml');
  writeFileSync(path, stringify({ endpoints: endpoints.map((e) => ({ method: 'GET', resources: ['lite'], statements: [{ sql: 'SELECT 1 AS one' }], ...e })) }));
  const settings = buildSettings({ resource_ids: ['lite'], secure: { lite: { db_type: 'sqlite', db_path: join(dir, 'x.db') } }, endpoints: [path] }, {}, { env: {} });
  return { path, endpoints: () => loadEndpoints(settings) };
}

describe('declared endpoint limits', () => {
  it('are refused by the loader, naming file, endpoint and key, without echoing the value', () => {
    const { path, endpoints } = load([
      { path: '/a', allow: ['10.0.0.0/8', 'intranet.example'] },
      { path: '/b', deny: '10.0.0.1' },
      { path: '/c', rate_limit: { requests: 10 } },
      { path: '/d', rate_limit: [{ requests: 10, interval: 1 }, { by: 'tenant', requests: 1, interval: 1 }] },
    ]);
    let message = '';
    try {
      endpoints();
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain(`${path}: GET /a: allow[1] is not an IP address or CIDR block`);
    expect(message).toContain(`${path}: GET /b: deny must be a list of IP addresses or CIDR blocks`);
    expect(message).toContain(`${path}: GET /c: rate_limit.interval must be a whole number of seconds`);
    expect(message).toContain(`${path}: GET /d: rate_limit[1].by must be one of address, caller, role`);
    expect(message).not.toContain('intranet.example');
  });

  it('reach the route config under the code routes\' names', () => {
    const [ep] = load([{ path: '/a', allow: ['10.0.0.0/8'], deny: ['10.0.0.9'], rate_limit: { by: 'caller', requests: 5, interval: 60 } }]).endpoints();
    expect(limitsConfig(ep!)).toEqual({ allow: ['10.0.0.0/8'], deny: ['10.0.0.9'], rate_limit: { by: 'caller', requests: 5, interval: 60 } });
    const [plain] = load([{ path: '/b' }]).endpoints();
    expect(limitsConfig(plain!)).toEqual({});
  });
});
