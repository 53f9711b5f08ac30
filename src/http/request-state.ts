/**
 * What the gateway keeps per request, on `request.wt`. Created in onRequest, so every later hook
 * and handler can rely on it; never module state, so nothing leaks between requests.
 */
import type { QueryRecord } from '../query/query.js';

/** What a route's acquired resources must offer (implemented by the resource layer). */
export interface HeldResources {
  connection(resourceId: string): import('../db/types.js').DbConnection;
  slotWaitSeconds(resourceId: string): number;
  connWaitSeconds(resourceId: string): number;
  /** Gives everything back; exactly once however often it is called. */
  release(): Promise<void>;
  /** The same, synchronously. */
  releaseNow(): void;
}

export interface RequestState {
  /** performance.now() at arrival. */
  start: number;
  cid: string;
  /** Whether this request writes request/request-stats records (not for /metrics, /docs, /health). */
  logged: boolean;
  /** The route template, when a route's hook set it (else read from Fastify at the end). */
  endpoint?: string;
  /** The raw response: a stream whose client stopped reading is cut off through it. */
  response?: import('node:http').ServerResponse;
  /** The client address, read once for the records. */
  client: string;
  /** Set while the request waits for resources: stops the wait when the client goes away. */
  abandon?: () => void;
  held?: HeldResources;
  queries: QueryRecord[];
  /** Set when the end-of-request work has run (it runs once). */
  finished?: boolean;
  /** Work that must finish before resources go back, e.g. stopping a streamed statement. */
  cleanups: (() => Promise<void>)[];
  /** Statements of this request still running (RequestQueries counts them). */
  running: number;
  /** Called once `running` drops to zero, when the request's end waits for that. */
  whenIdle?: () => void;
}

/** Whether giving the resources back must wait: a statement still runs, or a stream must be stopped. */
export function isBusy(state: RequestState): boolean {
  return state.running > 0 || state.cleanups.length > 0;
}

/** Counts a statement as ended and wakes whoever waits for the last one. */
export function statementEnded(state: RequestState): void {
  state.running--;
  if (state.running > 0 || state.whenIdle === undefined) return;
  const wake = state.whenIdle;
  state.whenIdle = undefined;
  wake();
}

/** Settles once no statement of the request runs. */
export function statementsEnded(state: RequestState): Promise<void> {
  if (state.running === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const earlier = state.whenIdle;
    state.whenIdle = () => {
      earlier?.();
      resolve();
    };
  });
}

declare module 'fastify' {
  interface FastifyRequest {
    wt: RequestState;
  }
  interface FastifyContextConfig {
    /** Database resources the route needs; acquired before the handler runs. */
    resources?: string[];
  }
}
