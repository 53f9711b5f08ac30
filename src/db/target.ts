/** Connection targets from URLs (scripts, tests): postgres://u:p@h:port/db, mysql://.., sqlite:path, odbc://..?driver=.. */
import type { DbType, SecureResourceSettings } from '../config/schema.js';

const SCHEMES: Record<string, DbType> = {
  'postgres:': 'postgres',
  'postgresql:': 'postgres',
  'mysql:': 'mysql',
  'mariadb:': 'mysql',
  'odbc:': 'odbc',
  'sqlite:': 'sqlite',
};

export function targetFromUrl(url: string, overrides: Partial<SecureResourceSettings> = {}): SecureResourceSettings {
  const u = new URL(url);
  const dbType = SCHEMES[u.protocol];
  if (!dbType) throw new Error(`unsupported database URL scheme ${u.protocol}`);
  return {
    db_type: dbType,
    db_path: dbType === 'sqlite' ? decodeURIComponent(u.pathname) : '',
    db_sample: false,
    sqlite_workers: 'auto',
    sqlite_inline_read_ms: 1,
    db_host: u.hostname || '127.0.0.1',
    db_port: u.port ? Number(u.port) : 0,
    db_name: decodeURIComponent(u.pathname.replace(/^\//, '')),
    db_user: decodeURIComponent(u.username),
    db_password: decodeURIComponent(u.password),
    db_driver: u.searchParams.get('driver') ?? 'MariaDB Unicode',
    ...overrides,
  };
}
