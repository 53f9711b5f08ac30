import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/config/load.js';
import { loadEndpoints } from '../../src/endpoints/load.js';
import { ROOT } from '../helpers/gateway-process.js';

describe('the shipped endpoint file', () => {
  it('is enabled by the shipped config and loads without a problem', () => {
    const settings = loadSettings({ main: join(ROOT, 'config', 'watchtower.yaml') }, {});
    expect(settings.endpoints).toEqual(['config/endpoints/*.yaml']);
    const endpoints = loadEndpoints({ ...settings, endpoints: [join(ROOT, 'config', 'endpoints', '*.yaml')] });
    expect(endpoints.map((e) => `${e.method} ${e.path} ${e.statements[0].dbType} ${e.result}`)).toEqual([
      'GET /v2/sqlite-json sqlite rows',
      'GET /v2/pg-json postgres rows',
      'GET /v2/mysql-json mysql rows',
      'GET /v2/mysql-odbc-json odbc rows',
      'GET /v2/sqlite-psv sqlite stream',
      'GET /v2/pg-psv postgres stream',
      'GET /v2/mysql-psv mysql stream',
      'GET /v2/mysql-odbc-psv odbc stream',
      'POST /v2/pg/traffic postgres transaction',
      'POST /v2/mysql/traffic mysql transaction',
    ]);
  });
});
