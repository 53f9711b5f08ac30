/**
 * API keys: random secrets of 256 bits, of which the gateway keeps only the SHA-256.
 *
 * Why a plain SHA-256 and not bcrypt, scrypt or argon2: those are slow on purpose, to make guessing
 * a human-chosen password from its hash expensive. A key here is 32 random bytes; nobody can guess
 * it from its hash however fast the hash is, so a slow hash would only cost every request
 * milliseconds of CPU. (The same reasoning as GitHub's and others' hashed tokens.) A leaked keys
 * file therefore gives no key away, and a key is looked up by its hash in one step.
 */
import { hash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ApiKeyEntry } from './settings.js';

/** Every key starts with this, so a leaked one is recognisable (secret scanners, logs). */
export const KEY_PREFIX = 'wtk_';
/** Bytes of randomness in a key. */
const KEY_BYTES = 32;
/** wtk_ and 43 base64url characters; anything else is not a key of ours. */
const KEY_FORM = /^wtk_[A-Za-z0-9_-]{43}$/;

export function sha256Hex(text: string): string {
  // The one-shot hash: a third of createHash's time per request.
  return hash('sha256', text, 'hex');
}

/** A new key and the entry that stores it (the key itself is shown once and kept nowhere). */
export function createKey(): { key: string; sha256: string } {
  const key = KEY_PREFIX + randomBytes(KEY_BYTES).toString('base64url');
  return { key, sha256: sha256Hex(key) };
}

export function looksLikeKey(text: string): boolean {
  return KEY_FORM.test(text);
}

export type KeyCheck = { ok: true; entry: ApiKeyEntry } | { ok: false; reason: 'malformed' | 'unknown' | 'expired'; entry?: ApiKeyEntry };

/** The API keys of one config, by hash. */
export class KeyTable {
  private readonly byHash = new Map<string, { entry: ApiKeyEntry; digest: Buffer }>();

  constructor(entries: readonly ApiKeyEntry[]) {
    for (const entry of entries) this.byHash.set(entry.sha256, { entry, digest: Buffer.from(entry.sha256, 'hex') });
  }

  get size(): number {
    return this.byHash.size;
  }

  check(key: string, now = Date.now()): KeyCheck {
    if (!looksLikeKey(key)) return { ok: false, reason: 'malformed' };
    const hex = sha256Hex(key);
    // Looked up by the hash of what the client sent, which it cannot choose (that would need a
    // preimage), so the map's comparison of hashes tells a timing attacker nothing about a stored
    // key; the constant-time comparison of the digests makes the match itself explicit.
    const found = this.byHash.get(hex);
    if (found === undefined || !timingSafeEqual(found.digest, Buffer.from(hex, 'hex'))) return { ok: false, reason: 'unknown' };
    if (found.entry.expiresAt !== undefined && now >= found.entry.expiresAt) return { ok: false, reason: 'expired', entry: found.entry };
    return { ok: true, entry: found.entry };
  }
}

/**
 * The keys-file line for an entry: one YAML flow mapping, to go under `keys:`. Names are quoted, so
 * an id such as 123 or true stays text (ids and roles hold no quote, see KEY_ID and ROLE_NAME).
 */
export function keyFileLine(entry: { id: string; sha256: string; roles: readonly string[]; expires?: string }): string {
  const parts = [`id: '${entry.id}'`, `sha256: ${entry.sha256}`, `roles: [${entry.roles.map((r) => `'${r}'`).join(', ')}]`];
  if (entry.expires !== undefined) parts.push(`expires: '${entry.expires}'`);
  return `  - { ${parts.join(', ')} }`;
}
