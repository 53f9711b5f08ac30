/**
 * Commented MySQL statements run with their values inlined (src/db/mysql-inline.ts): the text keeps
 * every `?` that is not a placeholder, refuses what it cannot read for sure, and on a real MariaDB a
 * statement answers exactly what the prepared path answers, injection-shaped values arriving as data,
 * with no PREPARE on the server.
 */
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConnector } from '../../src/db/index.js';
import { asBinaryProtocol, inlineValues, type InlineValue } from '../../src/db/mysql-inline.js';
import type { DbConnection } from '../../src/db/types.js';
import { requestComment, withComment } from '../../src/query/sql-comment.js';
import { mysqlAvailable, mysqlTarget, requireOrSkip } from '../helpers/databases.js';

const T = { timeoutSeconds: 10 };

describe('inlineValues', () => {
  it('replaces only placeholders: not a ? in a literal, an identifier or a comment', () => {
    const sql = "SELECT '?' AS a, \"?\" AS b, `?c` , ? AS d /* ? */ -- ?\n, ? # ?\n";
    expect(inlineValues(sql, [1, 'x'])).toBe("SELECT '?' AS a, \"?\" AS b, `?c` , 1 AS d /* ? */ -- ?\n, 'x' # ?\n");
    expect(inlineValues("SELECT 'it''s ?', ?", [2])).toBe("SELECT 'it''s ?', 2");
    // `--` without a space is two minus signs in MySQL, so the ? after it is a placeholder.
    expect(inlineValues('SELECT 5--?', [3])).toBe('SELECT 5--3');
  });

  it('writes each value as the literal a bound parameter means', () => {
    expect(inlineValues('SELECT ?, ?, ?, ?, ?, ?, ?, ?', [null, true, false, -5, 0, -0, 1.5, -2.5e-7])).toBe(
      'SELECT NULL, 1, 0, (-5), 0, 0, 1.5e0, (-2.5e-7)',
    );
    expect(inlineValues('SELECT ?, ?', ["O'Brien; DROP TABLE t; --", Buffer.from([0, 255])])).toBe("SELECT 'O''Brien; DROP TABLE t; --', X'00ff'");
  });

  it('inlines before the request comment goes on, which then stays as it was', () => {
    expect(withComment(inlineValues("SELECT ?, '?'", ['a'])!, requestComment("it's", '/t'))).toBe("SELECT 'a', '?' /*cid='it\\'s',endpoint='%2Ft'*/");
  });

  it('refuses what it cannot write or read for sure, so the prepared path runs instead', () => {
    const refused: [string, InlineValue[]][] = [
      ['SELECT ?', ['back\\slash']],
      ['SELECT ?', ['nul\0']],
      ['SELECT ?', [new Date(0)]],
      ['SELECT ?', [2 ** 53]],
      ['SELECT ?', [Number.NaN]],
      ["SELECT 'a\\'', ?", [1]],
      ['SELECT /*!50000 ? */ 1', [1]],
      ["SELECT 'unterminated ?", [1]],
      ['SELECT ?, ?', [1]],
    ];
    for (const [sql, values] of refused) expect(inlineValues(sql, values), sql).toBeUndefined();
  });
});

const skip = requireOrSkip('MySQL/MariaDB', await mysqlAvailable());

describe.skipIf(skip)('inlined statements on MariaDB', () => {
  let raw: mysql.Connection;
  let conn: DbConnection;
  const table = `wt_inline_${process.pid}`;

  beforeAll(async () => {
    const t = mysqlTarget();
    raw = await mysql.createConnection({ host: t.db_host, port: t.db_port || 3306, user: t.db_user, database: t.db_name, dateStrings: true, supportBigNumbers: true, timezone: 'Z' });
    await raw.query(`DROP TABLE IF EXISTS ${table}`);
    await raw.query(
      `CREATE TABLE ${table} (i INT, bi BIGINT, f FLOAT, d DOUBLE, dec1 DECIMAL(20,6), s VARCHAR(100), b BLOB, dt DATETIME(3), da DATE, j JSON, e ENUM('a','b'), n INT NULL)`,
    );
    await raw.query(`INSERT INTO ${table} VALUES (-5, 9007199254740993, 1.1, 2.2, 12345.678901, 'x''y', X'00ff', '2024-01-02 03:04:05.678', '2024-01-02', '{"a":[1,2]}', 'b', NULL)`);
    conn = await createConnector('mysql_inline', mysqlTarget()).connect(1, 10);
  });
  afterAll(async () => {
    await conn?.close();
    await raw?.query(`DROP TABLE IF EXISTS ${table}`);
    await raw?.end();
  });

  /** A statement sent with its request's comment (sql_comment). */
  const C = { ...T, comment: requestComment('inline-test', '/t') };

  it('answers what the prepared path answers, for every column type and injection-shaped values', async () => {
    const sql = `SELECT *, ? AS p1, ? AS p2, ? AS p3, ? AS p4, ? AS p5 FROM ${table} WHERE i = ? AND s = ?`;
    const values = ["'; DROP TABLE x; --", 'ünï😀', -2.5, true, null, -5, "x'y"];
    const [prepared] = await raw.execute(sql, values);
    const inlined = inlineValues(sql, values);
    expect(inlined).toBeDefined();
    const [text, fields] = await raw.query({ sql: inlined! });
    // Without the FLOAT rule the text protocol reads 1.1, where the binary one reads the float's 1.100000023841858.
    expect((text as { f: number }[])[0].f).not.toBe((prepared as { f: number }[])[0].f);
    asBinaryProtocol(text as Record<string, unknown>[], fields);
    expect(text).toEqual(prepared);
    expect((text as unknown[]).length).toBe(1);
  });

  it('runs a commented statement without a PREPARE on the server', async () => {
    const prepares = async () => Number(((await conn.query("SHOW SESSION STATUS LIKE 'Com_stmt_prepare'", [], T)).rows[0] as { Value: string }).Value);
    const before = await prepares();
    for (let k = 0; k < 5; k++) {
      const { rows } = await conn.query(`SELECT i, s FROM ${table} WHERE s = ? AND i > ?`, ["x'y", -10 - k], C);
      expect(rows).toEqual([{ i: -5, s: "x'y" }]);
    }
    // The status query itself is plain and prepared once; none of the five commented ones was.
    expect((await prepares()) - before).toBeLessThanOrEqual(1);
    // FLOAT reads as on the prepared path, through the driver too.
    expect((await conn.query(`SELECT f FROM ${table} WHERE i = ?`, [-5], C)).rows).toEqual((await conn.query(`SELECT f FROM ${table} WHERE i = ?`, [-5], T)).rows);
    // A value the inliner refuses still runs, on the prepared path.
    const { rows } = await conn.query('SELECT ? AS v', ['back\\slash'], C);
    expect(rows).toEqual([{ v: 'back\\slash' }]);
  });
});
