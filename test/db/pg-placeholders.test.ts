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
    ['', ''],
  ])('%j → %j', (input, expected) => {
    expect(toPgPlaceholders(input)).toBe(expected);
  });
});
