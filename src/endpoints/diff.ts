/** What an endpoint switch changes, by `METHOD path`, for its log record. */
import type { Endpoint } from './declaration.js';

export interface EndpointDiff {
  added: string[];
  removed: string[];
  /** Same method and path, another declaration (SQL, params, result...). */
  changed: string[];
}

const keyOf = (ep: Endpoint) => `${ep.method} ${ep.path}`;

export function diffEndpoints(before: readonly Endpoint[], after: readonly Endpoint[]): EndpointDiff {
  const old = new Map(before.map((ep) => [keyOf(ep), JSON.stringify(ep)]));
  const now = new Map(after.map((ep) => [keyOf(ep), JSON.stringify(ep)]));
  return {
    added: [...now.keys()].filter((k) => !old.has(k)),
    removed: [...old.keys()].filter((k) => !now.has(k)),
    changed: [...now].filter(([k, text]) => old.has(k) && old.get(k) !== text).map(([k]) => k),
  };
}
