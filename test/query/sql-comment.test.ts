import { describe, expect, it } from 'vitest';
import { hasRequestComment, sqlComment, withComment } from '../../src/query/sql-comment.js';

describe('sqlcommenter comment', () => {
  it('sorts keys, URL-encodes values and escapes the quotes encoding leaves', () => {
    expect(sqlComment({ endpoint: '/pg/items', cid: "it's" })).toBe("/*cid='it\\'s',endpoint='%2Fpg%2Fitems'*/");
    // `*/` cannot close the comment early: the slash is encoded.
    expect(sqlComment({ cid: 'a*/b' })).toBe("/*cid='a*%2Fb'*/");
    expect(sqlComment({ cid: 'x', endpoint: undefined })).toBe("/*cid='x'*/");
  });

  it('appends before a trailing semicolon, on its own line after a line comment', () => {
    expect(withComment('SELECT 1;  ', "/*cid='x'*/")).toBe("SELECT 1 /*cid='x'*/");
    expect(withComment('SELECT 1 -- one', "/*cid='x'*/")).toBe("SELECT 1 -- one\n/*cid='x'*/");
    expect(hasRequestComment(withComment('SELECT 1', sqlComment({ cid: 'x' })))).toBe(true);
    expect(hasRequestComment('SELECT 1 /* mine */')).toBe(false);
  });
});
