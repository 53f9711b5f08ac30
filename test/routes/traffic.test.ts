import { describe, expect, it } from 'vitest';
import { BadRequestError } from '../../src/errors.js';
import { parseTime } from '../../src/http/timestamps.js';
import { toFilter } from '../../src/routes/traffic-params.js';
import { insertTraffic, selectTraffic } from '../../src/routes/traffic-sql.js';
import { compareRows } from '../../src/routes/traffic-compare.js';

const JAN6 = Date.UTC(2025, 0, 6) / 1000;

describe('traffic query parameters', () => {
  it('reads epoch seconds and ISO 8601, UTC unless an offset is given', () => {
    expect(parseTime(String(JAN6), 'querystring/from')).toBe(JAN6);
    expect(parseTime('2025-01-06', 'querystring/from')).toBe(JAN6);
    expect(parseTime('2025-01-06T01:00:00Z', 'querystring/from')).toBe(JAN6 + 3600);
    expect(parseTime('2025-01-06 01:00', 'querystring/from')).toBe(JAN6 + 3600);
    expect(parseTime('2025-01-06T03:00:00+02:00', 'querystring/from')).toBe(JAN6 + 3600);
  });

  it('refuses dates that do not exist instead of rolling them over, and instants beyond 1970-9999', () => {
    for (const v of ['2025-02-30', '2025-02-29', '2100-02-29', '2025-04-31', '2025-00-10', '2025-01-06T24:00', '2025-01-06T23:60', '2025-01-06T23:00:60', '2025-01-06T23:00+24:00', '2025-01-06T23:00+05:60']) {
      expect(() => parseTime(v, 'querystring/from'), v).toThrow(`querystring/from is not a valid date-time: ${v}`);
    }
    expect(parseTime('2024-02-29', 'querystring/from')).toBe(Date.UTC(2024, 1, 29) / 1000);
    expect(parseTime('2000-02-29T23:59:59.999Z', 'querystring/from')).toBe(Date.UTC(2000, 1, 29, 23, 59, 59) / 1000);
    expect(parseTime('9999-12-31T23:59:59Z', 'querystring/to')).toBe(253402300799);
    expect(parseTime('0', 'querystring/to')).toBe(0);
    for (const v of ['9999-12-31T23:00:00-05:00', '253402300800', '1969-12-31', '1970-01-01T00:00:00+00:01', '0050-01-01']) {
      expect(() => parseTime(v, 'querystring/to'), v).toThrow('querystring/to must be from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z');
    }
  });

  it('names the field of an impossible date and refuses from after to', () => {
    expect(() => parseTime('2025-13-40', 'querystring/to')).toThrow(/querystring\/to is not a valid date-time/);
    try {
      toFilter({ from: '2025-01-07', to: '2025-01-06', limit: 10 });
      throw new Error('expected a refusal');
    } catch (err) {
      expect(err).toBeInstanceOf(BadRequestError);
      expect((err as BadRequestError).statusCode).toBe(400);
      expect((err as Error).message).toBe('querystring/from must not be after querystring/to');
    }
  });
});

describe('traffic SQL', () => {
  it('binds every filter value and compares dates in each dialect own form', () => {
    const filter = { port: 443, from: JAN6, to: JAN6 + 7200, limit: 5 };
    expect(selectTraffic('sqlite', filter).params).toEqual([443, JAN6, JAN6 + 7200, 5]);
    const pg = selectTraffic('postgres', filter);
    expect(pg.params).toEqual([443, '2025-01-06 00:00:00', '2025-01-06 02:00:00', 5]);
    expect(pg.sql).not.toMatch(/443|2025/);
    expect(selectTraffic('mysql', { limit: 10 }).sql).toBe(
      "SELECT DATE_FORMAT(date_hour, '%Y-%m-%d %H:%i:%s') AS date_hour, port, flows, pkts, bytes FROM tcp_hourly ORDER BY tcp_hourly.date_hour, tcp_hourly.port LIMIT ?",
    );
    expect(insertTraffic('postgres', { date_hour: JAN6, port: 22, flows: 1, pkts: 2, bytes: 3 }).params).toEqual(['2025-01-06 00:00:00', 22, 1, 2, 3]);
  });
});

describe('compareRows', () => {
  it('matches rows by hour and port across date forms and flags differences and gaps', () => {
    const out = compareRows(
      [
        { date_hour: JAN6, port: 22, flows: 1, pkts: 2, bytes: 3 },
        { date_hour: JAN6, port: 80, flows: 5, pkts: 5, bytes: 5 },
      ],
      [
        { date_hour: '2025-01-06 00:00:00', port: 22, flows: '1', pkts: '2', bytes: '3' },
        { date_hour: '2025-01-06 00:00:00', port: 80, flows: 6, pkts: 5, bytes: 5 },
        { date_hour: '2025-01-06 01:00:00', port: 22, flows: 1, pkts: 1, bytes: 1 },
      ],
    );
    expect(out.map((r) => [r.date_hour, r.port, r.match])).toEqual([
      [JAN6, 22, true],
      [JAN6, 80, false],
      [JAN6 + 3600, 22, false],
    ]);
    expect(out[2].sqlite).toBeNull();
  });

  it('compares counters beyond 2^53 by their exact text, not as rounded numbers', () => {
    const row = (bytes: number | string) => ({ date_hour: JAN6, port: 22, flows: 1, pkts: 2, bytes });
    // 2^53 + 1 and 2^53 + 2 both round to 2^53 as numbers.
    const same = compareRows([row('9007199254740993')], [row('9007199254740993')]);
    expect(same[0]).toMatchObject({ match: true, pg: { bytes: '9007199254740993' } });
    expect(compareRows([row('9007199254740993')], [row('9007199254740994')])[0].match).toBe(false);
  });
});
