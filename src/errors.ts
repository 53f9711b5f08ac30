/**
 * The one error hierarchy of the gateway. Every error a client can see is an AppError; the HTTP
 * error replies (src/http/error-reply.ts) turn it into its status code in one place.
 */

export abstract class AppError extends Error {
  /** HTTP status this error maps to. */
  abstract readonly statusCode: number;
  /** Short stable code for logs and metrics. */
  abstract readonly code: string;
  /** The resource the error concerns, when one does. */
  readonly resourceId?: string;

  constructor(message: string, opts: { resourceId?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.resourceId = opts.resourceId;
  }
}

/** Too many requests already wait for a resource: the client should come back later (429). */
export class TooManyPendingError extends AppError {
  readonly statusCode = 429;
  readonly code = 'overload';
  /** Seconds the client should wait before retrying (Retry-After header). */
  readonly retryAfterSeconds: number;

  constructor(message: string, opts: { resourceId?: string; retryAfterSeconds?: number } = {}) {
    super(message, opts);
    this.retryAfterSeconds = Math.max(1, Math.ceil(opts.retryAfterSeconds ?? 1));
  }
}

/** What kind of wait timed out; used for logs and metrics labels. */
export type TimeoutKind = 'slot' | 'pool' | 'connect' | 'query';

/** A wait ran past its limit (504). */
export class AppTimeoutError extends AppError {
  readonly statusCode = 504;
  readonly code = 'timeout';
  readonly kind: TimeoutKind;
  readonly timeoutSeconds: number;

  constructor(message: string, opts: { resourceId?: string; kind: TimeoutKind; timeoutSeconds: number; cause?: unknown }) {
    super(message, opts);
    this.kind = opts.kind;
    this.timeoutSeconds = opts.timeoutSeconds;
  }
}

/**
 * A transaction's COMMIT was sent but no clear answer came back in time (504): its rows may or may
 * not have been written. Said as such, never as a failure, which could be false.
 */
export class OutcomeUnknownError extends AppError {
  readonly statusCode = 504;
  readonly code = 'outcome-unknown';
}

/**
 * A database failed. `unreachable` (503) when no connection could be had; otherwise the query
 * failed on a working database (500).
 */
export class DatabaseError extends AppError {
  readonly code = 'database';
  readonly unreachable: boolean;

  constructor(message: string, opts: { resourceId?: string; unreachable?: boolean; cause?: unknown } = {}) {
    super(message, opts);
    this.unreachable = opts.unreachable ?? false;
  }

  get statusCode(): number {
    return this.unreachable ? 503 : 500;
  }
}

/**
 * The resource's circuit breaker is open (src/resources/breaker.ts): its database failed the last
 * connection attempts, so the request is answered 503 at once instead of waiting for a connect
 * timeout. Retry-After is the probe interval.
 */
export class BreakerOpenError extends DatabaseError {
  /** Seconds until a probe may have closed the breaker (Retry-After header). */
  readonly retryAfterSeconds: number;

  constructor(resourceId: string, failures: number, probeIntervalSeconds: number) {
    super(
      `circuit breaker open for resource ${resourceId}: its database failed ${failures} connection attempts in a row; a probe tries it again every ${probeIntervalSeconds} s`,
      { resourceId, unreachable: true },
    );
    this.retryAfterSeconds = Math.max(1, Math.ceil(probeIntervalSeconds));
  }
}

/** The client's input is wrong in a way only the handler or the database can tell (400). */
export class BadRequestError extends AppError {
  readonly statusCode = 400;
  readonly code = 'bad-request';
}

/** What the request names does not exist here: a resource not enabled on this server, or the row a `one` endpoint looks up (404). */
export class NotFoundError extends AppError {
  readonly statusCode = 404;
  readonly code = 'not-found';
}

/** The request conflicts with what is stored: a row with the same key exists (409). */
export class ConflictError extends AppError {
  readonly statusCode = 409;
  readonly code = 'conflict';
}

/**
 * No valid credential came with the request (401): none, malformed, expired, revoked or a bad
 * signature. The message says which kind, never why a check failed in detail or the credential.
 */
export class UnauthorizedError extends AppError {
  readonly statusCode = 401;
  readonly code = 'unauthenticated';
}

/** The caller is known, but its roles do not allow this endpoint (403). */
export class ForbiddenError extends AppError {
  readonly statusCode = 403;
  readonly code = 'forbidden';
}

/**
 * The caller went over its rate limit (429). Not TooManyPendingError (code 'overload'), which says
 * a resource's queue is full whoever calls: metrics and alerts tell the two apart by code.
 */
export class RateLimitedError extends AppError {
  readonly statusCode = 429;
  readonly code = 'rate-limited';
  /** Seconds until the limit lets the caller in again (Retry-After). */
  readonly retryAfterSeconds: number;

  constructor(message: string, opts: { retryAfterSeconds?: number } = {}) {
    super(message);
    this.retryAfterSeconds = Math.max(1, Math.ceil(opts.retryAfterSeconds ?? 1));
  }
}

/**
 * The client's address is refused by an allow or deny list (403). Not ForbiddenError: the network
 * said no before anyone was identified, so it is no authorization failure in records and metrics.
 */
export class AccessDeniedError extends AppError {
  readonly statusCode = 403;
  readonly code = 'access-denied';
}

/** An unexpected failure with details worth logging but not showing (500). */
export class WithDetailsError extends AppError {
  readonly statusCode = 500;
  readonly code = 'internal';
  readonly details: Record<string, unknown>;

  constructor(message: string, details: Record<string, unknown> = {}, cause?: unknown) {
    super(message, { cause });
    this.details = details;
  }
}

/** The process is shutting down and will not start new work (503). */
export class ShuttingDownError extends AppError {
  readonly statusCode = 503;
  readonly code = 'shutting-down';

  constructor(message = 'server is shutting down') {
    super(message);
  }
}

/** A configuration file or value is invalid. Never reaches a client. */
export class ConfigError extends Error {
  readonly file?: string;
  readonly keys: string[];

  constructor(message: string, opts: { file?: string; keys?: string[] } = {}) {
    super(message);
    this.name = 'ConfigError';
    this.file = opts.file;
    this.keys = opts.keys ?? [];
  }
}

/** The client went away before its request could be served (499, never actually delivered). */
export class ClientClosedError extends AppError {
  readonly statusCode = 499;
  readonly code = 'client-closed';

  constructor() {
    super('client closed the connection before the request was served');
  }
}
