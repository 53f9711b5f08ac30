/** The driver entry point: a connector for a resource, chosen by its db_type. */
import type { DbType, SecureResourceSettings } from '../config/schema.js';
import { sqliteConnector } from './sqlite.js';
import type { ConnectorFactory, ConnectorHooks, DbConnector } from './types.js';

/**
 * A connector whose driver module is loaded on its first connect: a gateway that serves SQLite
 * alone (the quick start) never loads pg, mysql2 or the optional odbc package (a few MB for nothing).
 */
function loadedOnFirstConnect(dbType: DbType, load: () => Promise<DbConnector>): DbConnector {
  let loaded: Promise<DbConnector> | undefined;
  return {
    dbType,
    async connect(connId, timeoutSeconds) {
      loaded ??= load();
      return (await loaded).connect(connId, timeoutSeconds);
    },
  };
}

export const createConnector: ConnectorFactory = (resourceId: string, target: SecureResourceSettings, hooks: ConnectorHooks = {}): DbConnector => {
  switch (target.db_type) {
    case 'sqlite':
      return sqliteConnector(resourceId, target, hooks);
    case 'postgres':
      return loadedOnFirstConnect('postgres', async () => (await import('./postgres.js')).postgresConnector(resourceId, target));
    case 'mysql':
      return loadedOnFirstConnect('mysql', async () => (await import('./mysql.js')).mysqlConnector(resourceId, target));
    case 'odbc':
      return loadedOnFirstConnect('odbc', async () => (await import('./odbc.js')).odbcConnector(resourceId, target));
  }
};

export { classifyError, connectError } from './classify.js';
export { toPgPlaceholders } from './pg-placeholders.js';
export { targetFromUrl } from './target.js';
export * from './types.js';
