/**
 * pg-query-stream with an awaitable close that keeps the connection's protocol in step.
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

export class PortalStream extends QueryStream {
  /** Set once Close + Sync (or, after an error, the Sync) have been sent: no further Sync is owed. */
  private syncSent = false;
  private readonly answered: Promise<void>;

  constructor(text: string, values: unknown[], config: QueryStream.Config) {
    super(text, values, config);
    this.answered = new Promise((resolve) => this.once('close', () => resolve()));
    const handleError = this.handleError;
    this.handleError = (...args: unknown[]): unknown => (this.syncSent ? undefined : handleError(...args));
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
