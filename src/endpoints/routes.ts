/**
 * Routes of the declared endpoints (src/endpoints/load.ts). Each becomes a Fastify route like the
 * code routes: `config.resources` makes the acquire hook hold a slot and a connection per resource,
 * the params become the route's schemas (so validation, its 400s and the OpenAPI document come from
 * them), and the statements run through RequestQueries with every timeout, log record and metric.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest, preValidationHookHandler } from 'fastify';
import { resourceSettingsOf } from '../config/index.js';
import { AppError, ConfigError, NotFoundError } from '../errors.js';
import { dataRouteErrors, errorResponse, nativeJsonSerializer } from '../http/schemas.js';
import { integersFromText } from '../http/strict-input.js';
import { RequestQueries, type QueryDeps, type QueryOptions } from '../query/query.js';
import type { Endpoint, ParamDecl } from './declaration.js';
import { compileBinder } from './binder.js';
import { CONTENT_TYPES, encodeAll, encodeRows, linesOf, MEDIA_TYPES, negotiator } from './formats.js';
import { loadEndpoints } from './load.js';
import { limitsConfig } from '../limits/endpoint-limits.js';
import { paramValuesHook } from './param-values.js';
import { renderSchema } from './param-types.js';
import { pgRoleSetup } from '../auth/sql-identity.js';
import { invalidationTargets } from '../cache/endpoint-cache.js';
import { endpointCacheHooks, type EndpointCacheHooks } from '../cache/http.js';
import type { ResponseCache } from '../cache/response-cache.js';
import { ParamsMemo } from '../cache/params-memo.js';

type Obj = Record<string, unknown>;

/** A unique violation answered with the endpoint's own `conflict` status. */
class EndpointConflictError extends AppError {
  readonly code = 'conflict';
  constructor(
    readonly statusCode: number,
    message: string,
    cause: unknown,
  ) {
    super(message, { cause });
  }
}


/** The JSON schema of an object holding `params` (one location's). */
function objectSchema(params: ParamDecl[], key: (p: ParamDecl) => string, closed: boolean): Obj {
  const properties: Obj = {};
  for (const p of params) properties[key(p)] = itemsClosed(renderSchema(p.schema, p.in));
  const required = params.filter((p) => p.required).map(key);
  return { type: 'object', ...(closed ? { additionalProperties: false } : {}), properties, ...(required.length > 0 ? { required } : {}) };
}

/** Item objects of a body array refuse unknown fields, as the body itself does. */
function itemsClosed(schema: Obj): Obj {
  const items = schema.items as Obj | undefined;
  if (items?.type !== 'object') return schema;
  return { ...schema, items: { ...items, additionalProperties: false } };
}

function schemaOf(ep: Endpoint): Obj {
  const at = (loc: ParamDecl['in']) => ep.params.filter((p) => p.in === loc);
  const data = ep.result === 'rows' || ep.result === 'one' || ep.result === 'stream';
  const query = objectSchema(at('query'), (p) => p.name, true);
  if (data) {
    (query.properties as Obj).format = {
      type: 'string',
      enum: ep.formats,
      description: `Response format (else chosen by Accept: ${ep.formats.map((f) => MEDIA_TYPES[f]).join(', ')})`,
    };
  }
  const rid = ep.resources[0];
  const row = ep.columns ? { type: 'object', properties: ep.columns } : { type: 'object', additionalProperties: true };
  // An example row when every column declares one (the first of its examples).
  const cols = Object.entries(ep.columns ?? {});
  const exampleRow = cols.length > 0 && cols.every(([, c]) => Array.isArray(c.examples)) ? Object.fromEntries(cols.map(([k, c]) => [k, (c.examples as unknown[])[0]])) : undefined;
  const content: Obj = {};
  for (const f of ep.formats) {
    const json = f === 'json';
    content[MEDIA_TYPES[f]] = {
      schema: json ? (ep.result === 'one' ? row : { type: 'array', items: row }) : { type: 'string' },
      ...(json && exampleRow ? { example: ep.result === 'one' ? exampleRow : [exampleRow] } : {}),
    };
  }
  const success = data
    ? { description: ep.result === 'one' ? 'The row' : 'Rows', content }
    : { description: 'Rows affected', type: 'object', properties: { [ep.countAs]: { type: 'integer' } } };
  const schema: Obj = {
    summary: ep.summary,
    description: [
      ep.description,
      `Declared in ${ep.file}. Uses resource${ep.resources.length > 1 ? 's' : ''} ${ep.resources.map((r) => `\`${r}\``).join(', ')}.`,
      ep.cache ? `Answers are cached for ${ep.cache.ttl} s per caller's roles and params (ETag, Cache-Control; 304 to If-None-Match).` : undefined,
    ]
      .filter(Boolean)
      .join('\n\n'),
    tags: ep.tags.length > 0 ? ep.tags : undefined,
    querystring: query,
    response: {
      [ep.status]: success,
      ...(data ? { 406: errorResponse('None of the offered formats fits ?format= or Accept', 'not acceptable: this endpoint answers json (application/json)') } : {}),
      ...(ep.result === 'one' ? { 404: errorResponse('No row matched', `no row found for ${ep.method} ${ep.path}`) } : {}),
      ...(ep.cache ? { 304: { description: 'Not modified: If-None-Match names the ETag of the cached answer; no body' } } : {}),
      ...(data ? {} : { [ep.conflict]: errorResponse('A row with the same key exists; nothing was written', `duplicate row for resource ${rid}: a row with the same key already exists`) }),
      ...dataRouteErrors(rid),
    },
  };
  if (at('path').length > 0) schema.params = objectSchema(at('path'), (p) => p.name, false);
  if (at('header').length > 0) schema.headers = objectSchema(at('header'), (p) => p.header ?? p.name, false);
  if (at('body').length > 0) schema.body = objectSchema(at('body'), (p) => p.name, true);
  if (data && ep.formats.some((f) => f !== 'json')) schema.produces = ep.formats.map((f) => MEDIA_TYPES[f]);
  return schema;
}

/** Path and header integers are read from strict decimal text, as query integers are (src/http/strict-input.ts). */
function strictIntegers(ep: Endpoint): preValidationHookHandler | undefined {
  const path = ep.params.filter((p) => p.in === 'path' && p.schema.type === 'integer').map((p) => p.name);
  const headers = ep.params.filter((p) => p.in === 'header' && p.schema.type === 'integer').map((p) => p.header ?? p.name);
  if (path.length === 0 && headers.length === 0) return undefined;
  return (req, _reply, done) => {
    integersFromText(req.params as Obj, path);
    integersFromText(req.headers as Obj, headers);
    done();
  };
}

function handlerOf(ep: Endpoint, deps: QueryDeps, cache: EndpointCacheHooks | undefined) {
  const stmt = ep.statements[0];
  const rid = stmt.resource;
  const timeout = (): QueryOptions | undefined =>
    ep.timeout === undefined ? undefined : { timeoutSeconds: Math.min(ep.timeout, resourceSettingsOf(deps.settings(), rid).db_default_query_timeout) };
  const bind = compileBinder(ep);
  const formatOf = negotiator(ep.formats);
  const afterWrite = cache?.afterWrite?.bind(cache);
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const format = formatOf(req);
    // A cached read that runs its query: what it sends is kept (src/cache/http.ts).
    const lead = cache?.lead(req);
    const q = new RequestQueries(req.wt, deps.onQuery, deps.settings);
    const statements = bind(req);
    // As the caller's database role, in one transaction with its claims (row-level security).
    const setup = ep.pgRoleClaim === undefined ? undefined : [pgRoleSetup(req.wt.caller, ep.pgRoleClaim)];
    const options = (): QueryOptions | undefined => (setup === undefined ? timeout() : { ...timeout(), setup });
    reply.code(ep.status);
    try {
      switch (ep.result) {
        case 'rows':
        case 'one': {
          const { sql, params } = statements[0];
          let rows = await q.rows(rid, sql, params, options());
          await q.release();
          if (afterWrite) await afterWrite();
          if (ep.maxRows !== undefined && rows.length > ep.maxRows) rows = rows.slice(0, ep.maxRows);
          if (ep.result === 'one') {
            if (rows.length === 0) throw new NotFoundError(`no row found for ${ep.method} ${ep.path}`, { resourceId: rid });
            rows = rows.slice(0, 1);
            if (format === 'json') return lead ? lead.send(req, reply, JSON.stringify(rows[0]), CONTENT_TYPES.json) : reply.type(CONTENT_TYPES.json).send(JSON.stringify(rows[0]));
          }
          // Written here as the route's serializer would (nativeJsonSerializer): a string with its type
          // set skips Fastify's lookup of a serializer by status and content type.
          if (format === 'json') return lead ? lead.send(req, reply, JSON.stringify(rows), CONTENT_TYPES.json) : reply.type(CONTENT_TYPES.json).send(JSON.stringify(rows));
          if (lead) return lead.send(req, reply, encodeAll(rows, format), CONTENT_TYPES[format]);
          return reply.type(CONTENT_TYPES[format]).send(encodeAll(rows, format));
        }
        case 'stream': {
          const { sql, params } = statements[0];
          // Encoded where the statement runs when the driver can (SQLite's worker thread), else a batch at a time.
          const rows = await q.stream(rid, sql, params, { ...options(), lines: linesOf(format, ep.maxRows) });
          if (lead) return lead.sendStream(req, reply, encodeRows(rows, format, ep.maxRows), CONTENT_TYPES[format]);
          reply.type(CONTENT_TYPES[format]);
          return reply.send(Readable.from(encodeRows(rows, format, ep.maxRows), { objectMode: false }));
        }
        case 'exec':
        case 'transaction': {
          const counts = await q.transaction(rid, statements, ep.txRetries === undefined ? options() : { ...options(), txRetries: ep.txRetries });
          await q.release();
          if (afterWrite) await afterWrite();
          return reply.send({ [ep.countAs]: counts.reduce((a, b) => a + b, 0) });
        }
      }
    } catch (err) {
      if (err instanceof AppError && err.statusCode === 409 && ep.conflict !== 409) throw new EndpointConflictError(ep.conflict, err.message, err);
      throw err;
    }
  };
}

/**
 * `cache`: the endpoint's response-cache hooks (src/cache/http.ts), when it declares `cache` or
 * `invalidates` and the app has a response cache.
 */
export function registerEndpoint(app: FastifyInstance, ep: Endpoint, deps: QueryDeps, cache?: EndpointCacheHooks): void {
  const data = ep.result === 'rows' || ep.result === 'one' || ep.result === 'stream';
  // 406 before validation and before any slot is taken.
  const formatOf = negotiator(ep.formats);
  const negotiation: preValidationHookHandler = (req, _reply, done) => {
    try {
      formatOf(req);
      done();
    } catch (err) {
      done(err as Error);
    }
  };
  const integers = strictIntegers(ep);
  const values = paramValuesHook(ep);
  app.route({
    method: ep.method,
    url: ep.path,
    config: { resources: ep.resources, ...limitsConfig(ep), ...(ep.auth ? { auth: ep.auth } : {}), ...(ep.public ? { public: true } : {}) },
    serializerCompiler: nativeJsonSerializer,
    schema: schemaOf(ep),
    ...(cache?.preParsing ? { preParsing: cache.preParsing } : {}),
    preValidation: [...(data ? [negotiation] : []), ...(integers ? [integers] : [])],
    // The cache's lookup after the param values are final, and before the acquire hook (added last, in onRoute).
    ...(values || cache?.preHandler ? { preHandler: [...(values ? [values] : []), ...(cache?.preHandler ? [cache.preHandler] : [])] } : {}),
    ...(cache?.onError ? { onError: cache.onError } : {}),
    handler: handlerOf(ep, deps, cache),
  });
}

/**
 * Registers every endpoint of the files named by the `endpoints` key; throws ConfigError listing
 * every problem. `rowColumns`: the row types read from the database for endpoints without `columns`;
 * `memo`: what the app's cached endpoints learn of their URLs (src/cache/params-memo.ts).
 */
export function endpointRoutes(
  app: FastifyInstance,
  deps: QueryDeps,
  rowColumns?: (ep: Endpoint) => Endpoint['columns'],
  cache?: ResponseCache,
  memo: ParamsMemo = new ParamsMemo(),
): void {
  const endpoints = loadEndpoints(deps.settings());
  // A built-in route of the same method and path: named here with the others' form, not by Fastify's throw.
  const taken = endpoints
    .filter((ep) => app.hasRoute({ method: ep.method, url: ep.path }))
    .map((ep) => `${ep.file}: ${ep.method} ${ep.path}: path: a built-in route has this method and path`);
  if (taken.length > 0) throw new ConfigError(`endpoint files refused, ${taken.length} problem(s): ${taken.join('; ')}`, { keys: ['endpoints'] });
  const targets = cache === undefined ? undefined : invalidationTargets(endpoints);
  for (const ep of endpoints) {
    const hooks = cache === undefined ? undefined : endpointCacheHooks(ep, cache, deps.settings, targets?.get(`${ep.method} ${ep.path}`), memo);
    registerEndpoint(app, ep.columns || !rowColumns ? ep : { ...ep, columns: rowColumns(ep) }, deps, hooks);
  }
}
