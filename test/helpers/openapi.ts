/**
 * An OpenAPI 3 document (the gateway's /docs/json) held against real answers: the status is
 * listed, declared headers are there and match, the content type is declared and the body matches
 * its schema, checked with Fastify's own ajv compiler.
 */
import AjvCompiler from '@fastify/ajv-compiler';

export interface MediaType {
  schema?: object;
}
export interface HeaderObject {
  required?: boolean;
  schema?: object;
}
export interface ResponseObject {
  description: string;
  headers?: Record<string, HeaderObject>;
  content?: Record<string, MediaType>;
}
export interface Operation {
  tags?: string[];
  requestBody?: unknown;
  responses: Record<string, ResponseObject>;
  security?: Record<string, string[]>[];
}
export interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components?: { securitySchemes?: Record<string, { type: string; in?: string; name?: string; scheme?: string }> };
}

/** Fastify's validator compiler (ajv 8 with ajv-formats), without the coercion and defaults it uses for requests. */
const compile = AjvCompiler()({}, { customOptions: { coerceTypes: false, useDefaults: false, removeAdditional: false, allErrors: true, strict: false } });
const compiled = new Map<string, ReturnType<typeof compile>>();

function validate(schema: object, value: unknown): string | undefined {
  const key = JSON.stringify(schema);
  let fn = compiled.get(key);
  if (fn === undefined) compiled.set(key, (fn = compile({ schema } as never)));
  if (fn(value)) return undefined;
  return JSON.stringify(fn.errors);
}

export interface Answer {
  status: number;
  headers: Headers;
  body: string;
}

/** Media type without parameters, and its parameters, lower-cased. */
function mediaType(value: string): { type: string; params: Set<string> } {
  const [type, ...params] = value.split(';').map((s) => s.trim().toLowerCase());
  return { type, params: new Set(params.filter(Boolean).map((p) => p.replace(/\s+/g, ''))) };
}

/**
 * Holds one answer to the document: its status is listed, the declared headers are there (when
 * required) and match their schemas, its content type is one the response declares (with the
 * declared parameters), and its body matches that media type's schema.
 */
export function conformance(doc: OpenApiDocument, method: string, path: string, answer: Answer): string[] {
  const where = `${method.toUpperCase()} ${path} ${answer.status}`;
  const response = doc.paths[path]?.[method]?.responses[String(answer.status)];
  if (response === undefined) return [`${where}: status not documented (body ${answer.body.slice(0, 200)})`];
  const problems: string[] = [];
  for (const [name, header] of Object.entries(response.headers ?? {})) {
    const value = answer.headers.get(name);
    if (value === null) {
      if (header.required) problems.push(`${where}: required header ${name} missing`);
      continue;
    }
    const err = header.schema && validate(header.schema, value);
    if (err) problems.push(`${where}: header ${name}=${value}: ${err}`);
  }
  const contentType = answer.headers.get('content-type');
  const declared = Object.keys(response.content ?? {});
  if (declared.length === 0) {
    if (answer.body !== '') problems.push(`${where}: no content documented, got ${contentType}`);
    return problems;
  }
  if (contentType === null) return [...problems, `${where}: no content type; documented ${declared.join(', ')}`];
  const got = mediaType(contentType);
  const match = declared.find((d) => {
    const want = mediaType(d);
    return want.type === got.type && [...want.params].every((p) => got.params.has(p));
  });
  if (match === undefined) return [...problems, `${where}: content type ${contentType} not documented (${declared.join(', ')})`];
  const schema = response.content?.[match].schema;
  if (schema === undefined) return problems;
  let body: unknown = answer.body;
  if (got.type === 'application/json') {
    try {
      body = JSON.parse(answer.body);
    } catch {
      return [...problems, `${where}: body is not JSON: ${answer.body.slice(0, 200)}`];
    }
  }
  const err = validate(schema, body);
  if (err) problems.push(`${where}: body ${answer.body.slice(0, 200)}: ${err}`);
  return problems;
}

