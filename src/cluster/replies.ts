/** Pending IPC requests awaiting a reply by id; each wait ends at its timeout. */
export class Replies<T> {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: T): void; reject(e: Error): void; timer: NodeJS.Timeout }>();

  /** Opens a wait; send the returned id with the request. */
  open(timeoutMs: number, what: string): { id: number; reply: Promise<T> } {
    const id = this.nextId++;
    const reply = new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${what}: no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      this.pending.set(id, { resolve, reject, timer });
    });
    return { id, reply };
  }

  resolve(id: number, value: T): void {
    const p = this.take(id);
    p?.resolve(value);
  }

  reject(id: number, err: Error): void {
    this.take(id)?.reject(err);
  }

  private take(id: number) {
    const p = this.pending.get(id);
    if (p === undefined) return undefined; // late reply after a timeout
    this.pending.delete(id);
    clearTimeout(p.timer);
    return p;
  }
}
