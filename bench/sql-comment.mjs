// What a per-request sqlcommenter comment (sql_comment) costs each driver, run against the test
// databases: the same statement N times as written, then N times each with its own comment.
// mysql2's execute keeps a prepared statement per SQL text, so a new text is a new PREPARE; the
// gateway closes it after the run (unprepare), and the third MySQL row shows what keeping them would do.
// Usage: node bench/sql-comment.mjs [N]   (TEST_PG_URL / TEST_MYSQL_URL as for the tests)
import { performance } from 'node:perf_hooks';
import mysql from 'mysql2';
import pg from 'pg';

const N = Number(process.argv[2] ?? 2000);
const SQL = 'SELECT ? + 1 AS n';
const comment = (i) => ` /*cid='${i.toString(16).padStart(12, '0')}',endpoint='%2Fbench'*/`;

async function time(label, fn) {
  const t0 = performance.now();
  for (let i = 0; i < N; i++) await fn(i);
  const us = ((performance.now() - t0) * 1000) / N;
  console.log(`${label.padEnd(44)} ${us.toFixed(0).padStart(6)} us/statement`);
}

const my = mysql.createConnection(process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test');
const exec = (sql, v) => new Promise((res, rej) => my.execute({ sql, values: [v] }, (e, r) => (e ? rej(e) : res(r))));
const status = async () => {
  const [r] = await new Promise((res, rej) => my.query("SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'", (e, rows) => (e ? rej(e) : res([rows]))));
  return r[0].Value;
};
await time('mysql: same text (cached prepared statement)', (i) => exec(SQL, i));
await time('mysql: own comment each, closed after the run', async (i) => {
  const sql = SQL + comment(i);
  await exec(sql, i);
  my.unprepare(sql);
});
console.log(`  server Prepared_stmt_count after: ${await status()}`);
await time('mysql: own comment each, kept (mysql2 default)', (i) => exec(SQL + comment(N + i), i));
console.log(`  server Prepared_stmt_count after: ${await status()} (all sessions; the limit is max_prepared_stmt_count)`);
my.end();

const client = new pg.Client({ connectionString: process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test' });
await client.connect();
const PG = 'SELECT $1::int + 1 AS n';
await time('pg: same text (unnamed statement)', (i) => client.query({ text: PG, values: [i] }));
await time('pg: own comment each (unnamed statement)', (i) => client.query({ text: PG + comment(i), values: [i] }));
await client.end();
