import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { getLogger, setLogDestination, setLogLevel } from '../../src/log/index.js';
import { LineBatcher } from '../../src/log/line-batcher.js';
import { logfmtValue, oneLineTraceback } from '../../src/log/logfmt.js';
import { parseLogLine } from '../helpers/logfmt-parse.js';

function capture(): string[] {
  const lines: string[] = [];
  setLogDestination(
    new Writable({
      write(chunk, _enc, cb) {
        lines.push(...String(chunk).split('\n').filter(Boolean));
        cb();
      },
    }),
  );
  return lines;
}

describe('logfmt values', () => {
  it('leaves safe values bare and quotes the rest', () => {
    expect(logfmtValue('abc')).toBe('abc');
    expect(logfmtValue(0.25)).toBe('0.25');
    expect(logfmtValue('GET /x')).toBe('"GET /x"');
    expect(logfmtValue('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect(logfmtValue('')).toBe('""');
    expect(logfmtValue('k=v')).toBe('"k=v"');
  });
  it('gives each value its own encoding, also when values of one length alternate', () => {
    // Same lengths, different needs: a remembered encoding must never be handed to another value.
    const pairs: [string, string][] = [
      ['a b', '"a b"'],
      ['abc', 'abc'],
      ['a"c', '"a\\"c"'],
      ['a=c', '"a=c"'],
    ];
    const long: [string, string][] = [
      ['x'.repeat(300), 'x'.repeat(300)],
      [`${'x'.repeat(299)} `, `"${'x'.repeat(299)} "`],
    ];
    for (let round = 0; round < 3; round++) for (const [v, e] of [...pairs, ...long]) expect(logfmtValue(v)).toBe(e);
    // A value equal in text but another string object gets the same encoding.
    const built = ['GET', '/x y'].join(' ');
    expect(logfmtValue(built)).toBe('"GET /x y"');
    expect(logfmtValue('GET /x y')).toBe('"GET /x y"');
  });
  it('writes numbers as String() does, small integers included', () => {
    for (const n of [0, -0, 1, 200, 1023, 1024, -1, 2.5, 0.0031, 1e21, Number.MAX_SAFE_INTEGER]) expect(logfmtValue(n)).toBe(String(n));
    expect(logfmtValue(NaN)).toBe('"NaN"');
    expect(logfmtValue(-Infinity)).toBe('"-Infinity"');
  });
  it('leaves text above ASCII bare unless it holds a space of another script, and quotes DEL', () => {
    expect(logfmtValue('café')).toBe('café');
    expect(logfmtValue('a\u00a0b')).toBe('"a\u00a0b"');
    expect(logfmtValue('a\u3000b')).toBe('"a\u3000b"');
    expect(logfmtValue('a\u007fb')).toBe('"a\\u007fb"');
    expect(logfmtValue('~!#$%&()*+,-./:;<>?@[]^_`{|}')).toBe('~!#$%&()*+,-./:;<>?@[]^_`{|}');
  });
  it('never lets a newline through', () => {
    expect(logfmtValue('a\nb\r\tc')).toBe('"a\\nb\\r\\tc"');
    const tb = oneLineTraceback(new Error('boom'));
    expect(tb).not.toMatch(/\n/);
    expect(tb).toMatch(/^Error: boom \| at /);
  });
});

describe('logger', () => {
  it('writes one parseable logfmt line per record with prefix, tag, msg and cid', () => {
    const lines = capture();
    setLogLevel('INFO');
    const log = getLogger('test.ts');
    // The cid field goes last, whatever its position among the fields.
    log.info('request', 'GET /sqlite-json', { client: '127.0.0.1', cid: 'abc123', n: 3, note: 'two words' });
    log.warning('odd', 'with "quotes"\nand newline');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe(`[${process.pid}] INFO test.ts tag=request msg="GET /sqlite-json" client=127.0.0.1 n=3 note="two words" cid=abc123`);
    const parsed = parseLogLine(lines[1]);
    expect(parsed).toMatchObject({ pid: String(process.pid), level: 'WARNING', source: 'test.ts', fields: { tag: 'odd', msg: 'with "quotes"\nand newline' } });
  });

  it('writes a record of fixed fields as the level\'s method writes the same fields', () => {
    const lines = capture();
    setLogLevel('INFO');
    const log = getLogger('test.ts');
    const stats = log.record('info', 'request-stats', ['client', 'queries', 'note', 'aborted']);
    const values: unknown[][] = [
      ['127.0.0.1', 0, 'two words', undefined],
      ['::1', 12, 'a"b', true],
    ];
    for (const [i, v] of values.entries()) {
      stats(`GET /x${i}`, v, i === 0 ? 'abc123' : undefined);
      log.info('request-stats', `GET /x${i}`, { client: v[0], queries: v[1], note: v[2], aborted: v[3], ...(i === 0 ? { cid: 'abc123' } : {}) });
    }
    expect(lines).toHaveLength(4);
    expect(lines[0]).toBe(`[${process.pid}] INFO test.ts tag=request-stats msg="GET /x0" client=127.0.0.1 queries=0 note="two words" cid=abc123`);
    expect(lines[2]).toBe(`[${process.pid}] INFO test.ts tag=request-stats msg="GET /x1" client=::1 queries=12 note="a\\"b" aborted=true`);
    expect([lines[0], lines[2]]).toEqual([lines[1], lines[3]]);
    setLogLevel('WARNING');
    stats('GET /hidden', ['x', 1, 'y', undefined], 'c');
    expect(lines).toHaveLength(4);
    setLogLevel('INFO');
  });

  it('writes the same bytes into a line batcher, part by part, as the string of the line', () => {
    const log = getLogger('test.ts');
    const stats = log.record('info', 'request-stats', ['client', 'client_id', 'n', 'note', 'ok']);
    const values: [string, unknown[], string | undefined][] = [
      ['GET /a', ['127.0.0.1', 'anonymous', 0, 'two words', undefined], 'abc123'],
      ['GET /a', ['::1', 'ann', 1023, 'a"b\\c=d', true], undefined],
      ['GET /é ü', ['café', 'a\u00a0b', 1024, 'tab\there\nnew', false], 'x.y_z-1'],
      ['GET /b', ['', null, -2.5, '\u0001\u007f€😀', undefined], ''],
      ['GET /c', ['x'.repeat(300), 'y', NaN, { a: 1 }, undefined], 'c'],
      ['GET /d', ['k=v', 'sp ace', 7, 'back\\slash', undefined], 'q"q'],
      ['GET /long', ['z'.repeat(3000), 'y', 1e21, 'w', undefined], 'd'],
      [`GET /${'m'.repeat(400)}`, ['127.0.0.1', 'y', 2, 'w', undefined], 'e'],
    ];
    setLogLevel('INFO');
    const strings = capture();
    for (const [msg, v, cid] of values) stats(msg, v, cid);
    const chunks: Buffer[] = [];
    // Small chunks: lines are written across flushes, and the longest alone.
    const batcher = new LineBatcher({ write: (c: Buffer) => chunks.push(Buffer.from(c)) }, 1024, 60_000);
    setLogDestination(batcher);
    for (let round = 0; round < 3; round++) for (const [msg, v, cid] of values) stats(msg, v, cid);
    batcher.close();
    const parts = Buffer.concat(chunks).toString('utf8').split('\n').filter(Boolean);
    expect(parts).toEqual([...strings, ...strings, ...strings]);
    expect(chunks.every((c) => c.length <= 1024 || !c.subarray(0, -1).includes(10))).toBe(true);
    expect(strings[2]).toBe(`[${process.pid}] INFO test.ts tag=request-stats msg="GET /é ü" client=café client_id="a\u00a0b" n=1024 note="tab\\there\\nnew" ok=false cid=x.y_z-1`);
  });

  it('reuses the start of the last line only where the msg and the first values repeat', () => {
    const log = getLogger('test.ts');
    const stats = log.record('info', 'request-stats', ['client', 'client_id', 'n', 'note', 'ok']);
    const base = ['127.0.0.1', 'anonymous', 0, 'two words', undefined];
    const at = (i: number, v: unknown) => base.map((b, j) => (j === i ? v : b));
    const values: [string, unknown[], string | undefined][] = [
      ['GET /a', base, 'c1'],
      ['GET /a', base, 'c2'],
      // One value differs, at each position in turn, then the line as before.
      ...base.map((_, i): [string, unknown[], string] => ['GET /a', at(i, i === 4 ? true : 'other value'), `d${i}`]),
      ['GET /a', base, 'c3'],
      // A field left out, then given, then the same number as another type.
      ['GET /a', at(2, undefined), 'e1'],
      ['GET /a', at(2, 5), 'e2'],
      ['GET /a', at(2, '5'), 'e3'],
      ['GET /a', at(2, NaN), 'e4'],
      ['GET /a', at(2, NaN), 'e5'],
      // Another msg, then back: each its own head.
      ['GET /b', base, 'f1'],
      ['GET /a', base, 'f2'],
      // A start too long to keep (over 1 KB, within a chunk), then the same msg again.
      ['GET /a', at(1, 'q'.repeat(1500)), 'g1'],
      // Another writer's line between: the next line starts elsewhere in the chunk than this one did.
      ['SHIFT', [], undefined],
      ['GET /a', at(1, 'q'.repeat(1500)), 'g2'],
      ['GET /a', base, undefined],
      ['GET /a', at(3, { a: 1 }), 'h1'],
      ['GET /a', base, 'h2'],
    ];
    const other = log.record('info', 'other', ['a']);
    const write = ([msg, v, cid]: [string, unknown[], string | undefined]) => (msg === 'SHIFT' ? other('shift', ['x'.repeat(100)], 's') : stats(msg, v, cid));
    setLogLevel('INFO');
    const strings = capture();
    values.forEach(write);
    const chunks: Buffer[] = [];
    const batcher = new LineBatcher({ write: (c: Buffer) => chunks.push(Buffer.from(c)) }, 16384, 60_000);
    setLogDestination(batcher);
    for (let round = 0; round < 2; round++) values.forEach(write);
    batcher.close();
    const parts = Buffer.concat(chunks).toString('utf8').split('\n').filter(Boolean);
    expect(parts).toEqual([...strings, ...strings]);
    expect(strings[2]).toBe(`[${process.pid}] INFO test.ts tag=request-stats msg="GET /a" client="other value" client_id=anonymous n=0 note="two words" cid=d0`);
  });

  it('filters by level and follows level changes', () => {
    const lines = capture();
    const log = getLogger('test.ts');
    setLogLevel('WARN');
    log.info('a', 'hidden');
    log.error('b', 'shown');
    setLogLevel('DEBUG');
    log.debug('c', 'shown too');
    setLogLevel('CRITICAL');
    log.error('d', 'hidden');
    log.critical('e', 'shown');
    expect(lines.map((l) => parseLogLine(l).fields.tag)).toEqual(['b', 'c', 'e']);
  });
});
