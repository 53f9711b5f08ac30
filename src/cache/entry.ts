/** One cached answer, as every store keeps it and every hit sends it. */
import { hash } from 'node:crypto';

export interface CacheEntry {
  /** The endpoint's cache id (src/cache/endpoint-cache.ts). */
  id: string;
  /** The route template, the metrics label. */
  endpoint: string;
  status: number;
  contentType: string;
  body: Buffer;
  /** A strong validator: a hash of the bytes, quoted. */
  etag: string;
  /** Date.now() at which it stops being served. */
  expiresAt: number;
}

/** A strong ETag: 128 bits of the SHA-256 of the body (the one-shot crypto.hash: no hasher object per answer). */
export function etagOf(body: Buffer): string {
  return `"${hash('sha256', body, 'base64url').slice(0, 22)}"`;
}

/**
 * Whether If-None-Match names `etag`: `*`, or one of its entity tags, compared weakly as RFC 9110
 * 13.1.2 says for this header (a `W/` prefix is ignored).
 */
export function notModified(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  if (ifNoneMatch === etag) return true;
  for (const part of ifNoneMatch.split(',')) {
    const tag = part.trim();
    if (tag === '*' || (tag.startsWith('W/') ? tag.slice(2) : tag) === etag) return true;
  }
  return false;
}

/** Entry as bytes for Redis: one line of JSON with the fields, then the body. */
export function encodeEntry(e: CacheEntry): Buffer {
  const head = JSON.stringify({ i: e.id, n: e.endpoint, s: e.status, t: e.contentType, e: e.etag, x: e.expiresAt });
  return Buffer.concat([Buffer.from(`${head}\n`), e.body]);
}

/** The entry of encodeEntry's bytes; undefined for anything else (a key another program wrote). */
export function decodeEntry(bytes: Buffer): CacheEntry | undefined {
  const nl = bytes.indexOf(10);
  if (nl < 0) return undefined;
  try {
    const h = JSON.parse(bytes.subarray(0, nl).toString('utf8')) as { i: string; n: string; s: number; t: string; e: string; x: number };
    if (typeof h.i !== 'string' || typeof h.t !== 'string' || typeof h.e !== 'string' || typeof h.x !== 'number' || typeof h.s !== 'number') return undefined;
    return { id: h.i, endpoint: h.n, status: h.s, contentType: h.t, etag: h.e, expiresAt: h.x, body: bytes.subarray(nl + 1) };
  } catch {
    return undefined;
  }
}
