/**
 * What a refused config file may put into an error record: the file's name, key names and the
 * reason, never its contents or a value, whatever the override points to. And how big a file may
 * be: bounded, and read without holding up the event loop.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { buildSettings, config, initConfig, loadSettings, reloadConfig } from '../../src/config/index.js';
import { MAX_CONFIG_FILE_BYTES } from '../../src/config/read-file.js';
import { ConfigError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'wt-cfg-safe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const mainFile = join(dir, 'main.yaml');
writeFileSync(mainFile, 'resource_ids: [sqlite_traffic]\nsecure:\n  sqlite_traffic: {db_type: sqlite, db_path: a.db}\n');

/**
 * Every secret-looking text below holds this marker; an error that names it has leaked. Unknown
 * keys of the form of a config key (lowercase, digits, underscores) are named by design, so the
 * marker has a capital letter.
 */
const MARK = 'zQ9s3cr3t';

/** Files a mistyped path or symlink could make the override point to. */
const foreignFiles: Record<string, string> = {
  shadow: `root:$6$${MARK}$hash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n${MARK}:!:19000::::::\n`,
  pem: `-----BEGIN PRIVATE KEY-----\nMIIEv${MARK}QIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n`,
  dotenv: `API_KEY=sk_live_${MARK}\nDB_PASS=${MARK}\n`,
  json: `{"aws_secret_access_key": "${MARK}", "${MARK}_key": 1}`,
  yamlSecrets: `password: ${MARK}\ntoken_${MARK}: x\n"sk-${MARK}": 1\n`,
  brokenYaml: `log_level: INFO\n  nested: ${MARK}\n bad: [${MARK}\n`,
  brokenFlow: `{${MARK}: [${MARK}, {${MARK}`,
  nestedUnderKnownKey: `log_level:\n  ${MARK}: 1\n  x_${MARK}: 2\n`,
  resourceIdFromFile: `resources:\n  ${MARK.toUpperCase()}-rid:\n    request_slot_timeout: 1\n  ${MARK}:\n    ${MARK}_key: 1\n`,
  binary: `\u0000\u0001${MARK}\u00ff`,
  tabsAndAliases: `a: &${MARK} [1]\nb: *${MARK}\nc: *missing${MARK}\n`,
};

/** The error a reload rejects with (a reload that throws at once counts the same). */
function reloadRefusal(): Promise<unknown> {
  return Promise.resolve()
    .then(() => reloadConfig())
    .then(
      () => undefined,
      (e: unknown) => e,
    );
}

function refusal(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

/** What a config-err record holds: the message, the file and the keys. */
function recordText(err: ConfigError): string {
  return `${err.message} ${err.file ?? ''} ${err.keys.join(',')}`;
}

function expectNoLeak(err: ConfigError, content: string): void {
  const text = recordText(err);
  expect(text.toLowerCase()).not.toContain(MARK.toLowerCase());
  for (const line of content.split('\n').map((l) => l.trim())) if (line.length >= 6) expect(text).not.toContain(line);
}

describe('a refused config file never reaches the log', () => {
  for (const [name, content] of Object.entries(foreignFiles)) {
    it(`override symlinked to ${name}: refused, naming the file and no content`, async () => {
      const target = join(dir, `${name}.txt`);
      const link = join(dir, `override-${name}.yaml`);
      writeFileSync(target, content);
      symlinkSync(target, link);
      const err = refusal(() => loadSettings({ main: mainFile, override: link }, {}));
      expect(err.file).toBe(link);
      expectNoLeak(err, content);
      // A reload reads the file in a worker thread: the same rules hold there.
      const later = join(dir, `later-${name}.yaml`);
      initConfig({ main: mainFile, override: later }); // not there yet: no override
      const before = config();
      symlinkSync(target, later);
      const reloadErr = await reloadRefusal();
      expect(reloadErr).toBeInstanceOf(ConfigError);
      expect((reloadErr as ConfigError).file).toBe(later);
      expectNoLeak(reloadErr as ConfigError, content);
      expect(config()).toBe(before);
    });
  }

  it('names unknown keys that look like config keys, and only counts the others', () => {
    const err = refusal(() => buildSettings({}, { log_levle: 'INFO', [`sk-${MARK}`]: 1, resources: { sqlite_traffic: { pool_sise: 1 } } }, { env: {}, overrideFile: 'o.yaml' }));
    expect(err.keys).toEqual(['log_levle', 'resources.sqlite_traffic.pool_sise']);
    expect(err.message).toMatch(/unknown keys: log_levle, resources\.sqlite_traffic\.pool_sise, 1 not named here/);
    expectNoLeak(err, '');
  });

  const secret = `ghp_${MARK}AbC`;
  const badValues: [string, Record<string, unknown>, Record<string, unknown>, string][] = [
    ['log_level', {}, { log_level: secret }, 'log_level'],
    ['cid_len', {}, { cid_len: secret }, 'cid_len'],
    ['a list entry', {}, { special_queries_routes_patterns: ['ok', 1, secret, ''] }, 'special_queries_routes_patterns'],
    ['a resource key', {}, { resources: { sqlite_traffic: { request_slot_timeout: secret } } }, 'resources.sqlite_traffic.request_slot_timeout'],
    ['port (main file)', { port: secret }, {}, 'port'],
    ['resource_ids (main file)', { resource_ids: [`x-${secret}`] }, {}, 'resource_ids'],
    ['a secure key (main file)', { secure: { sqlite_traffic: { db_type: secret, db_path: 'a.db' } } }, {}, 'secure.sqlite_traffic.db_type'],
    ['a non-reloadable key in the override', {}, { workers: secret }, 'workers'],
  ];
  for (const [what, mainExtra, override, key] of badValues) {
    it(`a refused value of ${what} is not echoed; the key is named`, () => {
      const main = {
        resource_ids: ['sqlite_traffic'],
        secure: { sqlite_traffic: { db_type: 'sqlite', db_path: 'a.db' } },
        ...mainExtra,
      };
      const err = refusal(() => buildSettings(main, override, { env: {}, mainFile: 'm.yaml', overrideFile: 'o.yaml' }));
      expect(err.keys).toContain(key);
      expectNoLeak(err, '');
    });
  }

  it('a secret-looking WT_RESOURCE_IDS entry is refused by position, not echoed', () => {
    const err = refusal(() =>
      buildSettings({ secure: { sqlite_traffic: { db_type: 'sqlite', db_path: 'a.db' } } }, {}, { env: { WT_RESOURCE_IDS: `sqlite_traffic,${secret}` } }),
    );
    expect(err.message).toContain('resource_ids[1]');
    expectNoLeak(err, '');
  });
});

describe('config file size and kind', () => {
  /** A valid override of exactly `bytes` bytes: a long flow list, among the slowest YAML to parse per byte. */
  function largestValid(bytes: number): string {
    const head = 'special_queries_routes_patterns: [';
    const tail = ']\n';
    const items = Math.floor((bytes - head.length - tail.length + 1) / 2);
    const text = head + Array.from({ length: items }, () => 'a').join(',') + tail;
    return text + ' '.repeat(bytes - text.length);
  }

  it(`refuses a file over ${MAX_CONFIG_FILE_BYTES} bytes with a clear error and keeps the running config`, async () => {
    const override = join(dir, 'big.yaml');
    writeFileSync(override, 'log_level: DEBUG\n');
    initConfig({ main: mainFile, override });
    expect(config().log_level).toBe('DEBUG');
    const before = config();
    writeFileSync(override, `log_level: ERROR\n${'#'.repeat(MAX_CONFIG_FILE_BYTES)}\n`);
    const err = (await reloadRefusal()) as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toBe(`config file ${override} is larger than ${MAX_CONFIG_FILE_BYTES} bytes`);
    expect(err.file).toBe(override);
    expect(config()).toBe(before);
    expect(refusal(() => loadSettings({ main: mainFile, override }, {})).message).toMatch(/larger than/);
    // A main file is capped as well.
    const bigMain = join(dir, 'big-main.yaml');
    writeFileSync(bigMain, `${'#'.repeat(MAX_CONFIG_FILE_BYTES + 1)}\n`);
    expect(refusal(() => loadSettings({ main: bigMain }, {})).message).toMatch(/big-main.yaml is larger than/);
  });

  it('refuses what is not a regular file (a FIFO does not block, a device does not stream) without waiting', async () => {
    const fifo = join(dir, 'fifo.yaml');
    const devLink = join(dir, 'zero.yaml');
    const make = { [fifo]: () => execFileSync('mkfifo', [fifo]), [devLink]: () => symlinkSync('/dev/zero', devLink) };
    for (const override of [fifo, devLink]) {
      writeFileSync(override, 'log_level: INFO\n');
      initConfig({ main: mainFile, override });
      rmSync(override);
      make[override]();
      expect(refusal(() => loadSettings({ main: mainFile, override }, {})).message).toBe(`config file ${override} is not a regular file`);
      const err = (await reloadRefusal()) as ConfigError;
      expect(err.message).toBe(`config file ${override} is not a regular file`);
    }
  });

  it('reads and parses the largest accepted file without holding up the event loop', async () => {
    const override = join(dir, 'largest.yaml');
    const text = largestValid(MAX_CONFIG_FILE_BYTES);
    expect(text.length).toBe(MAX_CONFIG_FILE_BYTES);
    writeFileSync(override, 'log_level: INFO\n');
    initConfig({ main: mainFile, override });
    // What parsing it on this thread would cost (the slowest of three, warm).
    let parseMs = 0;
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      parseYaml(text);
      parseMs = Math.max(parseMs, performance.now() - t);
    }
    writeFileSync(override, text);
    let worstGap = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      worstGap = Math.max(worstGap, now - last);
      last = now;
    }, 2);
    const t0 = performance.now();
    const changes = await Promise.resolve().then(() => reloadConfig());
    const reloadMs = performance.now() - t0;
    // Let the ticker run once more: a pause that ended just now is only measured at its next tick.
    await new Promise((r) => setTimeout(r, 10));
    clearInterval(ticker);
    expect(changes.map((c) => c.key)).toEqual(['special_queries_routes_patterns']);
    expect(config().special_queries_routes_patterns.length).toBeGreaterThan(30_000);
    // The loop kept turning while the file was parsed: its longest pause is a small part of a parse.
    expect({ worstGap: Math.round(worstGap), parseMs: Math.round(parseMs), reloadMs: Math.round(reloadMs) }).toEqual({
      worstGap: expect.toSatisfy((g: number) => g < Math.max(25, parseMs / 3)),
      parseMs: expect.toSatisfy((p: number) => p > 0),
      reloadMs: expect.toSatisfy((r: number) => r < 10_000),
    });
    expect(parseMs).toBeGreaterThan(40);
  });
});
