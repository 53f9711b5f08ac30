/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) `traceparent`: a caller that traces its
 * requests gets its trace id as the request's correlation id, and a `traceparent` back naming this
 * request as a span of that trace. Only the header's own rules are checked here; a header that
 * breaks them is ignored, as the spec asks (the request then starts no trace of its own).
 */
import { randomHex } from './cid.js';

export interface TraceParent {
  version: string;
  traceId: string;
  parentId: string;
  flags: string;
}

/** version-traceid-parentid-flags, lowercase hex; a later version may append fields after a dash. */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** The parsed header, or undefined when it is absent, repeated (joined by commas) or invalid. */
export function parseTraceParent(header: string | string[] | undefined): TraceParent | undefined {
  if (typeof header !== 'string') return undefined;
  const m = TRACEPARENT.exec(header.trim());
  if (m === null) return undefined;
  const [, version, traceId, parentId, flags, rest] = m;
  // ff is forbidden; version 00 has exactly four fields, and later versions are read as 00 is.
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (traceId === ZERO_TRACE || parentId === ZERO_SPAN) return undefined;
  return { version, traceId, parentId, flags };
}

/** A span id for this request: 16 random hex digits, never all zeros (invalid). */
function spanId(): string {
  for (;;) {
    const id = randomHex(16);
    if (id !== ZERO_SPAN) return id;
  }
}

/**
 * The header this request answers with: the caller's trace and flags, this request's own span id,
 * in version 00 (the version this gateway writes, whatever version it read).
 */
export function childTraceParent(parent: TraceParent): string {
  return `00-${parent.traceId}-${spanId()}-${parent.flags}`;
}
