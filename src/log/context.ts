/**
 * Per-request context carried through async calls, so any log record written while serving a
 * request carries its correlation id without passing it around.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface RequestContext {
  cid: string;
}

export const requestContext = new AsyncLocalStorage<RequestContext>();

export function currentCid(): string | undefined {
  return requestContext.getStore()?.cid;
}
