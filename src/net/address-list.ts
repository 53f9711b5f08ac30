/**
 * Lists of client addresses and CIDR blocks, IPv4 or IPv6 (metrics_allow, allow/deny, trust_proxy),
 * matched with node's BlockList, which also matches IPv4 clients on a dual-stack socket
 * (::ffff:a.b.c.d) against IPv4 entries and the reverse. An entry that could never match a client
 * address (a host name, a prefix out of range) is refused when the list is read.
 */
import { BlockList, isIP } from 'node:net';

export interface AddressEntry {
  address: string;
  /** Undefined for a single address. */
  prefix?: number;
  family: 'ipv4' | 'ipv6';
}

export function parseAddressEntry(entry: string): AddressEntry | undefined {
  const slash = entry.indexOf('/');
  const address = slash < 0 ? entry : entry.slice(0, slash);
  const version = isIP(address);
  // A zone (fe80::1%eth0) is not part of the client addresses compared here.
  if (version === 0 || address.includes('%')) return undefined;
  const family = version === 4 ? 'ipv4' : 'ipv6';
  if (slash < 0) return { address, family };
  const prefixText = entry.slice(slash + 1);
  const prefix = Number(prefixText);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText) || prefix > (version === 4 ? 32 : 128)) return undefined;
  return { address, prefix, family };
}

/**
 * What is wrong with `v` as the address list `name`, or undefined when nothing is. Names the first
 * bad entry by index: a value is never echoed (a secret pasted into the wrong key stays out of logs).
 */
export function addressListProblem(v: unknown, name: string): string | undefined {
  if (!Array.isArray(v)) return `${name} must be a list of IP addresses or CIDR blocks`;
  for (let i = 0; i < v.length; i++) {
    const entry: unknown = v[i];
    if (typeof entry !== 'string' || parseAddressEntry(entry) === undefined) {
      return `${name}[${i}] is not an IP address or CIDR block (e.g. 127.0.0.1, 10.0.0.0/8, ::1/128); host names are not resolved`;
    }
  }
  return undefined;
}

/** A convict format for the address list config key `name`. */
export function addressListFormat(name: string): (v: unknown) => void {
  return (v) => {
    const problem = addressListProblem(v, name);
    if (problem !== undefined) throw new Error(problem);
  };
}

/**
 * One BlockList per list: config lists are replaced, never changed, on a reload, and a route's
 * lists live as long as the route, so the array itself is the key.
 */
const compiled = new WeakMap<readonly string[], BlockList>();

export function addressListOf(entries: readonly string[]): BlockList {
  let list = compiled.get(entries);
  if (list !== undefined) return list;
  list = new BlockList();
  for (const e of entries) {
    const parsed = parseAddressEntry(e);
    if (parsed === undefined) continue; // refused when the list was read; never reached
    if (parsed.prefix === undefined) list.addAddress(parsed.address, parsed.family);
    else list.addSubnet(parsed.address, parsed.prefix, parsed.family);
  }
  compiled.set(entries, list);
  return list;
}

/** Whether `ip` is one of the listed addresses or lies in a listed block; never for text that is not an address. */
export function inAddressList(entries: readonly string[], ip: string): boolean {
  const version = isIP(ip);
  return version !== 0 && addressListOf(entries).check(ip, version === 4 ? 'ipv4' : 'ipv6');
}
