/**
 * What a cached endpoint's validation made of a request, by its raw URL and Accept header: the
 * format negotiated and the params part of the cache key. It is learnt from requests that passed
 * validation and the param hooks (timestamps, not_before); a later request with the same URL and
 * Accept would come out of them with the same values (the endpoints it serves take their params
 * from the path and query string only), so its hit can be answered before they run again.
 *
 * One per app, for every cached endpoint: a method (GET or HEAD) and URL name one route, so they tell
 * which endpoint learnt them (the express lane, src/http/express-lane.ts, finds the endpoint this way).
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
  /**
   * Per method (GET, HEAD), by Accept (few distinct values), then by URL: no key is built per
   * request. HEAD learns on its own: a HEAD route of its own (not Fastify's copy of the GET route)
   * never learns, so nothing answers it from the GET route's memo.
   */
  private readonly byAccept = { GET: new Map<string, Map<string, Learnt>>(), HEAD: new Map<string, Map<string, Learnt>>() };
  private size = 0;

  get(method: string, url: string, accept: string | undefined): Learnt | undefined {
    const byAccept = method === 'GET' ? this.byAccept.GET : method === 'HEAD' ? this.byAccept.HEAD : undefined;
    return byAccept?.get(accept ?? '')?.get(url);
  }

  set(method: string, url: string, accept: string | undefined, learnt: Learnt): void {
    if (method !== 'GET' && method !== 'HEAD') return;
    if (url.length > MAX_URL || (accept !== undefined && accept.length > MAX_ACCEPT)) return;
    const byAccept = this.byAccept[method];
    const known = byAccept.get(accept ?? '');
    // A URL kept already is replaced in place: only a new one can fill the memo.
    if (known?.has(url)) {
      known.set(url, learnt);
      return;
    }
    if (this.size >= MAX_ENTRIES) {
      this.byAccept.GET.clear();
      this.byAccept.HEAD.clear();
      this.size = 0;
    }
    let byUrl = byAccept.get(accept ?? '');
    if (byUrl === undefined) byAccept.set(accept ?? '', (byUrl = new Map()));
    byUrl.set(url, learnt);
    this.size++;
  }
}
