import { randomFillSync } from 'node:crypto';

/** A client-supplied correlation id is kept only if it is this safe to log and echo. */
const CLIENT_CID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Random hex digits drawn in batches (one fill and one hex encoding per 512 ids at the default
 * length), each id a slice of them: randomUUID() built a 36-character string per request to keep
 * 12 characters of it, and encoding a few bytes per id cost a call into C++ each time.
 */
const random = Buffer.alloc(3072);
let digits = '';
let used = 0;

/** `chars` random lowercase hex digits (at most 6144 per call). */
export function randomHex(chars: number): string {
  if (used + chars > digits.length) {
    randomFillSync(random);
    digits = random.toString('hex');
    used = 0;
  }
  // Digits are never reused: every id gets fresh ones (cid_len is at most 32, far below a batch).
  const id = digits.slice(used, used + chars);
  used += chars;
  return id;
}

/**
 * Keeps a valid incoming X-Correlation-ID, otherwise the trace id of a valid W3C traceparent (so the
 * gateway's records and the caller's trace share one id), otherwise `len` random hex characters.
 */
export function correlationId(incoming: string | string[] | undefined, len: number, traceId?: string): string {
  if (typeof incoming === 'string' && CLIENT_CID.test(incoming)) return incoming;
  return traceId ?? randomHex(len);
}
