import { describe, expect, it } from 'vitest';
import { toPgPlaceholders } from '../../src/db/pg-placeholders.js';
import { commented, requestComment, withComment } from '../../src/query/sql-comment.js';

/** The spec's encoding, written out plainly: URL-encode, then escape the quotes that leaves. */
const specValue = (s: string) => encodeURIComponent(s).replaceAll("'", "\\'");

describe('sqlcommenter comment', () => {
  it('URL-encodes values and escapes the quotes encoding leaves', () => {
    expect(requestComment("it's", '/pg/items')).toBe("/*cid='it\\'s',endpoint='%2Fpg%2Fitems'*/");
    // `*/` cannot close the comment early: the slash is encoded.
    expect(requestComment('a*/b', undefined)).toBe("/*cid='a*%2Fb'*/");
    expect(requestComment('x', undefined)).toBe("/*cid='x'*/");
  });

  it('appends before a trailing semicolon, on its own line after a line comment', () => {
    expect(withComment('SELECT 1;  ', "/*cid='x'*/")).toBe("SELECT 1 /*cid='x'*/");
    expect(withComment('SELECT 1 -- one', "/*cid='x'*/")).toBe("SELECT 1 -- one\n/*cid='x'*/");
    expect(commented('SELECT 1;', "/*cid='x'*/")).toBe("SELECT 1 /*cid='x'*/");
    expect(commented('SELECT 1;', undefined)).toBe('SELECT 1;');
  });

  it('encodes as the spec does, for ids and endpoints that need encoding and those that do not', () => {
    const cids = ['4f1c2a9b0e7d', '0af7651916cd43dd8448eb211c80319c', "it's", 'a*/b', 'ünï code', 'x y;z', ''];
    const endpoints = ['/pg/items', '/sqlite-json', "/o'k", undefined];
    for (const cid of cids) {
      for (const endpoint of endpoints) {
        const expected = endpoint === undefined ? `/*cid='${specValue(cid)}'*/` : `/*cid='${specValue(cid)}',endpoint='${specValue(endpoint)}'*/`;
        expect(requestComment(cid, endpoint)).toBe(expected);
      }
    }
  });

  it('goes after the placeholder rewrite, on a line of its own after a line comment', () => {
    const sql = "SELECT ? AS a, '?' AS b -- ?";
    expect(commented(toPgPlaceholders(sql), requestComment("it's", '/x'))).toBe("SELECT $1 AS a, '?' AS b -- ?\n/*cid='it\\'s',endpoint='%2Fx'*/");
    expect(commented(toPgPlaceholders('SELECT ?, ?'), requestComment('c', '/y'))).toBe("SELECT $1, $2 /*cid='c',endpoint='%2Fy'*/");
  });
});
