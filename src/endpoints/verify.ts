/**
 * The database half of the endpoint checks, shared by `watchtower check` and start-up: one
 * connection per resource the declared statements use, on which each statement is planned
 * (EXPLAIN, or prepare where the database has no EXPLAIN) with NULL for every param, and the row
 * columns of each data endpoint without `columns` are read for the OpenAPI document. Nothing is
 * executed. Every problem names its file, endpoint and statement, with the database's own error.
 */
import { resourceSettingsOf, type Settings } from '../config/index.js';
import type { SecureResourceSettings } from '../config/schema.js';
import { DbValueError } from '../db/classify.js';
import { statementKind } from '../db/result-columns.js';
import { canInspect, createConnector, DbDriverError, type DbConnection } from '../db/index.js';
import type { Endpoint } from './declaration.js';

/** JSON schemas of a result's columns, as `columns` declares them. */
export type Columns = Record<string, Record<string, unknown>>;

export interface Problem {
  message: string;
  /**
   * `refused`: the database refused the statement (syntax, unknown table or column). `unchecked`:
   * the database could not be reached or did not answer, so the statement was not judged.
   */
  kind: 'refused' | 'unchecked';
}

export interface Verification {
  problems: Problem[];
  notes: string[];
  /** Statements the database planned or refused. */
  checked: number;
  /** Row columns read from the database, by endpointKey, for data endpoints without `columns`. */
  columns: Map<string, Columns>;
}

export interface VerifyOptions {
  /** Plan every statement (the default); false only reads row columns. */
  plan?: boolean;
}

/** Method and path: what identifies an endpoint across loads of the same files. */
export function endpointKey(ep: Pick<Endpoint, 'method' | 'path'>): string {
  return `${ep.method} ${ep.path}`;
}

function emptyVerification(): Verification {
  return { problems: [], notes: [], checked: 0, columns: new Map() };
}

/** Checks the statements of `endpoints` on their databases; resources in parallel, so the slowest one bounds the time. */
export async function verifyEndpoints(settings: Settings, endpoints: Endpoint[], opts: VerifyOptions = {}): Promise<Verification> {
  const resources = [...new Set(endpoints.flatMap((e) => e.statements.map((s) => s.resource)))];
  const parts = await Promise.all(resources.map((rid) => verifyResource(settings, rid, endpoints, opts.plan !== false)));
  const all = emptyVerification();
  for (const v of parts) {
    all.problems.push(...v.problems);
    all.notes.push(...v.notes);
    all.checked += v.checked;
    for (const [k, c] of v.columns) all.columns.set(k, c);
  }
  return all;
}

function targetText(t: SecureResourceSettings): string {
  return `${t.db_type} ${t.db_type === 'sqlite' ? t.db_path : `${t.db_host}:${t.db_port}/${t.db_name}`}`;
}

/** The driver's message and, for ODBC, the database's own (the package's message is generic). */
export function databaseMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const cause: unknown = err instanceof Error ? err.cause : undefined;
  const odbcErrors: unknown = typeof cause === 'object' && cause !== null ? (cause as { odbcErrors?: unknown }).odbcErrors : undefined;
  const details = Array.isArray(odbcErrors) ? odbcErrors.map((e) => (e as { message?: unknown }).message).filter((m) => typeof m === 'string') : [];
  return details.length > 0 ? `${message}: ${details.join('; ')}` : message;
}

/** The statement's own fault, as opposed to a database that is down, slow, or a NULL it was given. */
function refusedByDatabase(err: unknown): boolean {
  return err instanceof DbDriverError && !(err instanceof DbValueError) && (err.kind === 'query' || err.kind === 'constraint');
}

function readsRows(ep: Endpoint): boolean {
  return ep.result === 'rows' || ep.result === 'one' || ep.result === 'stream';
}

async function verifyResource(settings: Settings, rid: string, endpoints: Endpoint[], plan: boolean): Promise<Verification> {
  const v = emptyVerification();
  // Endpoints of resources left out of resource_ids are not served (404), so not checked either.
  const target = settings.secure[rid] as SecureResourceSettings | undefined;
  if (!settings.resource_ids.includes(rid) || !target) {
    v.notes.push(`${rid}: statements not checked (resource not in resource_ids)`);
    return v;
  }
  const { db_conn_timeout: connectSeconds, db_default_query_timeout: timeoutSeconds } = resourceSettingsOf(settings, rid);
  let conn: DbConnection;
  try {
    conn = await createConnector(rid, target).connect(0, connectSeconds);
  } catch (err) {
    v.problems.push({ kind: 'unchecked', message: `resource ${rid}: cannot connect to ${targetText(target)}: ${databaseMessage(err)}` });
    return v;
  }
  try {
    if (!canInspect(conn)) {
      v.notes.push(`${rid}: statements not checked (the ${target.db_type} driver cannot inspect statements)`);
      return v;
    }
    for (const ep of endpoints) {
      for (const [i, st] of ep.statements.entries()) {
        if (st.resource !== rid) continue;
        const where = `${ep.file}: ${ep.method} ${ep.path}: statements[${i}] on ${rid}`;
        const params = st.names.map(() => null);
        const failed = (err: unknown, as: 'problem' | 'note'): boolean => {
          if (as === 'note') v.notes.push(`${where}: row types not read: ${databaseMessage(err)}`);
          else v.problems.push({ kind: refusedByDatabase(err) ? 'refused' : 'unchecked', message: `${where}: ${databaseMessage(err)}` });
          if (conn.usable) return false;
          v.problems.push({ kind: 'unchecked', message: `resource ${rid}: the connection was lost; the statements after ${ep.method} ${ep.path} were not checked` });
          return true;
        };
        if (plan) {
          try {
            if (await conn.plan(st.sql, params, { timeoutSeconds })) v.checked++;
            else v.notes.push(`${where}: not checked (${statementKind(st.sql) || 'unknown'} statement)`);
          } catch (err) {
            v.checked++;
            if (failed(err, 'problem')) return v;
            continue;
          }
        }
        if (i !== 0 || !readsRows(ep) || ep.columns !== undefined) continue;
        try {
          const columns = await conn.describe(st.sql, params, { timeoutSeconds });
          if (columns === undefined) v.notes.push(`${where}: row types not read (${statementKind(st.sql) || 'unknown'} statement); declare columns`);
          else v.columns.set(endpointKey(ep), Object.fromEntries(columns.map((c) => [c.name, c.schema])));
        } catch (err) {
          if (failed(err, 'note')) return v;
        }
      }
    }
  } finally {
    await conn.close();
  }
  return v;
}
