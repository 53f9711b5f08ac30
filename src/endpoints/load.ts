/**
 * Loads the endpoint files named by the `endpoints` key and checks them whole before anything is
 * served: every problem is collected, each naming its file, endpoint and key, and the gateway
 * refuses to start with all of them at once (one ConfigError). Hand-written rather than a JSON
 * schema, so each message says what is wrong in the operator's terms ("placeholder :port has no
 * param") instead of a validator's path.
 */
import { readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { resourceSchema, type DbType, type Settings } from '../config/schema.js';
import { readYamlFile } from '../config/read-file.js';
import { ConfigError } from '../errors.js';
import {
  FORMATS,
  LOCATIONS,
  MAGIC_PARAMS,
  METHODS,
  RESERVED_PATHS,
  RESULTS,
  type CompiledStatement,
  type Endpoint,
  type Format,
  type Location,
  type Method,
  type ParamDecl,
  type ResultKind,
} from './declaration.js';
import { compileNamed, PlaceholderError } from './placeholders.js';
import { checkParamSchema, isObj } from './param-schema.js';
import { endpointLimitsOf, endpointLimitsProblems } from '../limits/endpoint-limits.js';
import { routeAuthProblem } from '../auth/hook.js';
import { CLAIM_PATH } from '../auth/settings.js';
import { CLAIM_PARAM_PREFIX } from '../auth/sql-identity.js';
import { endpointCacheOf, endpointCacheProblems, invalidationProblems } from '../cache/endpoint-cache.js';

type Obj = Record<string, unknown>;

const ENDPOINT_KEYS = new Set([
  'method', 'path', 'summary', 'description', 'tags', 'resources', 'params', 'statements',
  'result', 'formats', 'max_rows', 'timeout', 'conflict', 'status', 'count_as', 'columns',
  'allow', 'deny', 'rate_limit',
  'tx_retries',
  'auth', 'public', 'pg_role_claim', 'cache', 'invalidates',
]);
const STATEMENT_KEYS = new Set(['resource', 'sql', 'each']);
const PARAM_NAME = /^[A-Za-z][A-Za-z0-9_]{0,62}$/;
const PATH_PARAM = /:([A-Za-z_][A-Za-z0-9_]*)/g;
/** Path segments Fastify reads literally or as parameters; no regex parameters, no wildcards. */
const PATH = /^(\/(:?[A-Za-z0-9_.~-]+))+\/?$|^\/$/;

/** Files named by one pattern: `*` and `?` in the file name only, sorted so the order is stable. */
export function expandPattern(pattern: string): string[] {
  const dir = dirname(pattern);
  const name = basename(pattern);
  if (/[*?[\]{}]/.test(dir)) throw new Error('wildcards are allowed in the file name only');
  if (!/[*?]/.test(name)) return [pattern];
  const re = new RegExp(`^${name.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}$`);
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    throw new Error(`directory ${dir} cannot be read`);
  }
  return entries.filter((e) => re.test(e)).sort().map((e) => join(dir, e));
}

/** Collects problems, each one line naming where it is. */
class Problems {
  readonly list: string[] = [];
  add(where: string, key: string, message: string): void {
    this.list.push(`${where}: ${key ? `${key}: ` : ''}${message}`);
  }
}

function stringList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string' && s.length > 0);
}

/** Loads every file of `settings.endpoints`; throws one ConfigError listing every problem. */
export function loadEndpoints(settings: Settings): Endpoint[] {
  const problems = new Problems();
  const endpoints: Endpoint[] = [];
  const seen = new Map<string, string>();
  for (const pattern of settings.endpoints) {
    let files: string[];
    try {
      files = expandPattern(pattern);
    } catch (err) {
      problems.add(`endpoints pattern ${pattern}`, '', (err as Error).message);
      continue;
    }
    if (files.length === 0) problems.add(`endpoints pattern ${pattern}`, '', 'matches no file');
    for (const file of files) {
      let doc: Obj;
      try {
        doc = readYamlFile(file, false);
      } catch (err) {
        problems.add(file, '', (err as Error).message);
        continue;
      }
      // x-... keys hold what YAML anchors refer to (SQL or params shared by several endpoints).
      for (const key of Object.keys(doc)) {
        if (key !== 'endpoints' && !key.startsWith('x-')) problems.add(file, key, 'unknown key (the file holds `endpoints:`, a list, and x-... keys for anchors)');
      }
      if (!Array.isArray(doc.endpoints)) {
        problems.add(file, 'endpoints', 'must be a list of endpoints');
        continue;
      }
      doc.endpoints.forEach((raw: unknown, i: number) => {
        const ep = checkEndpoint(file, i, raw, settings, problems, seen);
        if (ep) endpoints.push(ep);
      });
    }
  }
  // What a write's `invalidates` names is known once every file is read.
  if (problems.list.length === 0) problems.list.push(...invalidationProblems(endpoints));
  if (problems.list.length > 0) {
    throw new ConfigError(`endpoint files refused, ${problems.list.length} problem(s): ${problems.list.join('; ')}`, { keys: ['endpoints'] });
  }
  return endpoints;
}

function checkEndpoint(file: string, index: number, raw: unknown, settings: Settings, problems: Problems, seen: Map<string, string>): Endpoint | undefined {
  if (!isObj(raw)) {
    problems.add(`${file}: endpoints[${index}]`, '', 'must be a mapping');
    return undefined;
  }
  const method = typeof raw.method === 'string' ? raw.method.toUpperCase() : raw.method;
  const path = raw.path;
  const named = typeof method === 'string' && typeof path === 'string';
  const where = named ? `${file}: ${method} ${path}` : `${file}: endpoints[${index}]`;
  const add = (key: string, message: string) => problems.add(where, key, message);
  const before = problems.list.length;

  for (const key of Object.keys(raw)) if (!ENDPOINT_KEYS.has(key)) add(key, 'unknown key');
  if (!METHODS.includes(method as Method)) add('method', `must be one of ${METHODS.join(', ')}`);
  if (typeof path !== 'string' || !PATH.test(path)) {
    add('path', 'must be a path like /items/:id (letters, digits, _ . ~ - and :params)');
  } else if (RESERVED_PATHS.some((r) => path === r || path.startsWith(`${r}/`))) {
    add('path', `shadows the gateway's own ${RESERVED_PATHS.find((r) => path === r || path.startsWith(`${r}/`))}`);
  }
  if (named && PATH.test(path) && METHODS.includes(method as Method)) {
    // Two paths differing only in parameter names are the same route to Fastify.
    const key = `${method} ${path.replace(PATH_PARAM, ':')}`;
    const first = seen.get(key);
    if (first !== undefined) add('path', `duplicate method and path: already declared at ${first}`);
    else seen.set(key, where);
  }
  for (const key of ['summary', 'description'] as const) {
    if (raw[key] !== undefined && typeof raw[key] !== 'string') add(key, 'must be text');
  }
  if (raw.tags !== undefined && !stringList(raw.tags)) add('tags', 'must be a list of names');

  const result = (raw.result ?? 'rows') as ResultKind;
  if (!RESULTS.includes(result)) add('result', `must be one of ${RESULTS.join(', ')}`);
  const writes = result === 'exec' || result === 'transaction';
  const formats = (raw.formats ?? ['json']) as Format[];
  if (!Array.isArray(formats) || formats.length === 0 || !formats.every((f) => FORMATS.includes(f))) {
    add('formats', `must be a list of ${FORMATS.join(', ')}`);
  } else if (new Set(formats).size !== formats.length) add('formats', 'names a format twice');
  else if (writes && formats.some((f) => f !== 'json')) add('formats', `result ${result} answers json only`);

  const positiveNumber = (key: string, integer: boolean) => {
    const v = raw[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v) || (integer && !Number.isSafeInteger(v))) {
      add(key, integer ? 'must be a whole number >= 1' : 'must be a positive number of seconds');
      return undefined;
    }
    return v;
  };
  const maxRows = positiveNumber('max_rows', true);
  if (maxRows !== undefined && writes) add('max_rows', `has no meaning for result ${result}`);
  const timeout = positiveNumber('timeout', false);
  const txRetries = raw.tx_retries;
  if (txRetries !== undefined) {
    if (typeof txRetries !== 'number' || !Number.isInteger(txRetries) || txRetries < 0 || txRetries > 10) add('tx_retries', 'must be a whole number from 0 to 10');
    else if (!writes) add('tx_retries', `has no meaning for result ${result} (a read that lost its connection is run again once anyway)`);
  }
  const status = raw.status ?? 200;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 299) add('status', 'must be a 2xx status');
  const conflict = raw.conflict ?? 409;
  if (typeof conflict !== 'number' || !Number.isInteger(conflict) || conflict < 400 || conflict > 499) add('conflict', 'must be a 4xx status');
  const countAs = raw.count_as ?? 'affected';
  if (typeof countAs !== 'string' || !PARAM_NAME.test(countAs)) add('count_as', 'must be a name');
  else if (!writes && raw.count_as !== undefined) add('count_as', `has no meaning for result ${result}`);

  const columns = checkColumns(raw.columns, add);
  if (raw.columns !== undefined && writes) add('columns', `has no meaning for result ${result}`);

  // Resources: the declared list, or those the statements name.
  const declared = raw.resources;
  if (declared !== undefined && (!stringList(declared) || declared.length === 0)) add('resources', 'must be a list of resource ids');
  const resources = stringList(declared) ? [...new Set(declared)] : [];
  const dbTypeOf = (rid: string): DbType | undefined => settings.secure[rid]?.db_type;
  for (const rid of resources) if (dbTypeOf(rid) === undefined) add('resources', `unknown resource ${rid} (no secure.${rid} section)`);

  const params = checkParams(raw.params, method as Method, typeof path === 'string' ? path : '', add);
  const claims = settings.auth?.sql_claims ?? [];
  const statements = checkStatements(raw.statements, resources, declared === undefined, params, result, dbTypeOf, add, claims);
  // Who may call it: the same keys a code route has in its config (src/auth/hook.ts).
  const authProblem = routeAuthProblem({ auth: raw.auth, public: raw.public });
  if (authProblem !== undefined) add(authProblem.slice(0, authProblem.indexOf(':')), authProblem.slice(authProblem.indexOf(':') + 2));
  const pgRoleClaim = raw.pg_role_claim;
  if (pgRoleClaim !== undefined) {
    if (typeof pgRoleClaim !== 'string' || !CLAIM_PATH.test(pgRoleClaim)) add('pg_role_claim', 'must be a claim path (names separated by dots), e.g. role');
    else if (raw.public === true) add('pg_role_claim', 'needs a caller: a public endpoint may be called without one');
    else if (result === 'stream') add('pg_role_claim', 'is not available for result stream');
    for (const rid of resources) if (dbTypeOf(rid) !== undefined && dbTypeOf(rid) !== 'postgres') add('pg_role_claim', `sets a PostgreSQL role: resource ${rid} is ${dbTypeOf(rid)}`);
  }
  if (timeout !== undefined) {
    for (const rid of resources) {
      const limit = settings.resources[rid]?.db_default_query_timeout ?? resourceSchema.db_default_query_timeout.default;
      if (timeout > limit) add('timeout', `${timeout} s is above resource ${rid}'s db_default_query_timeout (${limit} s)`);
    }
  }
  // Every declared param is bound somewhere: a param no statement uses is most likely a typo.
  // (Known only when every statement compiled.)
  const used = new Set(statements.flatMap((s) => [...s.names, ...(s.each ? [s.each] : [])]));
  if (Array.isArray(raw.statements) && statements.length === raw.statements.length) {
    for (const p of params) if (!used.has(p.name)) add(`params.${p.name}`, 'is never used by a statement');
  }

  // Network rules and rate limits: the same keys a code route has in its config (src/limits/).
  for (const problem of endpointLimitsProblems(raw)) add('', problem);
  // The response cache (src/cache/): cache on reads, invalidates on writes.
  for (const problem of endpointCacheProblems(raw, method as Method, result, statements.flatMap((s) => s.names))) add('', problem);

  if (problems.list.length > before) return undefined;
  return {
    file,
    method: method as Method,
    path: path as string,
    summary: raw.summary as string | undefined,
    description: raw.description as string | undefined,
    tags: (raw.tags as string[] | undefined) ?? [],
    resources,
    params,
    statements,
    result,
    formats,
    maxRows,
    timeout,
    ...(typeof txRetries === 'number' ? { txRetries } : {}),
    conflict: conflict as number,
    status: status as number,
    countAs: countAs as string,
    columns,
    ...endpointLimitsOf(raw),
    ...(raw.auth !== undefined ? { auth: { roles: [...(raw.auth as { roles: string[] }).roles] } } : {}),
    ...(raw.public === true ? { public: true } : {}),
    ...(typeof pgRoleClaim === 'string' ? { pgRoleClaim } : {}),
    ...endpointCacheOf(raw),
  };
}

const COLUMN_TYPES = ['string', 'integer', 'number', 'boolean', 'object', 'array', 'null'];

/**
 * `columns`: name -> a type, a list of types (`[integer, string]`, `[string, 'null']`), or a
 * mapping with `type` and optionally `description`, `format`, `pattern`, `examples`.
 */
function checkColumns(raw: unknown, add: (key: string, message: string) => void): Record<string, Record<string, unknown>> | undefined {
  if (raw === undefined) return undefined;
  if (!isObj(raw) || Object.keys(raw).length === 0) {
    add('columns', 'must be a mapping of column name to type');
    return undefined;
  }
  const out: Record<string, Record<string, unknown>> = {};
  const typeOk = (t: unknown) => (typeof t === 'string' ? COLUMN_TYPES.includes(t) : Array.isArray(t) && t.length > 0 && t.every((x) => COLUMN_TYPES.includes(x as string)));
  for (const [name, spec] of Object.entries(raw)) {
    const schema = isObj(spec) ? spec : { type: spec };
    const bad = Object.keys(schema).filter((k) => !['type', 'description', 'format', 'pattern', 'examples'].includes(k));
    if (!typeOk(schema.type) || bad.length > 0) {
      add(`columns.${name}`, `must be one of ${COLUMN_TYPES.join(', ')}, a list of them, or a mapping with type and description`);
      continue;
    }
    out[name] = schema;
  }
  return out;
}

function checkParams(raw: unknown, method: Method, path: string, add: (key: string, message: string) => void): ParamDecl[] {
  if (raw !== undefined && !isObj(raw)) {
    add('params', 'must be a mapping of name to param');
    return [];
  }
  const params: ParamDecl[] = [];
  for (const [name, spec] of Object.entries(raw ?? {})) {
    const key = `params.${name}`;
    if (!PARAM_NAME.test(name)) {
      add(key, 'a param name is a letter then letters, digits or _ (names starting with _ are reserved)');
      continue;
    }
    if (!isObj(spec)) {
      add(key, 'must be a mapping (in, type, ...)');
      continue;
    }
    const { in: where = 'query', required, header, not_before: notBefore, ...schema } = spec;
    if (!LOCATIONS.includes(where as Location)) {
      add(`${key}.in`, `must be one of ${LOCATIONS.join(', ')}`);
      continue;
    }
    const loc = where as Location;
    if (loc === 'body' && !['POST', 'PUT', 'PATCH'].includes(method)) add(`${key}.in`, `a ${method} request has no body`);
    if (loc === 'query' && name === 'format') add(key, 'format is reserved for ?format=');
    if (required !== undefined && typeof required !== 'boolean') add(`${key}.required`, 'must be true or false');
    if (header !== undefined && (loc !== 'header' || typeof header !== 'string' || !/^[A-Za-z0-9-]+$/.test(header))) {
      add(`${key}.header`, 'is a header name, for a header param only');
    }
    checkParamSchema(schema, loc, (k, m) => add(k ? `${key}.${k}` : key, m));
    params.push({
      name,
      in: loc,
      header: loc === 'header' ? (typeof header === 'string' ? header : name.replace(/_/g, '-')).toLowerCase() : undefined,
      required: loc === 'path' || required === true,
      schema,
      notBefore: typeof notBefore === 'string' ? notBefore : undefined,
    });
    if (notBefore !== undefined && typeof notBefore !== 'string') add(`${key}.not_before`, 'must name another param');
  }
  // not_before compares two values of one kind, both known once validated.
  const ordered = ['integer', 'number', 'timestamp'];
  for (const p of params) {
    if (p.notBefore === undefined) continue;
    const other = params.find((o) => o.name === p.notBefore);
    if (!other || other === p) add(`params.${p.name}.not_before`, `names no other param: ${p.notBefore}`);
    else if (!ordered.includes(p.schema.type as string) || other.schema.type !== p.schema.type) {
      add(`params.${p.name}.not_before`, `compares two params of one type, integer, number or timestamp`);
    }
  }
  const inPath = new Set([...path.matchAll(PATH_PARAM)].map((m) => m[1]));
  for (const name of inPath) {
    if (!params.some((p) => p.name === name && p.in === 'path')) add('path', `:${name} has no param with in: path`);
  }
  for (const p of params) if (p.in === 'path' && !inPath.has(p.name)) add(`params.${p.name}.in`, `the path has no :${p.name}`);
  return params;
}

function checkStatements(
  raw: unknown,
  resources: string[],
  inferResources: boolean,
  params: ParamDecl[],
  result: ResultKind,
  dbTypeOf: (rid: string) => DbType | undefined,
  add: (key: string, message: string) => void,
  claims: readonly string[],
): CompiledStatement[] {
  if (!Array.isArray(raw) || raw.length === 0) {
    add('statements', 'must be a list of at least one statement');
    return [];
  }
  if (result !== 'transaction' && raw.length > 1) add('statements', `result ${result} runs one statement`);
  const byName = new Map(params.map((p) => [p.name, p]));
  const out: CompiledStatement[] = [];
  raw.forEach((s: unknown, i: number) => {
    const key = `statements[${i}]`;
    if (!isObj(s)) {
      add(key, 'must be a mapping (resource, sql)');
      return;
    }
    for (const k of Object.keys(s)) if (!STATEMENT_KEYS.has(k)) add(`${key}.${k}`, 'unknown key');
    let rid = s.resource;
    if (rid === undefined && resources.length === 1) rid = resources[0];
    if (typeof rid !== 'string') {
      add(`${key}.resource`, 'names the resource the statement runs on');
      return;
    }
    const dbType = dbTypeOf(rid);
    if (dbType === undefined) {
      // One declared in `resources` is reported there already.
      if (!resources.includes(rid)) add(`${key}.resource`, `unknown resource ${rid} (no secure.${rid} section)`);
      return;
    }
    if (!resources.includes(rid)) {
      if (inferResources) resources.push(rid);
      else add(`${key}.resource`, `${rid} is not among the endpoint's resources`);
    }
    // The variant for the resource's database: sql is text, or a mapping of db_type to text.
    let text: unknown = s.sql;
    if (isObj(s.sql)) {
      for (const k of Object.keys(s.sql)) if (!['postgres', 'mysql', 'sqlite', 'odbc'].includes(k)) add(`${key}.sql.${k}`, 'unknown database (postgres, mysql, sqlite, odbc)');
      text = s.sql[dbType];
      if (text === undefined) {
        add(`${key}.sql`, `has no ${dbType} variant for resource ${rid}`);
        return;
      }
    }
    if (typeof text !== 'string' || text.trim() === '') {
      add(`${key}.sql`, 'must be SQL text, or a mapping of postgres/mysql/sqlite/odbc to SQL text');
      return;
    }
    let compiled;
    try {
      compiled = compileNamed(text, dbType);
    } catch (err) {
      if (!(err instanceof PlaceholderError)) throw err;
      add(`${key}.sql`, err.message);
      return;
    }
    // `each`: a body array whose items are objects; their fields bind by name.
    let itemFields: Set<string> | undefined;
    if (s.each !== undefined) {
      const p = typeof s.each === 'string' ? byName.get(s.each) : undefined;
      const items = p?.schema.items;
      if (result !== 'transaction') add(`${key}.each`, 'only a transaction expands a statement per item');
      else if (!p || p.in !== 'body' || p.schema.type !== 'array' || !isObj(items) || !isObj(items.properties)) {
        add(`${key}.each`, 'must name a body param of type array whose items are objects');
      } else itemFields = new Set(Object.keys(items.properties));
    }
    for (const name of new Set(compiled.names)) {
      if (itemFields?.has(name)) continue;
      if (name.startsWith(CLAIM_PARAM_PREFIX)) {
        if (!claims.includes(name.slice(CLAIM_PARAM_PREFIX.length))) add(`${key}.sql`, `:${name} binds a claim auth.sql_claims does not list`);
        continue;
      }
      if (name.startsWith('_')) {
        if (!MAGIC_PARAMS.includes(name as (typeof MAGIC_PARAMS)[number])) add(`${key}.sql`, `:${name} is not one of the reserved ${MAGIC_PARAMS.map((m) => `:${m}`).join(', ')} or :${CLAIM_PARAM_PREFIX}<claim>`);
        continue;
      }
      const p = byName.get(name);
      if (!p) add(`${key}.sql`, `placeholder :${name} has no param`);
      else if (p.schema.type === 'array' || p.schema.type === 'object') add(`${key}.sql`, `:${name} is a list; a statement binds it with each: ${name}`);
    }
    out.push({ resource: rid, dbType, sql: compiled.sql, names: compiled.names, each: s.each as string | undefined });
  });
  if (result === 'transaction' && new Set(out.map((s) => s.resource)).size > 1) {
    add('statements', 'a transaction runs on one resource: its statements name different ones');
  }
  return out;
}
