/**
 * The response cache in this process's memory: an LRU bounded in bytes (lru-cache's maxSize), each
 * entry with its own ttl. Besides the LRU it keeps, per endpoint id, the keys of its entries (so an
 * invalidation removes exactly them) and a generation, raised by each invalidation: an answer whose
 * query began before a write is not stored after it.
 */
import { LRUCache } from 'lru-cache';
import type { CacheEntry } from './entry.js';

/** Bytes counted per entry besides its body and key: the entry object, its strings, the LRU's slots. */
const ENTRY_OVERHEAD = 256;

export function entrySize(entry: CacheEntry, key: string): number {
  return entry.body.length + 2 * key.length + entry.contentType.length + ENTRY_OVERHEAD;
}

export class MemoryStore {
  private readonly lru: LRUCache<string, CacheEntry>;
  private readonly keysById = new Map<string, Set<string>>();
  private readonly generations = new Map<string, number>();
  /** Bytes held per endpoint label (expired entries included until looked up or purged). */
  readonly bytes = new Map<string, number>();

  constructor(maxBytes: number, onEvict: (endpoint: string) => void) {
    this.lru = new LRUCache<string, CacheEntry>({
      maxSize: maxBytes,
      sizeCalculation: entrySize,
      // Expired entries are not served, and are removed when looked up, by purge(), or pushed out.
      allowStale: false,
      dispose: (entry, key, reason) => {
        this.keysById.get(entry.id)?.delete(key);
        this.bytes.set(entry.endpoint, (this.bytes.get(entry.endpoint) ?? 0) - entrySize(entry, key));
        if (reason === 'evict') onEvict(entry.endpoint);
      },
    });
  }

  get(key: string): CacheEntry | undefined {
    return this.lru.get(key);
  }

  generation(id: string): number {
    return this.generations.get(id) ?? 0;
  }

  /** Stores unless the endpoint was invalidated since `generation` was read; whether it did. */
  set(key: string, entry: CacheEntry, generation: number): boolean {
    if (this.generation(entry.id) !== generation) return false;
    const ttl = entry.expiresAt - Date.now();
    if (ttl <= 0) return false;
    this.lru.set(key, entry, { ttl });
    // lru-cache refuses (silently) an entry larger than the whole store.
    if (!this.lru.has(key)) return false;
    let keys = this.keysById.get(entry.id);
    if (keys === undefined) this.keysById.set(entry.id, (keys = new Set()));
    keys.add(key);
    this.bytes.set(entry.endpoint, (this.bytes.get(entry.endpoint) ?? 0) + entrySize(entry, key));
    return true;
  }

  invalidate(id: string): void {
    this.generations.set(id, this.generation(id) + 1);
    const keys = this.keysById.get(id);
    if (keys === undefined) return;
    for (const key of [...keys]) this.lru.delete(key);
  }

  /** Removes the entries of every id not in `ids` (the endpoints an endpoint switch no longer serves as they were). */
  retain(ids: ReadonlySet<string>): void {
    for (const id of [...this.keysById.keys()]) {
      if (ids.has(id)) continue;
      this.invalidate(id);
      this.keysById.delete(id);
    }
  }

  clear(): void {
    for (const id of [...this.keysById.keys()]) this.invalidate(id);
  }

  /** Removes expired entries, so the byte gauge and the bound count only what can be served. */
  purge(): void {
    this.lru.purgeStale();
  }

  get totalBytes(): number {
    return this.lru.calculatedSize;
  }
}
