/** Shared OpenAPI/JSON schemas: the error body and the error responses every data route can give. */

export const errorBodySchema = {
  type: 'object',
  required: ['detail', 'cid'],
  properties: {
    detail: { type: 'string', description: 'What went wrong' },
    cid: { type: 'string', description: 'Correlation id of the request (also in X-Correlation-ID and in every log record)' },
  },
} as const;

/**
 * An error response: always JSON, also on routes whose success is text (a route's `produces` would
 * otherwise be applied to it), so the media type is named here. Inlined rather than a $ref: OpenAPI
 * 3.0 ignores siblings of $ref, and the example must show.
 */
function errorResponse(description: string, detail: string) {
  return { description, content: { 'application/json': { schema: errorBodySchema, example: { detail, cid: '3f9c1a7be2d4' } } } } as const;
}

export { errorResponse };

/**
 * Error responses of a route that uses database resource `rid`. No 404: a route whose resources
 * are not enabled is left out of the document (see swagger.ts).
 */
export function dataRouteErrors(rid: string) {
  return {
    400: errorResponse('Invalid parameter or body', 'querystring/limit must be <= 10000'),
    429: errorResponse('Too many requests waiting for the resource (see Retry-After)', `too many pending requests for resource ${rid}`),
    500: errorResponse('The query failed', `DB query error for resource ${rid}`),
    503: errorResponse('Database unreachable, or the server is shutting down', `could not open a DB connection to resource ${rid}`),
    504: errorResponse('A wait ran past its timeout', `20-sec timeout waiting for a request slot for resource ${rid}`),
  };
}

/**
 * Serializer compiler for routes answering database rows: the native JSON.stringify. The rows are
 * the statement's own columns with the types the drivers give (numbers, or exact decimal text beyond
 * 2^53), so the response schema documents the shape and tests hold real responses to it, while
 * fast-json-stringify's generated code made more garbage per response (bench/README.md).
 */
export const nativeJsonSerializer = () => (data: unknown) => JSON.stringify(data);
