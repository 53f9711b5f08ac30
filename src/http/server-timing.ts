/**
 * The Server-Timing response header (as PostgREST sends it): where a request's time went, in
 * milliseconds, so a client or browser devtools can tell a queue from a slow statement without
 * the gateway's logs. `slot` and `conn` are the waits for the request slots and pooled connections
 * of every resource it holds (one after another, so summed); `query` is the time of its statements
 * so far. Headers leave before a stream's body, so for a stream `query` is the time to its first row.
 */
import type { RequestState } from './request-state.js';

function ms(seconds: number): string {
  return (seconds * 1000).toFixed(1);
}

/** The header's value, or undefined for a request that holds no database resources (nothing to time). */
export function serverTiming(state: RequestState): string | undefined {
  const held = state.resources;
  if (held === undefined) return undefined;
  let slot = 0;
  let conn = 0;
  for (const rid of held.resourceIds) {
    slot += held.slotWaitSeconds(rid);
    conn += held.connWaitSeconds(rid);
  }
  let query = 0;
  for (const q of state.queries) query += q.seconds;
  return `slot;dur=${ms(slot)}, conn;dur=${ms(conn)}, query;dur=${ms(query)}`;
}
