import { describe, expect, it } from 'vitest';
import { classifyError, connectError, DbValueError } from '../../src/db/classify.js';
import { DbDriverError } from '../../src/db/types.js';
import { BadRequestError } from '../../src/errors.js';
import { toAppError } from '../../src/query/query.js';

const err = (props: Record<string, unknown>) => Object.assign(new Error('boom'), props);

describe('classifyError', () => {
  it.each([
    ['postgres', { code: '23505' }, 'constraint', true, true],
    ['postgres', { code: '23503' }, 'constraint', true, false],
    ['postgres', { code: '42P01' }, 'query', true, false],
    ['postgres', { code: '57014' }, 'timeout', true, false],
    ['postgres', { code: '57P01' }, 'unreachable', false, false],
    ['postgres', { code: '08006' }, 'unreachable', false, false],
    ['postgres', { code: 'XX000' }, 'broken', false, false],
    ['postgres', {}, 'broken', false, false],
    ['mysql', { code: 'ER_DUP_ENTRY', errno: 1062 }, 'constraint', true, true],
    ['mysql', { code: 'ER_PARSE_ERROR', errno: 1064 }, 'query', true, false],
    ['mysql', { code: 'ER_NO_SUCH_TABLE', errno: 1146 }, 'query', true, false],
    ['mysql', { code: 'PROTOCOL_CONNECTION_LOST', fatal: true }, 'broken', false, false],
    ['mysql', { code: 'ER_PARSE_ERROR', fatal: true }, 'query', false, false],
    ['mysql', { code: 'ECONNREFUSED' }, 'unreachable', false, false],
    ['sqlite', { code: 'SQLITE_CONSTRAINT_PRIMARYKEY' }, 'constraint', true, true],
    ['sqlite', { code: 'SQLITE_CONSTRAINT_NOTNULL' }, 'constraint', true, false],
    ['sqlite', { code: 'SQLITE_ERROR' }, 'query', true, false],
    ['sqlite', { name: 'RangeError' }, 'query', true, false],
    ['odbc', { odbcErrors: [{ state: '23000', code: 1062 }] }, 'constraint', true, true],
    ['odbc', { odbcErrors: [{ state: '23000', code: 1048 }] }, 'constraint', true, false],
    ['odbc', { odbcErrors: [{ state: '42000', code: 1064 }] }, 'query', true, false],
    ['odbc', { odbcErrors: [{ state: '08S01', code: 2013 }] }, 'broken', false, false],
    ['odbc', { odbcErrors: [{ state: 'HY000', code: 9999 }] }, 'broken', false, false],
    ['postgres', { code: '22012' }, 'query', true, false],
  ] as const)('%s %j → %s', (dbType, props, kind, usable, duplicate) => {
    const e = classifyError(dbType, err(props));
    expect(e).toBeInstanceOf(DbDriverError);
    expect({ kind: e.kind, usable: e.connectionUsable, duplicate: e.duplicate }).toEqual({ kind, usable, duplicate });
  });

  it.each([
    ['postgres', { code: '22003' }], // numeric_value_out_of_range
    ['postgres', { code: '22008' }], // datetime_field_overflow
    ['postgres', { code: '22007' }], // invalid_datetime_format
    ['postgres', { code: '22P02' }], // invalid_text_representation
    ['mysql', { code: 'ER_WARN_DATA_OUT_OF_RANGE', errno: 1264 }],
    ['mysql', { code: 'ER_TRUNCATED_WRONG_VALUE', errno: 1292 }],
    ['mysql', { code: 'ER_DATA_OUT_OF_RANGE', errno: 1690 }],
    ['sqlite', { code: 'SQLITE_MISMATCH' }],
    ['odbc', { odbcErrors: [{ state: '22003', code: 1264 }] }],
    ['odbc', { odbcErrors: [{ state: '22007', code: 1292 }] }],
  ] as const)('%s %j → a value the database refused: a query error on a usable connection, answered 400', (dbType, props) => {
    const e = classifyError(dbType, err(props));
    expect(e).toBeInstanceOf(DbValueError);
    expect({ kind: e.kind, usable: e.connectionUsable }).toEqual({ kind: 'query', usable: true });
    const app = toAppError(e, 'r1', 10);
    expect(app).toBeInstanceOf(BadRequestError);
    expect((app as BadRequestError).statusCode).toBe(400);
    expect(app.message).toBe('value refused by the database for resource r1: boom');
  });

  it('passes a DbDriverError through and treats anything at connect time as unreachable', () => {
    const own = new DbDriverError('x', { kind: 'timeout', connectionUsable: false });
    expect(classifyError('postgres', own)).toBe(own);
    expect(connectError('postgres', own)).toBe(own);
    expect(connectError('mysql', err({ code: 'ER_PARSE_ERROR' })).kind).toBe('unreachable');
  });
});
