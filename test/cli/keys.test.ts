/**
 * `watchtower keys create` (dist/cli.js as a child process): it prints a key once and a keys-file
 * line holding only its hash; a running gateway given that line accepts the key after SIGUSR1.
 * Usage errors name the option.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { sha256Hex } from '../../src/auth/api-keys.js';
import { ROOT, sqliteConfig, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';

const CLI = join(ROOT, 'dist', 'cli.js');

function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '' }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

let gw: GatewayProcess | undefined;
afterAll(async () => {
  await gw?.stop();
});

describe('watchtower keys create', () => {
  it('prints a new key once and the line with its hash; the gateway accepts the key once the line is in the keys file', async () => {
    const out = await runCli(['keys', 'create', '--id', 'reporting', '--roles', 'reader,ops', '--expires', '2099-12-31']);
    expect(out.code, out.stderr).toBe(0);
    const key = /^ {2}(wtk_[A-Za-z0-9_-]{43})$/m.exec(out.stdout)?.[1];
    const line = /^ {2}- \{ id: .*$/m.exec(out.stdout)?.[0];
    expect(key).toBeDefined();
    expect(line).toBe(`  - { id: 'reporting', sha256: ${sha256Hex(key!)}, roles: ['reader', 'ops'], expires: '2099-12-31' }`);
    // The key appears once, and nowhere in the line.
    expect(out.stdout.split(key!).length).toBe(2);

    let keysFile = '';
    gw = await startGateway({
      configPatch: (doc, dir) => {
        Object.assign(doc, sqliteConfig(dir));
        keysFile = join(dir, 'keys.yaml');
        writeFileSync(keysFile, 'keys:\n');
        writeFileSync(join(dir, 'e.yaml'), stringify({ endpoints: [{ method: 'GET', path: '/who', result: 'one', statements: [{ resource: 'sqlite_traffic', sql: 'SELECT :_caller AS caller, :_roles AS roles' }] }] }));
        doc.endpoints = [join(dir, 'e.yaml')];
        doc.auth = { api_keys_file: keysFile };
      },
    });
    const ask = () => fetch(`${gw!.url}/who`, { headers: { 'x-api-key': key! }, signal: AbortSignal.timeout(10_000) });
    expect((await ask()).status).toBe(401);
    writeFileSync(keysFile, `${readFileSync(keysFile, 'utf8')}${line}\n`);
    const from = gw.lines.length;
    gw.signal('SIGUSR1');
    const record = await gw.waitForLine((l) => l.fields.tag === 'config-reload' || l.fields.tag === 'config-err', 5000, from);
    expect(record.fields.changes).toBe('auth.api_keys: API keys added reporting');
    const res = await ask();
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ caller: 'reporting', roles: 'reader,ops' });
  }, 30_000);

  it('every key is new', async () => {
    const [a, b] = await Promise.all([runCli(['keys', 'create', '--id', 'a', '--roles', 'r']), runCli(['keys', 'create', '--id', 'a', '--roles', 'r'])]);
    expect(/wtk_\S+/.exec(a.stdout)?.[0]).not.toBe(/wtk_\S+/.exec(b.stdout)?.[0]);
  });

  it('usage errors name the option and exit 2, printing no key', async () => {
    for (const [args, message] of [
      [['keys', 'create', '--roles', 'r'], '--id and --roles are required'],
      [['keys', 'create', '--id', 'has space', '--roles', 'r'], '--id must match'],
      [['keys', 'create', '--id', 'a', '--roles', 'r w'], '--roles must be role names'],
      [['keys', 'create', '--id', 'a', '--roles', 'r', '--expires', 'tomorrow'], '--expires: must be an ISO 8601 date'],
      [['keys', 'create', '--id', 'anonymous', '--roles', 'r'], '--id: anonymous is reserved'],
      [['keys', 'list'], "unknown subcommand 'list'"],
    ] as const) {
      const out = await runCli([...args]);
      expect(out.code, args.join(' ')).toBe(2);
      expect(out.stderr).toContain(message);
      expect(out.stdout + out.stderr).not.toMatch(/wtk_/);
    }
  });
});
