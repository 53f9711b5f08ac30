/**
 * The /metrics allow-list (config `metrics_allow`): IP addresses and CIDR blocks, IPv4 or IPv6,
 * matched with node's BlockList (which also matches IPv4 clients on a dual-stack socket,
 * ::ffff:a.b.c.d, against IPv4 entries and the reverse). An entry that could never match a client
 * address (a host name, a prefix out of range) is refused when the config is loaded.
 */
import { BlockList, isIP } from 'node:net';

interface AllowEntry {
  address: string;
  /** Undefined for a single address. */
  prefix?: number;
  family: 'ipv4' | 'ipv6';
}

export function parseAllowEntry(entry: string): AllowEntry | undefined {
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

/** Convict format of `metrics_allow`: names the first entry that is not an address or CIDR block, by index (no value is echoed). */
export function checkAllowList(v: unknown): void {
  if (!Array.isArray(v)) throw new Error('must be a list of IP addresses or CIDR blocks');
  v.forEach((entry, i) => {
    if (typeof entry !== 'string' || parseAllowEntry(entry) === undefined) {
      throw new Error(`metrics_allow[${i}] is not an IP address or CIDR block (e.g. 127.0.0.1, 10.0.0.0/8, ::1/128); host names are not resolved`);
    }
  });
}

let cached: { entries: readonly string[]; list: BlockList } | undefined;

/** The BlockList of validated entries; rebuilt only when a reload brought a new list. */
export function allowListOf(entries: readonly string[]): BlockList {
  if (cached?.entries === entries) return cached.list;
  const list = new BlockList();
  for (const e of entries) {
    const parsed = parseAllowEntry(e);
    if (parsed === undefined) continue; // refused at config load; never reached
    if (parsed.prefix === undefined) list.addAddress(parsed.address, parsed.family);
    else list.addSubnet(parsed.address, parsed.prefix, parsed.family);
  }
  cached = { entries, list };
  return list;
}

export function isAllowed(entries: readonly string[], ip: string): boolean {
  const version = isIP(ip);
  return version !== 0 && allowListOf(entries).check(ip, version === 4 ? 'ipv4' : 'ipv6');
}
