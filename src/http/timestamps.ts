/**
 * Instants given as text: epoch seconds or ISO 8601 (a date, or a date-time, UTC unless an offset
 * is given), read field by field and bounded to what every database stores. Used by the `from`/`to`
 * of the compare route and by declared params of type `timestamp`.
 */
import { BadRequestError } from '../errors.js';

/**
 * The instants every database stores: MySQL's DATETIME ends at 9999-12-31 23:59:59, and the
 * sample's POST routes take no hour before the epoch. Epoch seconds, inclusive.
 */
export const MIN_EPOCH = 0;
export const MAX_EPOCH = 253402300799;

/** Epoch digits (no leading zero), or an ISO 8601 date / date-time; parseTime checks the values. */
export const TIME_PATTERN = '^(0|[1-9]\\d{0,11}|\\d{4}-\\d{2}-\\d{2}([T ]\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?(Z|[+-]\\d{2}:?\\d{2})?)?)$';
const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|([+-])(\d{2}):?(\d{2}))?)?$/;

function isLeap(y: number): boolean {
  return y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
}
const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * Epoch seconds of an ISO 8601 date/date-time (no offset = UTC), or undefined when a field is out
 * of its range. Checked field by field: Date.parse rolls 2025-02-30 over to March 2.
 */
function isoSeconds(value: string): number | undefined {
  const m = ISO.exec(value);
  if (!m) return undefined;
  const [y, mo, d, h = 0, mi = 0, s = 0] = m.slice(1, 7).map((v) => (v === undefined ? undefined : Number(v))) as number[];
  const days = mo === 2 && isLeap(y) ? 29 : DAYS[mo - 1];
  if (days === undefined || d < 1 || d > days || h > 23 || mi > 59 || s > 59) return undefined;
  const offsetH = m[9] === undefined ? 0 : Number(m[9]);
  const offsetM = m[10] === undefined ? 0 : Number(m[10]);
  if (offsetH > 23 || offsetM > 59) return undefined;
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d); // Date.UTC would read years 0-99 as 1900-1999
  date.setUTCHours(h, mi, s);
  return date.getTime() / 1000 - (m[8] === '-' ? -1 : 1) * (offsetH * 3600 + offsetM * 60);
}

/**
 * Epoch seconds from epoch digits or an ISO 8601 date/date-time (no offset = UTC). `where` names
 * the value in the 400's message, as the validator does: "querystring/from".
 */
export function parseTime(value: string, where: string): number {
  const seconds = /^\d+$/.test(value) ? Number(value) : isoSeconds(value);
  if (seconds === undefined) throw new BadRequestError(`${where} is not a valid date-time: ${value}`);
  if (seconds < MIN_EPOCH || seconds > MAX_EPOCH) {
    throw new BadRequestError(`${where} must be from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z`);
  }
  return seconds;
}
