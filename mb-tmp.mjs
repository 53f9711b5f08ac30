import Database from 'better-sqlite3';
import { InlineReads } from './dist/db/sqlite-inline.js';
const path = 'data/traffic.db';
const sql = `SELECT date_hour, port, flows, pkts, bytes FROM tcp_hourly WHERE (? IS NULL OR port = ?) AND (? IS NULL OR date_hour >= ?) AND (? IS NULL OR date_hour <= ?) ORDER BY tcp_hourly.date_hour, tcp_hourly.port LIMIT ?`;
const p = [null, null, null, null, null, null, 10];
const bare = new Database(path); const st = bare.prepare(sql);
const st2 = bare.prepare(sql); st2.safeIntegers(true);
const inl = InlineReads.open(path, 'native/build/sqlite-interrupt.so', 1);
const N = 20000;
for (let r = 0; r < 3; r++) {
  let t = performance.now(); for (let i = 0; i < N; i++) st.all(...p); const a = (performance.now() - t) * 1000 / N;
  t = performance.now(); for (let i = 0; i < N; i++) st2.all(...p); const b = (performance.now() - t) * 1000 / N;
  t = performance.now(); for (let i = 0; i < N; i++) inl.query(sql, p); const c = (performance.now() - t) * 1000 / N;
  console.log(`bare ${a.toFixed(1)} µs, bare bigint ${b.toFixed(1)} µs, inline ${c.toFixed(1)} µs, overruns ${inl.overruns}`);
}
console.log(bare.prepare('EXPLAIN QUERY PLAN ' + sql).all(...p));
