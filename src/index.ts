/**
 * The package's entry: WatchTower as a Fastify plugin (docs/plugin.md). The gateway process itself
 * starts from main.js (`npm start`, the `watchtower` command).
 */
// A route's `schema.summary`, `tags` and `description` are @fastify/swagger's additions to Fastify's
// types; the plugin serves them at /docs, so its users get them too.
/// <reference types="@fastify/swagger" preserve="true" />
export { watchtower, loadConfig, type WatchtowerOptions, type WatchtowerHandle } from './plugin.js';
export { fastifyOptions, BODY_LIMIT_BYTES } from './http/fastify-options.js';
export type { RequestDb } from './http/request-db.js';
export type { RequestState } from './http/request-state.js';
export type { QueryOptions } from './query/query.js';
export type { Row, SqlParam, Statement } from './db/types.js';
export type { Settings, SettingsReader, ConfigPaths } from './config/index.js';
export { setLogDestination, type LogDestination } from './log/index.js';
export {
  AppError,
  AppTimeoutError,
  BadRequestError,
  ConfigError,
  ConflictError,
  DatabaseError,
  NotFoundError,
  ShuttingDownError,
  TooManyPendingError,
} from './errors.js';
