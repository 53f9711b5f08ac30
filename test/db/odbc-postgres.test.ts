/**
 * The shared driver suite against PostgreSQL through psqlODBC ("PostgreSQL Unicode"): a driver that
 * is stopped with SQLCancel on the statement (not KILL QUERY, as MariaDB's is), fetches in blocks, and
 * takes its connection string's values unbraced where they need no braces.
 */
import { describe } from 'vitest';
import { createConnector } from '../../src/db/index.js';
import { odbcDriverRegistered, pgAvailable, pgTarget, requireOrSkip } from '../helpers/databases.js';
import { driverSuite } from './driver-suite.js';
import { postgresDialect } from './postgres-dialect.js';

const DRIVER = 'PostgreSQL Unicode';
const skip = requireOrSkip('PostgreSQL', await pgAvailable()) || requireOrSkip(`ODBC (${DRIVER})`, await odbcDriverRegistered(DRIVER));

const target = (port?: number) => pgTarget({ db_type: 'odbc', db_driver: DRIVER, db_port: port ?? (pgTarget().db_port || 5432) });
const connector = (port?: number) => createConnector('odbc_pg_test', target(port));

describe.skipIf(skip)('odbc (PostgreSQL)', () => {
  driverSuite({
    name: 'odbc-postgres',
    connector: () => connector(),
    connectorAtPort: (port) => connector(port),
    ...postgresDialect,
  });
});
