import { randomUUID } from 'node:crypto';

/** A client-supplied correlation id is kept only if it is this safe to log and echo. */
const CLIENT_CID = /^[A-Za-z0-9._-]{1,64}$/;

/** Keeps a valid incoming X-Correlation-ID, otherwise the last `len` hex characters of a UUIDv4. */
export function correlationId(incoming: string | string[] | undefined, len: number): string {
  if (typeof incoming === 'string' && CLIENT_CID.test(incoming)) return incoming;
  const uuid = randomUUID();
  // The last group has 12 hex characters: enough for the usual length without rebuilding the string.
  return len <= 12 ? uuid.slice(-len) : uuid.replace(/-/g, '').slice(-len);
}
