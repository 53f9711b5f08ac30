/**
 * At start-up a gateway says when anyone who reaches its port can call the data: beyond loopback,
 * with resources and no credential source, a WARNING at every start; auth.required refuses to start.
 */
import { describe, expect, it } from 'vitest';
import { exposureAtStart, isLoopback } from '../../src/auth/exposure.js';
import { createKey } from '../../src/auth/api-keys.js';
import { buildSettings } from '../../src/config/index.js';
import { sqliteConfig, startGateway } from '../helpers/gateway-process.js';

const settings = (host: string, auth: Record<string, unknown> = {}, resources = true) =>
  buildSettings({ host, resource_ids: resources ? ['r'] : [], secure: { r: { db_type: 'sqlite', db_path: 'x.db' } }, auth }, {}, { env: {} });

describe('exposure at start-up', () => {
  it('tells loopback addresses from the rest', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) expect(isLoopback(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', 'example.com', '128.0.0.1']) expect(isLoopback(h), h).toBe(false);
  });

  it('warns beyond loopback with resources and no credential source; not with one, on loopback, or without resources', () => {
    expect(exposureAtStart(settings('0.0.0.0'))).toMatchObject({ refuse: false, message: expect.stringContaining('listening on 0.0.0.0, beyond this machine') });
    expect(exposureAtStart(settings('0.0.0.0', { api_keys: [{ id: 'k', sha256: createKey().sha256 }] }))).toBeUndefined();
    expect(exposureAtStart(settings('127.0.0.1'))).toBeUndefined();
    expect(exposureAtStart(settings('0.0.0.0', {}, false))).toBeUndefined();
    expect(exposureAtStart(settings('127.0.0.1'), 2)).toEqual({ refuse: false, message: '2 endpoint(s) name roles and, with no credential source, answer 401 to everyone' });
  });

  it('auth.required refuses any start without a credential source', () => {
    expect(exposureAtStart(settings('127.0.0.1', { required: true }))).toMatchObject({ refuse: true, message: expect.stringContaining('auth.required is true') });
    expect(exposureAtStart(settings('0.0.0.0', { required: true, api_keys: [{ id: 'k', sha256: createKey().sha256 }] }))).toBeUndefined();
  });

  it('a gateway on all addresses without credentials starts with a WARNING record; with auth.required it exits 1', async () => {
    const open = await startGateway({ env: { HOST: '0.0.0.0' } });
    try {
      const warning = await open.waitForLine((l) => l.fields.tag === 'auth-warn');
      expect(warning.level).toBe('WARNING');
      expect(warning.fields.msg).toContain('no credential source: anyone who reaches the port can call every endpoint');
    } finally {
      await open.stop();
    }
    const refused = await startGateway({ env: { HOST: '0.0.0.0' }, noWait: true, configPatch: (doc, dir) => Object.assign(doc, sqliteConfig(dir), { auth: { required: true } }) });
    try {
      expect(await refused.exited).toBe(1);
      const err = await refused.waitForLine((l) => l.fields.tag === 'config-err');
      expect(err.fields.keys).toBe('auth.required');
      expect(refused.parsed().some((l) => l.fields.tag === 'listening')).toBe(false);
    } finally {
      await refused.stop();
    }
  }, 30_000);
});
