/**
 * The view of a pooled connection a request gets. It counts uses (statements run, for
 * db_conn_max_uses) and refuses to run anything once the lease is over: a handler that kept a
 * reference past release must not reach a connection now lent to another request.
 */
import type { DbConnection, QueryOptions, QueryResult, RowStream, SqlParam, Statement, StreamItem } from '../db/types.js';
import type { DbType } from '../config/schema.js';

export class LeasedConnection implements DbConnection {
  private ended = false;

  constructor(
    private readonly inner: DbConnection,
    private readonly hooks: { onUse: () => void; onDiscard: () => void },
  ) {}

  get resourceId(): string {
    return this.inner.resourceId;
  }
  get connId(): number {
    return this.inner.connId;
  }
  get dbType(): DbType {
    return this.inner.dbType;
  }
  get createdAt(): number {
    return this.inner.createdAt;
  }
  get usable(): boolean {
    return this.inner.usable;
  }
  get busy(): boolean {
    return this.inner.busy;
  }

  /** Ends the lease; the wrapper is dead from here on. */
  end(): void {
    this.ended = true;
  }

  query(sql: string, params: SqlParam[], opts: QueryOptions): Promise<QueryResult> {
    this.use();
    return this.inner.query(sql, params, opts);
  }

  stream<O extends QueryOptions>(sql: string, params: SqlParam[], opts: O): RowStream<StreamItem<O>> {
    this.use();
    return this.inner.stream(sql, params, opts);
  }

  transaction(statements: Statement[], opts: QueryOptions): Promise<number[]> {
    this.use();
    return this.inner.transaction(statements, opts);
  }

  ping(timeoutSeconds: number): Promise<void> {
    this.assertLive();
    return this.inner.ping(timeoutSeconds);
  }

  /** The pool closes connections: this only marks the connection to be closed when it is released. */
  close(): Promise<void> {
    this.hooks.onDiscard();
    return Promise.resolve();
  }

  private use(): void {
    this.assertLive();
    this.hooks.onUse();
  }

  private assertLive(): void {
    if (this.ended) throw new Error(`connection ${this.inner.connId} of ${this.inner.resourceId} used after it was released`);
  }
}
