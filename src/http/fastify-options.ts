/**
 * The Fastify constructor options the gateway relies on: the ones no plugin can set afterwards.
 * The gateway's own app is built with them, and an app embedding the plugin passes them the same
 * way (`Fastify({ ...fastifyOptions(settings), logger: ... })`); docs/plugin.md says what each
 * changes and what happens without it.
 */
import type { Server } from 'node:http';
import type { FastifyHttpOptions } from 'fastify';
import type { Settings, SettingsReader } from '../config/index.js';
import { earlyErrorHandlers } from './client-errors.js';
import { trustProxy } from '../net/trust-proxy.js';
import { fastifyTimeouts, nodeServerTimeouts } from './server-timeouts.js';

/** Bodies up to this size (a batch of 1,000 rows to insert is about 100 KB). */
export const BODY_LIMIT_BYTES = 5 * 1024 * 1024;

/** `settings` as a reader; given an object, that object for ever. */
function readerOf(settings: Settings | SettingsReader): SettingsReader {
  return typeof settings === 'function' ? settings : () => settings;
}

export function fastifyOptions(settings: Settings | SettingsReader): FastifyHttpOptions<Server> {
  const read = readerOf(settings);
  return {
    // Answered by the lifecycle's own onRequest check, so the 503 body has the usual shape.
    return503OnClosing: false,
    bodyLimit: BODY_LIMIT_BYTES,
    // Answers given before the app's hooks run get the usual headers and body (./client-errors.ts).
    ...earlyErrorHandlers(read),
    // Node would answer a Host-less HTTP/1.1 request with a bare 400; registerClientErrors does instead.
    http: { requireHostHeader: false, ...nodeServerTimeouts(read()) },
    ...fastifyTimeouts(read()),
    // Always a function, reading trust_proxy at each use: empty trusts no proxy (request.ip is the peer).
    trustProxy: trustProxy(read),
  };
}
