import { describe, expect, it } from 'vitest';
import { classifyError, connectError } from '../../src/db/classify.js';
import { DbDriverError } from '../../src/db/types.js';

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
  ] as const)('%s %j → %s', (dbType, props, kind, usable, duplicate) => {
    const e = classifyError(dbType, err(props));
    expect(e).toBeInstanceOf(DbDriverError);
    expect({ kind: e.kind, usable: e.connectionUsable, duplicate: e.duplicate }).toEqual({ kind, usable, duplicate });
  });

  it('passes a DbDriverError through and treats anything at connect time as unreachable', () => {
    const own = new DbDriverError('x', { kind: 'timeout', connectionUsable: false });
    expect(classifyError('postgres', own)).toBe(own);
    expect(connectError('postgres', own)).toBe(own);
    expect(connectError('mysql', err({ code: 'ER_PARSE_ERROR' })).kind).toBe('unreachable');
  });
});
