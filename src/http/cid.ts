import { randomFillSync } from 'node:crypto';

/** A client-supplied correlation id is kept only if it is this safe to log and echo. */
const CLIENT_CID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Random bytes drawn in batches (one fill per 256 ids at the default length) and turned into hex
 * with one call: randomUUID() built a 36-character string, about 0.6 KB of garbage per request,
 * to keep 12 characters of it.
 */
const random = Buffer.alloc(3072);
let used = random.length;

function randomHex(chars: number): string {
  const bytes = (chars + 1) >> 1;
  if (used + bytes > random.length) {
    randomFillSync(random);
    used = 0;
  }
  const hex = random.toString('hex', used, used + bytes);
  used += bytes;
  return chars === hex.length ? hex : hex.slice(1);
}

/** Keeps a valid incoming X-Correlation-ID, otherwise `len` random hex characters. */
export function correlationId(incoming: string | string[] | undefined, len: number): string {
  if (typeof incoming === 'string' && CLIENT_CID.test(incoming)) return incoming;
  return randomHex(len);
}
