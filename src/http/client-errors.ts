/**
 * Answers given before a request reaches the app's hooks: a request the HTTP parser refuses (400
 * for a bare CR, LF or NUL in a header, a bad method or version; 431 for a request line and headers
 * over the size limit; 408 when they do not arrive in time), a URL that is not valid percent-encoding,
 * an HTTP/1.1 request without Host, an Expect header the server cannot meet (417). Node and Fastify
 * answer these themselves with bodies of their own and no correlation id; here each gets, like every
 * other response, X-Correlation-ID, X-Process-Time and a {"detail", "cid"} body, and one log record
 * with that cid.
 */
import { maxHeaderSize, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { SettingsReader } from '../config/index.js';
import { BadRequestError } from '../errors.js';
import { getLogger } from '../log/index.js';
import { correlationId } from './cid.js';
import type { ErrorBody } from './error-reply.js';

const log = getLogger('client-errors.ts');

/** What Node passes with 'clientError': llhttp's code and reason, or ERR_HTTP_REQUEST_TIMEOUT. */
interface ClientError extends Error {
  code?: string;
  reason?: string;
}

/** The client's own X-Correlation-ID when it is valid (headers were parsed), else a new one. */
function newCid(settings: SettingsReader, incoming?: string | string[]): string {
  let len = 12;
  try {
    len = settings().cid_len;
  } catch {
    // config not loaded (embedded use, some tests): the default length
  }
  return correlationId(incoming, len);
}

function statusAndDetail(err: ClientError): { status: number; detail: string } {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, detail: `request line and headers exceed ${maxHeaderSize} bytes` };
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return { status: 413, detail: 'chunk extensions of the request body are too large' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, detail: 'the request was not received in time' };
    default:
      // llhttp's reasons are fixed texts ("Invalid header value char"); the request itself is never echoed.
      return { status: 400, detail: `malformed HTTP request: ${(err.reason ?? err.code ?? 'parse error').slice(0, 100)}` };
  }
}

function record(status: number, detail: string, cid: string, client: string | undefined, code?: string): void {
  log.info('client-err', `refused before routing: ${status}`, { status_code: status, detail, code, client, cid });
}

function body(detail: string, cid: string): string {
  return JSON.stringify({ detail, cid } satisfies ErrorBody);
}

/** The headers every early answer carries; no time was spent in the app, so X-Process-Time is 0. */
function headers(cid: string, payload: string): Record<string, string | number> {
  return {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(payload),
    'X-Correlation-ID': cid,
    'X-Process-Time': '0.000',
  };
}

/** Fastify's `clientErrorHandler` and `frameworkErrors` options, reading the cid length from `settings`. */
export function earlyErrorHandlers(settings: SettingsReader): {
  clientErrorHandler: (err: ClientError, socket: Socket) => void;
  frameworkErrors: (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => void;
} {
  return {
    clientErrorHandler: (err, socket) => clientErrorHandler(err, socket, settings),
    frameworkErrors: (err, req, reply) => frameworkErrors(err, req, reply, settings),
  };
}

/**
 * Fastify's clientErrorHandler: there is no request or response object, so the answer is written
 * to the socket, which is then closed (the parser cannot go on after an error).
 */
function clientErrorHandler(err: ClientError, socket: Socket, settings: SettingsReader): void {
  // A reset or closed connection has nobody to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const { status, detail } = statusAndDetail(err);
  const cid = newCid(settings);
  record(status, detail, cid, socket.remoteAddress, err.code);
  // As Node does: never write into a response that has already started on this socket (keep-alive).
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (socket.writable && !inFlight?.headersSent) {
    const payload = body(detail, cid);
    const head = Object.entries({ ...headers(cid, payload), Connection: 'close' })
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n${head}\r\n${payload}`);
  }
  socket.destroy(err);
}

/**
 * Fastify's frameworkErrors: a URL the router cannot decode. The request has not run any hook, so
 * it has no correlation id yet and the reply is complete here.
 */
function frameworkErrors(err: FastifyError, req: FastifyRequest, reply: FastifyReply, settings: SettingsReader): void {
  const status = err.statusCode ?? 400;
  const detail = err.code === 'FST_ERR_BAD_URL' ? 'malformed URL: not valid percent-encoding' : err.message;
  const cid = newCid(settings, req.headers['x-correlation-id']);
  record(status, detail, cid, req.raw.socket?.remoteAddress, err.code);
  const payload = body(detail, cid);
  void reply.code(status).headers(headers(cid, payload)).send(payload);
}

/**
 * Answers an Expect other than 100-continue (417, which Node would send bare), and refuses an
 * HTTP/1.1 request without Host (RFC 9112 requires a 400) through the app's error replies. Must be
 * registered after the lifecycle hooks, which give the request its correlation id.
 */
export function registerClientErrors(app: FastifyInstance, settings: SettingsReader): void {
  app.server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    const cid = newCid(settings, req.headers['x-correlation-id']);
    const detail = `expectation not supported: ${String(req.headers.expect).slice(0, 100)}`;
    record(417, detail, cid, req.socket.remoteAddress);
    const payload = body(detail, cid);
    res.writeHead(417, headers(cid, payload)).end(payload);
  });
  app.addHook('onRequest', (req, _reply, done) => {
    if (req.headers.host === undefined && req.raw.httpVersionMajor === 1 && req.raw.httpVersionMinor >= 1) {
      done(new BadRequestError('an HTTP/1.1 request needs a Host header'));
      return;
    }
    done();
  });
}
