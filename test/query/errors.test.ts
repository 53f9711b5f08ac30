import { Writable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { DbDriverError } from '../../src/db/types.js';
import { BadRequestError, ConflictError, DatabaseError, NotFoundError, TooManyPendingError } from '../../src/errors.js';
import { setLogDestination } from '../../src/log/index.js';
import { toAppError } from '../../src/query/query.js';

beforeAll(() => setLogDestination(new Writable({ write: (_c, _e, cb) => cb() })));

const constraint = (duplicate: boolean) => new DbDriverError('violates', { kind: 'constraint', connectionUsable: true, duplicate });

describe('client-facing errors are named for what they are', () => {
  it('a duplicate key is a ConflictError (409), any other constraint a BadRequestError (400)', () => {
    const dup = toAppError(constraint(true), 'r1', 1);
    expect(dup).toBeInstanceOf(ConflictError);
    expect(dup).toMatchObject({ name: 'ConflictError', statusCode: 409, code: 'conflict', resourceId: 'r1' });
    expect(dup).not.toBeInstanceOf(BadRequestError);
    const other = toAppError(constraint(false), 'r1', 1);
    expect(other).toBeInstanceOf(BadRequestError);
    expect(other).toMatchObject({ name: 'BadRequestError', statusCode: 400 });
  });

  it('404 and 429 have their own classes, and a failing query is a DatabaseError (500)', () => {
    expect(new NotFoundError('resource r1 is not enabled', { resourceId: 'r1' })).toMatchObject({ name: 'NotFoundError', statusCode: 404, code: 'not-found' });
    expect(new TooManyPendingError('too many pending requests', { retryAfterSeconds: 2.2 })).toMatchObject({ name: 'TooManyPendingError', statusCode: 429, retryAfterSeconds: 3 });
    const failed = toAppError(new DbDriverError('syntax', { kind: 'query', connectionUsable: true }), 'r1', 1);
    expect(failed).toBeInstanceOf(DatabaseError);
    expect(failed).toMatchObject({ statusCode: 500 });
  });
});
