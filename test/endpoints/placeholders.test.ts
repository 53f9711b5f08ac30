import { describe, expect, it } from 'vitest';
import { compileNamed, PlaceholderError } from '../../src/endpoints/placeholders.js';
import { toPgPlaceholders } from '../../src/db/pg-placeholders.js';

describe('named placeholders', () => {
  it('turns each :name into ? and lists the names in order, a name used twice twice', () => {
    expect(compileNamed('SELECT * FROM t WHERE a = :a AND (b = :b OR :a IS NULL)', 'sqlite')).toEqual({
      sql: 'SELECT * FROM t WHERE a = ? AND (b = ? OR ? IS NULL)',
      names: ['a', 'b', 'a'],
    });
  });

  it('leaves casts, quoted strings, quoted names and comments alone', () => {
    const sql = `SELECT :port::text, 'a :x '' :y', "col :z", /* :c1 */ x -- :c2\nFROM t WHERE p = :port`;
    expect(compileNamed(sql, 'postgres')).toEqual({
      sql: `SELECT ?::text, 'a :x '' :y', "col :z", /* :c1 */ x -- :c2\nFROM t WHERE p = ?`,
      names: ['port', 'port'],
    });
  });

  it('knows each dialect: MySQL backslash escapes, backticks and # comments; PostgreSQL dollar quotes and E strings', () => {
    expect(compileNamed("SELECT 'it\\':s', `c:d`, :v # :w\n", 'mysql')).toEqual({ sql: "SELECT 'it\\':s', `c:d`, ? # :w\n", names: ['v'] });
    expect(compileNamed("SELECT $f$ :a ? $f$, E'\\' :b', :c", 'postgres')).toEqual({ sql: "SELECT $f$ :a ? $f$, E'\\' :b', ?", names: ['c'] });
    // In PostgreSQL a backslash ends nothing in a standard string.
    expect(compileNamed("SELECT 'a\\', :c", 'postgres').names).toEqual(['c']);
  });

  it('gives the postgres driver ? it numbers exactly where the names stood', () => {
    const { sql } = compileNamed("SELECT :a::int, ':b', :c", 'postgres');
    expect(toPgPlaceholders(sql)).toBe("SELECT $1::int, ':b', $2");
  });

  it('ignores a colon that starts no name (MySQL :=, time literals in text)', () => {
    expect(compileNamed('SET @x := :v', 'mysql')).toEqual({ sql: 'SET @x := ?', names: ['v'] });
    expect(compileNamed('SELECT a:b', 'sqlite').names).toEqual([]);
  });

  it('refuses a bare ? and unterminated quoted text', () => {
    expect(() => compileNamed('SELECT ? ', 'sqlite')).toThrow(PlaceholderError);
    expect(() => compileNamed("SELECT ':a", 'sqlite')).toThrow(/unterminated string/);
    expect(() => compileNamed('SELECT /* :a', 'sqlite')).toThrow(/unterminated comment/);
  });
});
