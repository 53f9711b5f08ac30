/**
 * pg-query-stream with an awaitable close that keeps the connection's protocol in step, and whose
 * items are whole batches.
 *
 * Closing a cursor sends Close + Sync, and the server then owes exactly one ReadyForQuery. But if a
 * batch fetch was still on its way, pg-cursor marks itself idle again when that batch arrives; an
 * error the server then reports before the ReadyForQuery (a deferred constraint or a cancel landing
 * on the Sync's commit) makes pg-cursor send a second Sync. Its second ReadyForQuery would answer
 * the connection's next statement, and every answer after it would belong to the statement before.
 */
import QueryStream from 'pg-query-stream';
import { settledWithin } from './timeout.js';

/** pg-cursor's state before it has been handed to the connection (nothing sent yet). */
const NOT_SUBMITTED = 'initialized';

/**
 * Each item read is one batch of up to `batchSize` rows (an array), fetched with one Execute:
 * pg-query-stream pushes and its reader reads every row on its own, a Readable's bookkeeping and a
 * buffer entry per row. One batch is fetched ahead of the reader (a highWaterMark of one item), as
 * pg-query-stream's highWaterMark of one batch of rows did.
 */
export class PortalStream extends QueryStream {
  /** Set once Close + Sync (or, after an error, the Sync) have been sent: no further Sync is owed. */
  private syncSent = false;
  private readonly answered: Promise<void>;

  constructor(
    text: string,
    values: unknown[],
    private readonly batchSize: number,
    config: Omit<QueryStream.Config, 'batchSize' | 'highWaterMark'>,
  ) {
    super(text, values, { ...config, highWaterMark: 1 });
    this.answered = new Promise((resolve) => this.once('close', () => resolve()));
    const handleError = this.handleError;
    this.handleError = (...args: unknown[]): unknown => (this.syncSent ? undefined : handleError(...args));
  }

  override _read(): void {
    (this.cursor as { read: (n: number, cb: (err: Error | undefined, rows: unknown[]) => void) => void }).read(this.batchSize, (err, rows) => {
      if (err) {
        this.destroy(err);
        return;
      }
      if (rows.length > 0) this.push(rows);
      if (rows.length < this.batchSize) this.push(null);
    });
  }

  /**
   * Closes the portal and waits (at most `ms`) until the server has answered it: resolves to true
   * when the connection is ready for its next statement.
   */
  closePortal(ms: number): Promise<boolean> {
    if ((this.cursor as { state: string }).state !== NOT_SUBMITTED) this.syncSent = true;
    this.destroy();
    return settledWithin(this.answered, ms);
  }
}
