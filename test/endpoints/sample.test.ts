import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/config/load.js';
import { loadEndpoints } from '../../src/endpoints/load.js';
import { ROOT } from '../helpers/gateway-process.js';

describe('the shipped endpoint files', () => {
  it('are enabled by the shipped config and serve the sample routes, one file per database', () => {
    const settings = loadSettings({ main: join(ROOT, 'config', 'watchtower.yaml') }, {});
    expect(settings.endpoints).toEqual(['config/endpoints/*.yaml']);
    const endpoints = loadEndpoints({ ...settings, endpoints: [join(ROOT, 'config', 'endpoints', '*.yaml')] });
    expect(endpoints.map((e) => `${e.file.replace(/^.*\//, '')} ${e.method} ${e.path} ${e.statements[0].dbType} ${e.result}`)).toEqual([
      'traffic-mysql-odbc.yaml GET /mysql-odbc-json odbc rows',
      'traffic-mysql-odbc.yaml GET /mysql-odbc-psv odbc stream',
      'traffic-mysql-odbc.yaml GET /mysql-odbc-dataframe odbc rows',
      'traffic-mysql.yaml GET /mysql-json mysql rows',
      'traffic-mysql.yaml GET /mysql-psv mysql stream',
      'traffic-mysql.yaml GET /mysql-dataframe mysql rows',
      'traffic-mysql.yaml POST /mysql/traffic mysql transaction',
      'traffic-pg.yaml GET /pg-json postgres rows',
      'traffic-pg.yaml GET /pg-psv postgres stream',
      'traffic-pg.yaml POST /pg/traffic postgres transaction',
      'traffic-sqlite.yaml GET /sqlite-json sqlite rows',
      'traffic-sqlite.yaml GET /sqlite-psv sqlite stream',
      'traffic-sqlite.yaml GET /sqlite-dataframe sqlite rows',
    ]);
  });
});
