import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildSettings } from '../../src/config/load.js';
import { loadEndpoints } from '../../src/endpoints/load.js';
import { ROOT } from '../helpers/gateway-process.js';

describe('README "Serve your own database"', () => {
  it('shows an endpoint file that loads, using every endpoint key', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Serve your own database'));
    const yaml = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
    expect(yaml).toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), 'wt-readme-'));
    try {
      writeFileSync(join(dir, 'shop.yaml'), yaml!);
      const settings = buildSettings(
        { resource_ids: ['shop'], secure: { shop: { db_type: 'postgres', db_name: 'shop' } }, endpoints: [join(dir, '*.yaml')] },
        {},
        { env: {} },
      );
      const endpoints = loadEndpoints(settings);
      expect(endpoints.map((e) => `${e.method} ${e.path} ${e.result}`)).toEqual(['GET /orders rows', 'GET /orders/:id one', 'POST /orders transaction', 'DELETE /orders/:id exec']);
      for (const key of ['method', 'path', 'summary', 'description', 'tags', 'resources', 'params', 'statements', 'result', 'formats', 'max_rows', 'timeout', 'conflict', 'status', 'count_as', 'columns', 'each', 'header', 'in', 'auth', 'public', 'pg_role_claim', 'allow', 'deny', 'rate_limit', 'tx_retries', 'cache', 'invalidates']) {
        expect(new RegExp(`(^\\s+(- )?|[{,] )${key}:`, 'm').test(yaml!), key).toBe(true);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
