/**
 * README "Securing WatchTower": its example config section, keys file and endpoint file load as
 * written, and mean what the text says.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildSettings } from '../../src/config/index.js';
import { loadEndpoints } from '../../src/endpoints/load.js';
import { ROOT } from '../helpers/gateway-process.js';

describe('README "Securing WatchTower"', () => {
  it('shows a config, a keys file and endpoints that load', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const start = readme.indexOf('## Securing WatchTower');
    const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
    const [config, keys, endpoints] = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]);
    const dir = mkdtempSync(join(tmpdir(), 'wt-readme-auth-'));
    try {
      const doc = parse(config) as { host: string; auth: Record<string, unknown> };
      writeFileSync(join(dir, 'api-keys.yaml'), keys);
      writeFileSync(join(dir, 'shop.yaml'), endpoints);
      const settings = buildSettings(
        {
          ...doc,
          auth: { ...doc.auth, api_keys_file: join(dir, 'api-keys.yaml') },
          resource_ids: ['shop'],
          secure: { shop: { db_type: 'postgres', db_name: 'shop' } },
          endpoints: [join(dir, 'shop.yaml')],
        },
        {},
        { env: {} },
      );
      expect(settings.host).toBe('0.0.0.0');
      expect(settings.auth!.required).toBe(true);
      expect(settings.auth!.api_keys.map((k) => [k.id, k.roles, k.claims])).toEqual([
        ['grafana', ['ops'], {}],
        ['reporting', ['reader'], { tenant: 'acme' }],
      ]);
      expect(settings.auth!.jwt_roles_claim).toBe('realm_access.roles');
      const eps = loadEndpoints(settings);
      expect(eps.map((e) => [e.path, e.auth?.roles, e.public, e.pgRoleClaim])).toEqual([
        ['/orders', undefined, undefined, undefined],
        ['/reports/revenue', ['reader', 'finance'], undefined, undefined],
        ['/catalogue', undefined, true, undefined],
        ['/my/invoices', undefined, undefined, 'db_role'],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
