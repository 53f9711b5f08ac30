/**
 * Reads the main and override YAML files and turns them into one validated, frozen Settings
 * object. Pure: no global state here (see ./index.ts for the live config).
 *
 * Errors name files, keys and the reason, never a value or other text from a file: the override
 * may be a symlink to anything, and a secret typed into the wrong key must not reach the logs.
 */
import { readFileSync } from 'node:fs';
import convict from 'convict';
import { ConfigError } from '../errors.js';
import { readYamlFile } from './read-file.js';
import { readYamlFilesOffThread } from './read-off-thread.js';
import { authDocForConvict, authFiles, authSchema, diffAuth, resolveAuth } from '../auth/settings.js';
import type { YamlMapping } from './read-file.js';
import {
  RESOURCE_ID,
  globalSchema,
  maxActiveRequests,
  resourceSchema,
  secureResourceSchema,
  type ResourceSettings,
  type SecureResourceSettings,
  type Settings,
} from './schema.js';

type Obj = Record<string, unknown>;

export interface ConfigPaths {
  main: string;
  override?: string;
}

export function defaultConfigPaths(env: NodeJS.ProcessEnv = process.env): ConfigPaths {
  return { main: env.WT_CONFIG || 'config/watchtower.yaml', override: env.OVERRIDE_CONFIG_PATH || undefined };
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export { readYamlFile };

/** How many names one error lists before it only counts the rest. */
const MAX_NAMED = 10;

function namesList(names: string[], unnamed = 0): string {
  const parts = names.slice(0, MAX_NAMED);
  if (names.length > MAX_NAMED) parts.push(`${names.length - MAX_NAMED} more`);
  if (unnamed > 0) parts.push(`${unnamed} not named here (not of the form of a config key)`);
  return parts.join(', ');
}

/**
 * Checks the shape of one file's document before convict sees it: every key is known (a key from
 * the file is named only when it has the form of a config key; anything else, such as a line of
 * some other file, is only counted), resource sections sit under valid resource ids, and no value
 * is a mapping where a value or a list belongs (convict would name the mapping's inner keys).
 */
function checkNames(doc: Obj, file: string | undefined): void {
  const unknown: string[] = [];
  const nested: string[] = [];
  let unnamed = 0;
  const checkKeys = (section: Obj, schema: object, prefix: string) => {
    for (const [key, value] of Object.entries(section)) {
      if (!Object.hasOwn(schema, key)) {
        if (RESOURCE_ID.test(key)) unknown.push(prefix + key);
        else unnamed++;
      } else if (isObj(value)) nested.push(prefix + key);
    }
  };
  const { resources, secure, auth, ...global } = doc;
  checkKeys(global, globalSchema, '');
  if (auth !== undefined && auth !== null) {
    if (!isObj(auth)) throw new ConfigError('auth must be a mapping of keys to values', { file, keys: ['auth'] });
    checkKeys(auth, authSchema, 'auth.');
  }
  for (const [name, value, schema] of [
    ['resources', resources, resourceSchema],
    ['secure', secure, secureResourceSchema],
  ] as const) {
    if (value === undefined || value === null) continue;
    if (!isObj(value)) throw new ConfigError(`${name} must be a mapping of resource id to settings`, { file, keys: [name] });
    for (const [rid, section] of Object.entries(value)) {
      if (!RESOURCE_ID.test(rid)) unnamed++;
      else if (!isObj(section)) throw new ConfigError(`${name}.${rid} must be a mapping of keys to values`, { file, keys: [`${name}.${rid}`] });
      else checkKeys(section, schema, `${name}.${rid}.`);
    }
  }
  if (unknown.length > 0 || unnamed > 0) throw new ConfigError(`unknown keys: ${namesList(unknown, unnamed)}`, { file, keys: unknown });
  if (nested.length > 0) throw new ConfigError(`must be a value or a list, not a mapping: ${namesList(nested)}`, { file, keys: nested });
}

/** Keys an override may not touch: secure ones and the non-reloadable ones. */
export function forbiddenOverrideKeys(override: Obj): string[] {
  const bad: string[] = [];
  for (const [key, value] of Object.entries(override)) {
    if (key === 'secure') bad.push('secure');
    else if (key === 'auth') {
      if (!isObj(value)) continue; // reported by validation
      for (const k of Object.keys(value)) if (authSchema[k as keyof typeof authSchema]?.reloadable === false) bad.push(`auth.${k}`);
    }
    else if (key === 'resources') {
      if (!isObj(value)) continue; // reported by validation
      for (const [rid, section] of Object.entries(value)) {
        if (!isObj(section)) continue;
        for (const k of Object.keys(section)) {
          const node = resourceSchema[k as keyof ResourceSettings];
          if (node && !node.reloadable) bad.push(`resources.${rid}.${k}`);
        }
      }
    } else {
      const node = globalSchema[key as keyof typeof globalSchema];
      if (node && !node.reloadable) bad.push(key);
    }
  }
  return bad;
}

/** Merges the override onto the main document: resources per resource id, everything else by key. */
function mergeDocs(main: Obj, override: Obj): Obj {
  const merged: Obj = { ...main, ...override };
  if (isObj(main.resources) || isObj(override.resources)) {
    const resources: Obj = { ...(isObj(main.resources) ? main.resources : {}) };
    for (const [rid, section] of Object.entries(isObj(override.resources) ? override.resources : {})) {
      resources[rid] = isObj(resources[rid]) && isObj(section) ? { ...(resources[rid] as Obj), ...section } : section;
    }
    merged.resources = resources;
  }
  if (isObj(main.auth) && isObj(override.auth)) merged.auth = { ...main.auth, ...override.auth };
  if ('secure' in main) merged.secure = main.secure;
  return merged;
}

const quietSchemas = new WeakMap<object, object>();

/** The schema with every node marked sensitive, so convict leaves values out of its messages. */
function quiet<S extends object>(schema: S): S {
  let q = quietSchemas.get(schema);
  if (!q) {
    q = Object.fromEntries(Object.entries(schema).map(([k, node]) => [k, { ...(node as object), sensitive: true }]));
    quietSchemas.set(schema, q);
  }
  return q as S;
}

/**
 * Runs convict on a section whose keys checkNames already accepted, so each line of a convict
 * error is `<schema key>: <reason>` (or, for a missing value, names a schema key). Throws a
 * ConfigError naming `prefix`-qualified keys and their reasons.
 */
/**
 * Keys whose schema default is a number or a switch but whose file value is text. convict would
 * coerce such text by the default's type ("20s" to 20, "no" to true); a YAML file can say what it means.
 */
function textWhereTyped(schema: object, data: Obj): { key: string; reason: string }[] {
  const out: { key: string; reason: string }[] = [];
  for (const [key, value] of Object.entries(data)) {
    if (typeof value !== 'string' || !Object.hasOwn(schema, key)) continue;
    const wanted = typeof (schema as Record<string, { default?: unknown }>)[key].default;
    if (wanted === 'number') out.push({ key, reason: 'must be a number, not text' });
    else if (wanted === 'boolean') out.push({ key, reason: 'must be true or false, not text' });
  }
  return out;
}

function runConvict<T>(schema: convict.Schema<T>, data: Obj, prefix: string, env: NodeJS.ProcessEnv, blame: (keys: string[]) => string | undefined): T {
  const text = textWhereTyped(schema, data);
  if (text.length > 0) {
    const keys = text.map((t) => prefix + t.key);
    throw new ConfigError(`invalid config: ${text.map((t) => `${prefix}${t.key}: ${t.reason}`).join('; ')}`, { file: blame(keys), keys });
  }
  const conf = convict(quiet(schema), { env, args: [] });
  try {
    conf.load(data as Partial<T>);
    conf.validate({ allowed: 'strict' });
  } catch (err) {
    const problems = (err as Error).message
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const missing = /^configuration param '([a-z0-9_]+)' missing/.exec(line);
        if (missing) return { key: prefix + missing[1], reason: 'must be set' };
        const m = /^([a-z][a-z0-9_]*): (.+)$/.exec(line);
        if (m && Object.hasOwn(schema, m[1])) return { key: prefix + m[1], reason: m[2] };
        return { key: prefix.replace(/\.$/, '') || '(file)', reason: 'is invalid' };
      });
    const keys = problems.map((p) => p.key);
    throw new ConfigError(`invalid config: ${problems.map((p) => `${p.key}: ${p.reason}`).join('; ')}`, { file: blame(keys), keys });
  }
  return conf.getProperties() as T;
}

function readPassword(rid: string, env: NodeJS.ProcessEnv): string {
  const direct = env[`${rid}__db_password`];
  if (direct !== undefined) return direct;
  const file = env[`${rid}__db_password_FILE`];
  if (file) {
    try {
      return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new ConfigError(`cannot read ${rid}__db_password_FILE (${file}): ${(err as Error).message}`, { keys: [`${rid}__db_password_FILE`] });
    }
  }
  return '';
}

/**
 * Builds Settings from a main document and an override document. Throws ConfigError naming the
 * file and the offending keys; the caller decides whether that is fatal.
 */
export function buildSettings(
  main: Obj,
  override: Obj,
  opts: { mainFile?: string; overrideFile?: string; env?: NodeJS.ProcessEnv; authFiles?: ReadonlyMap<string, YamlMapping> } = {},
): Settings {
  const env = opts.env ?? process.env;
  checkNames(main, opts.mainFile);
  checkNames(override, opts.overrideFile);
  const forbidden = forbiddenOverrideKeys(override);
  if (forbidden.length > 0) {
    throw new ConfigError(`override file may only change reloadable keys; refused: ${forbidden.join(', ')}`, {
      file: opts.overrideFile,
      keys: forbidden,
    });
  }
  const merged = mergeDocs(main, override);
  // checkNames made both sections mappings of mappings, or left them empty (`resources:` is null).
  const { resources: resourcesDoc, secure: secureDoc, auth: authDoc, ...rawGlobal } = merged;
  const rawResources = (resourcesDoc ?? {}) as Record<string, Obj>;
  const rawSecure = (secureDoc ?? {}) as Record<string, Obj>;
  // Blame the override when it holds any of the offending keys, else the main file.
  const blame = (keys: string[]) =>
    keys.some((k) => k.split('.').reduce<unknown>((o, part) => (isObj(o) ? o[part] : undefined), override) !== undefined)
      ? opts.overrideFile
      : opts.mainFile;

  if (typeof rawGlobal.special_queries_routes_patterns === 'string') {
    rawGlobal.special_queries_routes_patterns = rawGlobal.special_queries_routes_patterns.split(/\s+/).filter(Boolean);
  }
  // Env WT_RESOURCE_IDS (comma-separated) enables resources without editing a tracked file.
  const envIds = env.WT_RESOURCE_IDS?.trim();
  if (envIds) rawGlobal.resource_ids = envIds.split(',').map((id) => id.trim()).filter(Boolean);
  const global = runConvict(globalSchema, rawGlobal, '', env, (keys) => (envIds && keys.includes('resource_ids') ? undefined : blame(keys)));

  const resources: Record<string, ResourceSettings> = {};
  const ids = new Set([...global.resource_ids, ...Object.keys(rawResources)]);
  for (const rid of ids) {
    const prefix = `resources.${rid}.`;
    const r = runConvict(resourceSchema, rawResources[rid] ?? {}, prefix, {}, blame);
    // Keys and the rule only: values stay out of error records.
    if (r.db_min_conn_pool_size > r.db_max_conn_pool_size) {
      const keys = [`${prefix}db_min_conn_pool_size`, `${prefix}db_max_conn_pool_size`];
      throw new ConfigError(`${keys[0]} must not exceed ${keys[1]}`, { file: blame(keys), keys });
    }
    if (maxActiveRequests(r) > r.db_max_conn_pool_size) {
      const keys = [`${prefix}max_active_requests`, `${prefix}db_max_conn_pool_size`];
      throw new ConfigError(`${keys[0]} must not exceed ${keys[1]}: each active request holds one connection, more would deadlock`, {
        file: blame(keys),
        keys,
      });
    }
    resources[rid] = Object.freeze(r);
  }

  const secure: Record<string, SecureResourceSettings> = {};
  for (const [rid, section] of Object.entries(rawSecure)) {
    if ('db_password' in section) {
      throw new ConfigError(`secure.${rid}.db_password must not be in a file: set env ${rid}__db_password or ${rid}__db_password_FILE`, {
        file: opts.mainFile,
        keys: [`secure.${rid}.db_password`],
      });
    }
    const s = runConvict(secureResourceSchema, section, `secure.${rid}.`, {}, () => opts.mainFile);
    s.db_password = readPassword(rid, env);
    if (s.db_type === 'sqlite' && !s.db_path) {
      throw new ConfigError(`secure.${rid}.db_path is required for a sqlite resource`, { file: opts.mainFile, keys: [`secure.${rid}.db_path`] });
    }
    secure[rid] = Object.freeze(s);
  }
  for (const rid of global.resource_ids) {
    if (!secure[rid]) {
      throw new ConfigError(`enabled resource ${rid} has no secure.${rid} section (db_type and connection target)`, {
        file: opts.mainFile,
        keys: [`secure.${rid}`],
      });
    }
  }

  // Who may call: the section's keys, then the key files it names (read again on every reload).
  const rawAuth = runConvict(authSchema as unknown as convict.Schema<Obj>, authDocForConvict((authDoc ?? {}) as Obj), 'auth.', {}, blame);
  const auth = resolveAuth(rawAuth, { files: opts.authFiles, mainFile: opts.mainFile });

  return Object.freeze({
    ...global,
    auth,
    special_queries_routes_patterns: Object.freeze([...global.special_queries_routes_patterns]) as string[],
    resource_ids: Object.freeze([...global.resource_ids]) as string[],
    resources: Object.freeze(resources),
    secure: Object.freeze(secure),
  });
}

/** Reads both files and builds Settings, on the calling thread (start-up: nothing is served yet). */
export function loadSettings(paths: ConfigPaths, env: NodeJS.ProcessEnv = process.env): Settings {
  const main = readYamlFile(paths.main, false);
  const override = paths.override ? readYamlFile(paths.override, true) : {};
  return buildSettings(main, override, { mainFile: paths.main, overrideFile: paths.override, env });
}

/** Like loadSettings, but reads and parses the files in a worker thread (reloads, while serving). */
export async function loadSettingsOffThread(paths: ConfigPaths, env: NodeJS.ProcessEnv = process.env): Promise<Settings> {
  const files = [{ file: paths.main, optional: false }];
  if (paths.override) files.push({ file: paths.override, optional: true });
  const [main, override = {}] = await readYamlFilesOffThread(files);
  // The key files the auth section names, off the event loop too.
  const named = [...new Set(authFiles(mergeDocs(main, override)))];
  const docs = named.length > 0 ? await readYamlFilesOffThread(named.map((file) => ({ file, optional: false }))) : [];
  const authDocs = new Map(named.map((file, i) => [file, docs[i]]));
  return buildSettings(main, override, { mainFile: paths.main, overrideFile: paths.override, env, authFiles: authDocs });
}

export interface ConfigChange {
  key: string;
  from: unknown;
  to: unknown;
  /** Said instead of from and to where the values must not be written (API keys, JWT keys). */
  summary?: string;
}

/** Keys whose values differ between two Settings; secure values are never included. */
export function diffSettings(before: Settings, after: Settings): ConfigChange[] {
  const changes: ConfigChange[] = [];
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  for (const key of Object.keys(globalSchema) as (keyof typeof globalSchema)[]) {
    if (!same(before[key], after[key])) changes.push({ key, from: before[key], to: after[key] });
  }
  const rids = new Set([...Object.keys(before.resources), ...Object.keys(after.resources)]);
  for (const rid of rids) {
    for (const key of Object.keys(resourceSchema) as (keyof ResourceSettings)[]) {
      const a = before.resources[rid]?.[key];
      const b = after.resources[rid]?.[key];
      if (!same(a, b)) changes.push({ key: `resources.${rid}.${key}`, from: a, to: b });
    }
  }
  changes.push(...diffAuth(before.auth, after.auth));
  return changes;
}
