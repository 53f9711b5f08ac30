/**
 * The log path, with real programs where they can run here: gateway-format lines go, as docker's
 * syslog driver sends them, through a real rsyslogd running rsyslog/30-watchtower.conf (only the
 * port, output file and work directory changed), and the Lua filter runs in a real Lua 5.4 with
 * Fluent Bit's calling convention. Fluent Bit itself does not run in these tests: its parsing is
 * emulated in JavaScript (test/stack/helpers.ts), with the regexes read from fluent-bit/parsers.yaml
 * and its logfmt parser re-implemented, so a difference between the emulation and Fluent Bit's own
 * behaviour (Onigmo regexes, time_key handling) would go unnoticed here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';
import { describeWith, dockerSyslogDatagram, freePort, parseGatewayLine, parseLogfmt, parseRsyslogLine, REPO, run } from './helpers.js';

/** Lines in the gateway's format (logfmt from src/log), including quoting and escapes. */
export const SAMPLE_LINES = [
  '[12085] INFO hooks.ts tag=request msg="GET /sqlite-json" client=127.0.0.1 cid=fe09bfc9cae6',
  '[12085] INFO hooks.ts tag=request-stats msg="GET /sqlite-json results" client=127.0.0.1 queries=1 status_code=200 content_length=668 duration=0.003 cid=fe09bfc9cae6',
  '[12085] ERROR resource-manager.ts tag=slot-err msg="too many pending requests" resource_id=sqlite_traffic max_pending_requests=0 cid=e1932c7b5471',
  '[77] WARNING query.ts tag=query-stats msg="GET /mysql-json query stats" q1_query="SELECT \\"a\\" FROM t WHERE x = \'y\' \\\\ z" q1_row_count=10 cid=0a1b2c3d4e5f',
  '[77] ERROR lifecycle.ts tag=traceback msg="unexpected error" traceback="Error: boom | at f (src/a.ts:1:2) | at g (src/b.ts:3:4)" cid=0a1b2c3d4e5f',
];

/** Sent until rsyslogd writes it: proves it listens. Left out of the lines the test checks. */
const PROBE_LINE = '[1] INFO probe.ts tag=probe msg="rsyslogd ready"';

/** Expected fields of a gateway line: prefix + logfmt fields, computed independently of the parsers file. */
function expectedFields(line: string): Record<string, string | true> {
  const m = /^\[(\d+)\] (\S+) (\S+) (.*)$/.exec(line)!;
  return { pid: m[1]!, level: m[2]!, source: m[3]!, ...parseLogfmt(m[4]!) };
}

describeWith('rsyslog rule on a real rsyslogd, its output parsed by a JavaScript emulation of the Fluent Bit parsers (Fluent Bit not run)', ['rsyslogd'], () => {
  let dir: string;
  let rsyslog: ChildProcess | undefined;
  let port: number;
  const outFile = () => join(dir, 'watchtower.log');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wt-rsyslog-'));
    port = await freePort(); // a TCP-free port is almost always UDP-free too; rsyslog fails loudly otherwise
    const conf = readFileSync(join(REPO, 'rsyslog/30-watchtower.conf'), 'utf8')
      .replace(/file="\/var\/log\/watchtower\/watchtower\.log"/g, `file="${outFile()}"`)
      .replace(/port="5514"/g, `port="${port}"`);
    expect(conf).toContain(`file="${outFile()}"`);
    expect(conf).not.toMatch(/file="\/var\/log/);
    writeFileSync(join(dir, 'rsyslog.conf'), `global(workDirectory="${dir}")\n${conf}`);
    const check = run('rsyslogd', ['-N1', '-f', join(dir, 'rsyslog.conf')]);
    expect(check.status, check.out).toBe(0);
    rsyslog = spawn('rsyslogd', ['-n', '-f', join(dir, 'rsyslog.conf'), '-i', join(dir, 'rsyslogd.pid')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    rsyslog.stderr?.on('data', (d) => (stderr += String(d)));
    // Ready once a record sent to it lands in the file (datagrams sent before it listens are lost).
    const probe = createSocket('udp4').on('error', () => undefined);
    try {
      await waitFor('rsyslogd to write a probe record', () => {
        if (rsyslog!.exitCode !== null) throw new Error(`rsyslogd exited: ${stderr}`);
        probe.send(dockerSyslogDatagram(PROBE_LINE), port, '127.0.0.1');
        return existsSync(outFile()) && readFileSync(outFile(), 'utf8').includes(PROBE_LINE);
      }, { timeout: 10_000, interval: 100 });
    } finally {
      probe.close();
    }
  });

  afterAll(() => {
    rsyslog?.kill('SIGTERM');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('writes each gateway line once, unchanged, behind the syslog prefix, and the emulated Fluent Bit parsers recover every field', async () => {
    const sock = createSocket('udp4');
    const cid = '0123456789ab';
    for (const line of SAMPLE_LINES) {
      await new Promise<void>((res, rej) => sock.send(dockerSyslogDatagram(line, { containerId: cid, host: 'wt-host' }), port, '127.0.0.1', (e) => (e ? rej(e) : res())));
    }
    // A record of another facility must not land in the file.
    await new Promise<void>((res) => sock.send(dockerSyslogDatagram('[1] INFO x.ts tag=x msg=other').replace(/^<\d+>/, '<14>'), port, '127.0.0.1', () => res()));
    sock.close();
    const written = () => readFileSync(outFile(), 'utf8').split('\n').filter((l) => l && !l.endsWith(` ${PROBE_LINE}`));
    const lines = await waitFor('rsyslogd to write every line', () => written().length >= SAMPLE_LINES.length && written(), { timeout: 5000, interval: 100 });
    expect(lines).toHaveLength(SAMPLE_LINES.length);
    lines.forEach((written, i) => {
      const original = SAMPLE_LINES[i]!;
      expect(written.endsWith(` ${original}`), written).toBe(true);
      const rec = parseRsyslogLine(written);
      expect(rec, written).toBeDefined();
      expect(rec).toMatchObject({ host: 'wt-host', service: 'watchtower', container_id: cid, ...expectedFields(original) });
      expect(rec!.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$/);
      for (const k of ['level', 'pid', 'source', 'tag', 'msg', 'cid']) expect(rec![k], `${k} in ${written}`).toBeTruthy();
    });
    const q = parseRsyslogLine(lines[3]!)!;
    expect(q.q1_query).toBe('SELECT "a" FROM t WHERE x = \'y\' \\ z');
    expect(parseRsyslogLine(lines[1]!)).toMatchObject({ msg: 'GET /sqlite-json results', status_code: '200', duration: '0.003', content_length: '668', queries: '1' });
  });

  it('keeps lines not in the gateway format, with the prefix fields and the text as message', async () => {
    const rec = parseRsyslogLine('2025-03-01T10:00:00.123456+00:00 wt-host watchtower/0123456789ab node:internal/modules/cjs/loader:1228 throw err;');
    expect(rec).toMatchObject({ host: 'wt-host', container_id: '0123456789ab', message: 'node:internal/modules/cjs/loader:1228 throw err;' });
  });
});

describeWith('journald MESSAGE parsing by the JavaScript emulation of the Fluent Bit parsers (Fluent Bit not run)', [], () => {
  it('splits pid, level, source and the logfmt fields of a bare gateway line', () => {
    for (const line of SAMPLE_LINES) expect(parseGatewayLine(line)).toEqual(expectedFields(line));
  });
});

describeWith('Lua filter restoring traceback newlines (lua5.4)', ['lua5.4'], () => {
  const harness = (records: string) => `
dofile(${JSON.stringify(join(REPO, 'fluent-bit/traceback.lua'))})
local function show(code, ts, rec)
  local keys = {}
  for k in pairs(rec) do keys[#keys + 1] = k end
  table.sort(keys)
  io.write(code, "\\t", ts)
  for _, k in ipairs(keys) do io.write("\\t", k, "=", (string.gsub(tostring(rec[k]), "\\n", "<NL>"))) end
  io.write("\\n")
end
${records}
`;
  it('turns " | " into newlines in traceback (code 2) and leaves other records alone (code 0)', () => {
    const script = harness(`
show(restore_traceback_newlines("watchtower.rsyslog", 1700000000.5, { tag = "traceback", traceback = "Error: boom | at f (src/a.ts:1:2) | at g (src/b.ts:3:4)" }))
show(restore_traceback_newlines("watchtower.rsyslog", 1700000001, { tag = "request", msg = "a | b" }))
show(restore_traceback_newlines("watchtower.rsyslog", 1700000002, { tag = "traceback", traceback = "single line" }))
`);
    const dir = mkdtempSync(join(tmpdir(), 'wt-lua-'));
    try {
      writeFileSync(join(dir, 'harness.lua'), script);
      const r = run('lua5.4', [join(dir, 'harness.lua')]);
      expect(r.status, r.out).toBe(0);
      const out = r.stdout.trim().split('\n');
      expect(out[0]).toBe('2\t1700000000.5\ttag=traceback\ttraceback=Error: boom<NL>at f (src/a.ts:1:2)<NL>at g (src/b.ts:3:4)');
      expect(out[1]).toBe('0\t1700000001\tmsg=a | b\ttag=request');
      expect(out[2]).toBe('0\t1700000002\ttag=traceback\ttraceback=single line');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
