import { describe, expect, it } from 'vitest';
import { toPgPlaceholders } from '../../src/db/pg-placeholders.js';

describe('toPgPlaceholders', () => {
  it.each([
    ['SELECT * FROM t WHERE a = ? AND b = ?', 'SELECT * FROM t WHERE a = $1 AND b = $2'],
    ["SELECT '?' AS q, a FROM t WHERE b = ?", "SELECT '?' AS q, a FROM t WHERE b = $1"],
    ["SELECT 'it''s ?' , ?", "SELECT 'it''s ?' , $1"],
    ["SELECT E'\\' ?' , ?", "SELECT E'\\' ?' , $1"],
    ['SELECT "col?" FROM t WHERE x = ?', 'SELECT "col?" FROM t WHERE x = $1'],
    ['SELECT ? -- why?\n, ?', 'SELECT $1 -- why?\n, $2'],
    ['SELECT /* ? */ ?', 'SELECT /* ? */ $1'],
    ['SELECT $$ ? $$, $tag$ ? $tag$, ?', 'SELECT $$ ? $$, $tag$ ? $tag$, $1'],
    ['SELECT $1', 'SELECT $1'],
    ['INSERT INTO t VALUES (?,?,?)', 'INSERT INTO t VALUES ($1,$2,$3)'],
    ["SELECT 'unterminated ?", "SELECT 'unterminated ?"],
    ['SELECT a - ?, b / ? FROM t', 'SELECT a - $1, b / $2 FROM t'],
    ["SELECT name'x' , e'?\\'' , ?", "SELECT name'x' , e'?\\'' , $1"],
    ['SELECT price$ , ?', 'SELECT price$ , $1'],
    ['', ''],
  ])('%j → %j', (input, expected) => {
    expect(toPgPlaceholders(input)).toBe(expected);
  });

  it('gives the same rewrite for a text seen before, and stays right past the size of its memory', () => {
    const sql = 'SELECT * FROM t WHERE a = ? AND b = ?';
    expect(toPgPlaceholders(sql)).toBe('SELECT * FROM t WHERE a = $1 AND b = $2');
    expect(toPgPlaceholders(sql)).toBe('SELECT * FROM t WHERE a = $1 AND b = $2');
    const long = `SELECT ?, '${'?'.repeat(5000)}'`;
    expect(toPgPlaceholders(long)).toBe(`SELECT $1, '${'?'.repeat(5000)}'`);
    for (let i = 0; i < 2000; i++) {
      expect(toPgPlaceholders(`SELECT ${i} WHERE x = ? AND y = '?'`)).toBe(`SELECT ${i} WHERE x = $1 AND y = '?'`);
    }
    expect(toPgPlaceholders(sql)).toBe('SELECT * FROM t WHERE a = $1 AND b = $2');
  });
});
