/** The driver entry point: a connector for a resource, chosen by its db_type. */
import type { SecureResourceSettings } from '../config/schema.js';
import { mysqlConnector } from './mysql.js';
import { odbcConnector } from './odbc.js';
import { postgresConnector } from './postgres.js';
import { sqliteConnector } from './sqlite.js';
import type { ConnectorFactory, DbConnector } from './types.js';

export const createConnector: ConnectorFactory = (resourceId: string, target: SecureResourceSettings): DbConnector => {
  switch (target.db_type) {
    case 'sqlite':
      return sqliteConnector(resourceId, target);
    case 'postgres':
      return postgresConnector(resourceId, target);
    case 'mysql':
      return mysqlConnector(resourceId, target);
    case 'odbc':
      return odbcConnector(resourceId, target);
  }
};

export { classifyError, connectError } from './classify.js';
export { toPgPlaceholders } from './pg-placeholders.js';
export { targetFromUrl } from './target.js';
export * from './types.js';
