import { describe, expect, it } from 'vitest';
import { checkAllowList, isAllowed, parseAllowEntry } from '../../src/metrics/allow-list.js';

describe('metrics allow-list', () => {
  it('matches addresses and CIDR blocks of both families, and IPv4 clients on a dual-stack socket', () => {
    const list = ['127.0.0.0/8', '::1/128', '10.1.2.3', '2001:db8::/32'];
    for (const ip of ['127.0.0.1', '127.255.0.9', '::ffff:127.0.0.1', '::1', '10.1.2.3', '::ffff:10.1.2.3', '2001:db8:1::5']) {
      expect(isAllowed(list, ip), ip).toBe(true);
    }
    for (const ip of ['128.0.0.1', '10.1.2.4', '::2', '2001:db9::1', 'not-an-ip']) expect(isAllowed(list, ip), ip).toBe(false);
    expect(isAllowed(['0.0.0.0/0'], '203.0.113.9')).toBe(true);
  });

  it('refuses what could never match a client address, by index and without echoing it', () => {
    for (const entry of ['localhost', 'example.com', '127.0.0.0/33', '::1/129', '10.0.0.0/8x', '10.0.0.0/08', '10.0.0.0/', '/8', '127.1', 'fe80::1%eth0', '']) {
      expect(parseAllowEntry(entry), entry).toBeUndefined();
      expect(() => checkAllowList(['127.0.0.1', entry]), entry).toThrow(/^metrics_allow\[1\] is not an IP address or CIDR block/);
    }
    try {
      checkAllowList(['s3cret-typed-here']);
    } catch (err) {
      expect((err as Error).message).not.toContain('s3cret');
    }
    expect(() => checkAllowList('127.0.0.1')).toThrow(/must be a list/);
    expect(() => checkAllowList(['127.0.0.1', '10.0.0.0/8', '::1', '::/0'])).not.toThrow();
  });
});
