/**
 * What a cached endpoint's validation made of a request, by its raw URL and Accept header: the
 * format negotiated and the params part of the cache key. It is learnt from requests that passed
 * validation and the param hooks (timestamps, not_before); a later request with the same URL and
 * Accept would come out of them with the same values (the endpoints it serves take their params
 * from the path and query string only), so its hit can be answered before they run again.
 *
 * One per app, for every cached endpoint: a GET or HEAD URL names one route, so the URL alone tells
 * which endpoint learnt it (the express lane, src/http/express-lane.ts, finds the endpoint this way).
 *
 * Bounded: URLs longer than MAX_URL are not kept, and the memo is emptied when it holds MAX_ENTRIES
 * (most traffic repeats a few URLs; an odd one costs a validation, never a wrong answer).
 */
import type { FastifyContextConfig } from 'fastify';
import type { ExpressRoute } from '../http/express-lane.js';

export interface Learnt {
  format: string;
  params: string;
  /** The whole key of a request without a caller, when every such request has the same (made and hashed once). */
  anonymousKey: string | undefined;
  /** The endpoint that learnt it. */
  route: ExpressRoute;
  /** Its route's config as Fastify's request hooks read it (request.routeOptions.config: one object per route). */
  config: FastifyContextConfig;
  /** The lifecycle writes records for the URL (it is not a quiet path). */
  recorded: boolean;
}

const MAX_ENTRIES = 4000;
const MAX_URL = 256;
const MAX_ACCEPT = 256;

export class ParamsMemo {
  /** By Accept (few distinct values), then by URL: no key is built per request. */
  private readonly byAccept = new Map<string, Map<string, Learnt>>();
  private size = 0;

  get(url: string, accept: string | undefined): Learnt | undefined {
    return this.byAccept.get(accept ?? '')?.get(url);
  }

  set(url: string, accept: string | undefined, learnt: Learnt): void {
    if (url.length > MAX_URL || (accept !== undefined && accept.length > MAX_ACCEPT)) return;
    const known = this.byAccept.get(accept ?? '');
    // A URL kept already is replaced in place: only a new one can fill the memo.
    if (known?.has(url)) {
      known.set(url, learnt);
      return;
    }
    if (this.size >= MAX_ENTRIES) {
      this.byAccept.clear();
      this.size = 0;
    }
    let byUrl = this.byAccept.get(accept ?? '');
    if (byUrl === undefined) this.byAccept.set(accept ?? '', (byUrl = new Map()));
    byUrl.set(url, learnt);
    this.size++;
  }
}
